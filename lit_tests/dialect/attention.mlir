// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.attention: heads outside the sequence (PyTorch's [B, H, S, D], no
// layout attribute), with a mask broadcast over heads and queries; and heads inside it
// ([B, S, H, D], "bshd"), where the mask still broadcasts to the scores [B, H, Sq, Sk].

// CHECK-LABEL: func.func @heads_outside
// CHECK: "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 1.250000e-01 : f32} : (tensor<2x4x16x8xf32>, tensor<2x4x32x8xf32>, tensor<2x4x32x6xf32>, tensor<2x1x1x32xf32>) -> tensor<2x4x16x6xf32>
func.func @heads_outside(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x32x8xf32>, %v: tensor<2x4x32x6xf32>, %m: tensor<2x1x1x32xf32>) -> tensor<2x4x16x6xf32> {
  %0 = "ember.attention"(%q, %k, %v, %m) {scale = 0.125 : f32, causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<2x4x16x8xf32>, tensor<2x4x32x8xf32>, tensor<2x4x32x6xf32>, tensor<2x1x1x32xf32>) -> tensor<2x4x16x6xf32>
  return %0 : tensor<2x4x16x6xf32>
}

// -----

// CHECK-LABEL: func.func @heads_inside
// CHECK: "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = true, layout = "bshd", {{.*}}} : (tensor<2x16x4x8xf32>, tensor<2x32x4x8xf32>, tensor<2x32x4x6xf32>, tensor<2x4x16x32xf32>) -> tensor<2x16x4x6xf32>
func.func @heads_inside(%q: tensor<2x16x4x8xf32>, %k: tensor<2x32x4x8xf32>, %v: tensor<2x32x4x6xf32>, %m: tensor<2x4x16x32xf32>) -> tensor<2x16x4x6xf32> {
  %0 = "ember.attention"(%q, %k, %v, %m) {scale = 0.125 : f32, causal = true, layout = "bshd", operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<2x16x4x8xf32>, tensor<2x32x4x8xf32>, tensor<2x32x4x6xf32>, tensor<2x4x16x32xf32>) -> tensor<2x16x4x6xf32>
  return %0 : tensor<2x16x4x6xf32>
}
