// RUN: ember-opt %s --split-input-file --target=cuda --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s
// RUN: ember-opt %s --split-input-file --target=rocm --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s --check-prefix=W64

// The GPU targets' `kernels` stage (ember-gpu-launch-rows) makes a reduction over the innermost
// dim and the row ops around it one row kernel: a warp (rocm's 64-lane wavefront in the W64 run) per row (256 threads = 8 rows per block; 10 rows -> 2 blocks, the
// last warps guarded), each lane striding over the row, then a gpu.shuffle xor butterfly.
// LayerNorm: sum, mean, centered square sum, rstd, normalize in one kernel; the mean and
// rstd buffers are used by this kernel only, so they stay in registers (no store of them).

// CHECK-LABEL: func.func @layer_norm(
// CHECK-COUNT-1: gpu.launch_func
// CHECK-SAME: @kernels::@layer_norm_0 blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%arg0 : memref<10x100xf32>, %arg1 : memref<100xf32>, %arg2 : memref<100xf32>, %arg3 : memref<10x100xf32>)
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @layer_norm_0(
// CHECK: scf.if
// CHECK: scf.for %{{.*}} = %{{.*}} to %c100 step %c32
// CHECK-COUNT-5: gpu.shuffle  xor %{{.*}}, %c{{[0-9]+}}_i32, %c32_i32 : f32
// CHECK: scf.for %{{.*}} = %{{.*}} to %c100 step %c32
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK: math.rsqrt
// CHECK: scf.for %{{.*}} = %{{.*}} to %c100 step %c32
// CHECK: memref.store {{.*}} : memref<10x100xf32>
// CHECK-NOT: memref.store
// CHECK: gpu.return
// W64-LABEL: func.func @layer_norm(
// W64: gpu.func @layer_norm_0(
// W64: scf.for %{{.*}} = %{{.*}} to %c100 step %c64
// W64-COUNT-6: gpu.shuffle  xor %{{.*}}, %c{{[0-9]+}}_i32, %c64_i32 : f32
func.func @layer_norm(%x: tensor<10x100xf32>) -> tensor<10x100xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<100xf32>
  %b = "ember.weight"() {name = "b"} : () -> tensor<100xf32>
  %0 = "ember.layer_norm"(%x, %w, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<10x100xf32>, tensor<100xf32>, tensor<100xf32>) -> tensor<10x100xf32>
  return %0 : tensor<10x100xf32>
}

// -----

// Softmax over rows longer than 1024 elements: a block of 256 threads per row (4 blocks);
// each warp's total goes through workgroup memory (one 8-float buffer per reduction) and a
// barrier. The tanh and the second softmax work on the same rows: the whole chain is one
// kernel, each element read by the lane that wrote it.

// CHECK-LABEL: func.func @softmax_chain(
// CHECK-COUNT-1: gpu.launch_func
// CHECK-SAME: @kernels::@row_reduce_0 blocks in (%c4{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @row_reduce_0({{.*}}) workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>> {{.*}}) kernel
// CHECK: scf.for %{{.*}} = %thread_id_x to %c2000 step %c256
// CHECK: arith.maximumf
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %thread_id_x to %c2000 step %c256
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK: gpu.barrier
func.func @softmax_chain(%x: tensor<4x2000xf32>) -> tensor<4x2000xf32> {
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<4x2000xf32>) -> tensor<4x2000xf32>
  %1 = "ember.unary"(%0) {kind = "tanh"} : (tensor<4x2000xf32>) -> tensor<4x2000xf32>
  %2 = "ember.softmax"(%1) {axis = 1} : (tensor<4x2000xf32>) -> tensor<4x2000xf32>
  return %2 : tensor<4x2000xf32>
}

// -----

// Two softmaxes separated by a GEMM: the same softmax kernel, emitted once and launched
// twice.

// CHECK-LABEL: func.func @softmax_twice(
// CHECK: gpu.launch_func @kernels::@softmax_0 blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256
// CHECK: gpu.launch_func @kernels::@gemm_1
// CHECK: gpu.launch_func @kernels::@softmax_0 blocks
// CHECK: gpu.func @softmax_0(
// CHECK: gpu.func @gemm_1(
// CHECK-NOT: gpu.func
func.func @softmax_twice(%x: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<16x16xf32>) -> tensor<16x16xf32>
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x16xf32>
  %1 = "ember.gemm"(%0, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %2 = "ember.softmax"(%1) {axis = 1} : (tensor<16x16xf32>) -> tensor<16x16xf32>
  return %2 : tensor<16x16xf32>
}
