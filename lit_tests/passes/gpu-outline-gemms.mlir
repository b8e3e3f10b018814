// RUN: ember-opt %s --split-input-file --verify-diagnostics --ember-gpu-outline-gemms | filecheck %s

// ember-gpu-outline-gemms turns each ember.gemm with a 2-D rhs into a call of a private kernel
// function on 2-D tensors (lhs and residual collapsed to [M, K] / [M, N], the result expanded
// back); the function carries its spec and keeps a 2-D ember.gemm as reference body.

// CHECK-LABEL: func.func @main(
// CHECK: %[[A:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<2x3x8xf32> into tensor<6x8xf32>
// CHECK: %[[R:.*]] = tensor.collapse_shape %arg3 {{\[\[}}0, 1], [2]] : tensor<2x3x16xf32> into tensor<6x16xf32>
// CHECK: %[[C:.*]] = call @ember_gpu_gemm_0(%[[A]], %arg1, %arg2, %[[R]]) : (tensor<6x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<6x16xf32>) -> tensor<6x16xf32>
// CHECK: tensor.expand_shape %[[C]] {{\[\[}}0, 1], [2]] output_shape [2, 3, 16]
// Batched rhs: left to the generic lowering.
// CHECK: "ember.gemm"(%arg0, %arg4)
// CHECK-LABEL: func.func private @ember_gpu_gemm_0(
// CHECK-SAME: ember.gpu_gemm = {activation = "relu", bias = true, k = 8 : i64, m = 6 : i64, n = 16 : i64, residual = true}
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2, %arg3) {activation = "relu"
func.func @main(%x: tensor<2x3x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>,
                %r: tensor<2x3x16xf32>, %wb: tensor<2x8x4xf32>) -> (tensor<2x3x16xf32>, tensor<2x3x4xf32>) {
  %0 = "ember.gemm"(%x, %w, %b, %r) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<2x3x16xf32>) -> tensor<2x3x16xf32>
  %1 = "ember.gemm"(%x, %wb) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x3x8xf32>, tensor<2x8x4xf32>) -> tensor<2x3x4xf32>
  return %0, %1 : tensor<2x3x16xf32>, tensor<2x3x4xf32>
}

// -----

// Two identical GEMMs share one kernel function.
// CHECK-LABEL: func.func @shared(
// CHECK: call @ember_gpu_gemm_0(%arg0, %arg1)
// CHECK: call @ember_gpu_gemm_0(%arg0, %arg1)
// CHECK-COUNT-1: func.func private @ember_gpu_gemm_
func.func @shared(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %1 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %0, %1 : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// GPU code is planned statically: a dynamic dim is refused.
// expected-error @unknown {{GPU targets need static shapes, but @dynamic argument 0 has type tensor<?x8xf32>; compile with static example shapes}}
func.func @dynamic(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}
