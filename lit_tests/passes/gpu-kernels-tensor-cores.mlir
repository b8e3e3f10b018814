// RUN: ember-opt %s --split-input-file --target=cuda --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s
// RUN: ember-opt %s --split-input-file --target=cuda:tensor_cores=false --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s --check-prefix=SIMT

// On cuda (tensor cores), an f16 GEMM whose K and N are multiples of 8 becomes the mma.sync
// kernel: 64x64 block tiles of 4 warps (128 threads), two cp.async stages of A and B in padded
// workgroup memory, ldmatrix fragments, f32 accumulation. With cuda:tensor_cores=false it is the
// SIMT kernel (256 threads).

// CHECK-LABEL: func.func @main(
// CHECK: gpu.launch_func @kernels::@gemm_mma_0 blocks in (%c1{{.*}}, %c2{{.*}}, %c1{{.*}}) threads in (%c128{{.*}}, {{.*}})
// CHECK: gpu.func @gemm_mma_0({{.*}}) workgroup({{.*}}memref<2x64x40xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, {{.*}}memref<2x32x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel
// CHECK: nvgpu.device_async_copy {{.*}}, 8, %{{.*}} {bypassL1}
// CHECK: nvgpu.device_async_create_group
// CHECK: nvgpu.device_async_wait
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (vector<2xf16>, vector<2xf16>, f32)
// CHECK: arith.truncf {{.*}} : f32 to f16
// SIMT-LABEL: func.func @main(
// SIMT: gpu.launch_func @kernels::@gemm_0 {{.*}} threads in (%c256
// SIMT-NOT: nvvm.mma.sync
func.func @main(%x: tensor<70x40xf16>) -> tensor<70x24xf16> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<40x24xf16>
  %b = "ember.weight"() {name = "b"} : () -> tensor<24xf16>
  %0 = "ember.gemm"(%x, %w, %b) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<70x40xf16>, tensor<40x24xf16>, tensor<24xf16>) -> tensor<70x24xf16>
  return %0 : tensor<70x24xf16>
}

// -----

// K = 12 is not a multiple of 8 (no whole 16-byte copies): the SIMT kernel, even with
// tensor cores.
// CHECK-LABEL: func.func @main(
// CHECK: threads in (%c256
// CHECK-NOT: nvvm.mma.sync
func.func @main(%x: tensor<16x12xf16>) -> tensor<16x16xf16> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<12x16xf16>
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<16x12xf16>, tensor<12x16xf16>) -> tensor<16x16xf16>
  return %0 : tensor<16x16xf16>
}
