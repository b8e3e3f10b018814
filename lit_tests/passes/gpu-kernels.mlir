// RUN: ember-opt %s --target=cuda --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s
// RUN: ember-opt %s --target=cuda --pass-pipeline='builtin.module(ember-gpu-outline-gemms,ember-lower-to-linalg,ember-bind-weights,ember-gpu-unroll-foralls,canonicalize,ember-copy-repeated-results,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,buffer-results-to-out-params{hoist-static-allocs modify-public-functions},cse,canonicalize,ember-gpu-launch-gemms,ember-gpu-copies-to-linalg,func.func(linalg-generalize-named-ops),ember-gpu-launch-rows{threads=64},func.func(convert-linalg-to-parallel-loops),ember-gpu-launch-loops{threads=64},ember-gpu-name-kernels,gpu-launch-sink-index-computations,gpu-kernel-outlining,canonicalize,cse,ember-gpu-finish-kernels)' | filecheck %s --check-prefix=T64

// The GPU targets' `kernels` stage bufferizes and makes every op a kernel in one gpu.module
// @kernels (the T64 run: the same passes, spelled out, with 64-thread blocks): the GEMM
// (tiled through 16-byte aligned workgroup memory, barriers between phases), the elementwise
// op (one thread per element, the tail guarded). Kernels are named after what they compute
// and their position. The host function keeps only allocations
// and launches; the result became an out-parameter.

// CHECK-LABEL: func.func @main(
// CHECK-SAME: %arg2: memref<70x16xf32>)
// CHECK: %[[T:.*]] = memref.alloc() {{.*}}: memref<70x16xf32>
// CHECK: gpu.launch_func @kernels::@gemm_0 blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c256{{.*}}, {{.*}}) args(%arg0 : memref<70x8xf32>, %arg1 : memref<8x16xf32>, %[[T]] : memref<70x16xf32>)
// CHECK: gpu.launch_func @kernels::@elementwise_1 {{.*}} args(%[[T]] : memref<70x16xf32>, %arg2 : memref<70x16xf32>)
// CHECK-NOT: linalg.
// CHECK: gpu.module @kernels
// CHECK: gpu.func @gemm_0({{.*}}) workgroup({{.*}}memref<64x16xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, {{.*}}memref<16x64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel
// CHECK: gpu.barrier
// CHECK: gpu.func @elementwise_1({{.*}}) kernel attributes {known_block_size = array<i32: 256, 1, 1>, known_grid_size = array<i32: 5, 1, 1>}
// CHECK: scf.if
// T64: gpu.func @elementwise_1({{.*}}) kernel attributes {known_block_size = array<i32: 64, 1, 1>, known_grid_size = array<i32: 18, 1, 1>}
func.func @main(%x: tensor<70x8xf32>) -> tensor<70x16xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x16xf32>
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<70x8xf32>, tensor<8x16xf32>) -> tensor<70x16xf32>
  %1 = "ember.unary"(%0) {kind = "tanh"} : (tensor<70x16xf32>) -> tensor<70x16xf32>
  return %1 : tensor<70x16xf32>
}
