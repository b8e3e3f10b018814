// RUN: ember-opt %s --split-input-file --ember-fuse-attention --ember-canonicalize | filecheck %s

// softmax(q @ k^T / sqrt(d) + mask) @ v becomes one ember.attention (scale 1/8 for d = 64);
// k's transpose is absorbed.
// CHECK-LABEL: func.func @bert_attention
// CHECK: %[[A:.*]] = "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 1.250000e-01 : f32}
// CHECK-NEXT: return %[[A]]
func.func @bert_attention(%q: tensor<2x4x16x64xf32>, %k: tensor<2x4x16x64xf32>, %v: tensor<2x4x16x64xf32>, %mask: tensor<2x1x1x16xf32>) -> tensor<2x4x16x64xf32> {
  %c = arith.constant dense<8.0> : tensor<f32>
  %kt = "ember.transpose"(%k) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x16x64xf32>) -> tensor<2x4x64x16xf32>
  %s = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x4x16x64xf32>, tensor<2x4x64x16xf32>) -> tensor<2x4x16x16xf32>
  %d = "ember.binary"(%s, %c) {kind = "div"} : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %m = "ember.binary"(%d, %mask) {kind = "add"} : (tensor<2x4x16x16xf32>, tensor<2x1x1x16xf32>) -> tensor<2x4x16x16xf32>
  %p = "ember.softmax"(%m) {axis = 3} : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %o = "ember.gemm"(%p, %v) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x4x16x16xf32>, tensor<2x4x16x64xf32>) -> tensor<2x4x16x64xf32>
  return %o : tensor<2x4x16x64xf32>
}

// -----

// Without scale or mask; k^T given directly (not a transpose): a transpose of it is built.
// CHECK-LABEL: func.func @plain
// CHECK: %[[K:.*]] = "ember.transpose"(%arg1) {permutation = array<i64: 0, 2, 1>}
// CHECK: "ember.attention"(%arg0, %[[K]], %arg2) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 1.000000e+00 : f32}
func.func @plain(%q: tensor<3x5x8xf32>, %kt: tensor<3x8x7xf32>, %v: tensor<3x7x4xf32>) -> tensor<3x5x4xf32> {
  %s = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x8xf32>, tensor<3x8x7xf32>) -> tensor<3x5x7xf32>
  %p = "ember.softmax"(%s) {axis = 2} : (tensor<3x5x7xf32>) -> tensor<3x5x7xf32>
  %o = "ember.gemm"(%p, %v) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x7xf32>, tensor<3x7x4xf32>) -> tensor<3x5x4xf32>
  return %o : tensor<3x5x4xf32>
}

// -----

// Negative: softmax over a non-last axis, and scores used twice, are not attention.
// CHECK-LABEL: func.func @not_attention
// CHECK-NOT: ember.attention
func.func @not_attention(%q: tensor<3x5x8xf32>, %kt: tensor<3x8x7xf32>, %v: tensor<3x7x4xf32>, %v2: tensor<3x5x5xf32>) -> (tensor<3x5x4xf32>, tensor<3x5x7xf32>, tensor<3x5x7xf32>) {
  %s = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x8xf32>, tensor<3x8x7xf32>) -> tensor<3x5x7xf32>
  %p = "ember.softmax"(%s) {axis = 2} : (tensor<3x5x7xf32>) -> tensor<3x5x7xf32>
  %o = "ember.gemm"(%p, %v) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x7xf32>, tensor<3x7x4xf32>) -> tensor<3x5x4xf32>
  %s2 = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x8xf32>, tensor<3x8x7xf32>) -> tensor<3x5x7xf32>
  %p2 = "ember.softmax"(%s2) {axis = 1} : (tensor<3x5x7xf32>) -> tensor<3x5x7xf32>
  %o2 = "ember.gemm"(%v2, %p2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<3x5x5xf32>, tensor<3x5x7xf32>) -> tensor<3x5x7xf32>
  return %o, %s, %o2 : tensor<3x5x4xf32>, tensor<3x5x7xf32>, tensor<3x5x7xf32>
}
