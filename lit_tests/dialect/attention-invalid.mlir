// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @head_dims(%q: tensor<4x16x8xf32>, %k: tensor<4x32x6xf32>, %v: tensor<4x32x6xf32>) -> tensor<4x16x6xf32> {
  // expected-error @+1 {{'ember.attention' op query and key head dims differ: 8 vs 6}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<4x16x8xf32>, tensor<4x32x6xf32>, tensor<4x32x6xf32>) -> tensor<4x16x6xf32>
  return %0 : tensor<4x16x6xf32>
}

// -----

func.func @key_value_lengths(%q: tensor<4x16x8xf32>, %k: tensor<4x32x8xf32>, %v: tensor<4x30x6xf32>) -> tensor<4x16x6xf32> {
  // expected-error @+1 {{key and value sequence lengths differ: 32 vs 30}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<4x16x8xf32>, tensor<4x32x8xf32>, tensor<4x30x6xf32>) -> tensor<4x16x6xf32>
  return %0 : tensor<4x16x6xf32>
}

// -----

func.func @mask_shape(%q: tensor<4x16x8xf32>, %k: tensor<4x32x8xf32>, %v: tensor<4x32x6xf32>, %m: tensor<16x16xf32>) -> tensor<4x16x6xf32> {
  // expected-error @+1 {{mask shape 16x16 does not broadcast to the scores 4x16x32}}
  %0 = "ember.attention"(%q, %k, %v, %m) {scale = 1.0 : f32, causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<4x16x8xf32>, tensor<4x32x8xf32>, tensor<4x32x6xf32>, tensor<16x16xf32>) -> tensor<4x16x6xf32>
  return %0 : tensor<4x16x6xf32>
}

// -----

// In layout "bshd" the heads are dim -2: keys with 2 heads against queries with 4.
func.func @heads_inside_count(%q: tensor<16x4x8xf32>, %k: tensor<32x2x8xf32>, %v: tensor<32x2x8xf32>) -> tensor<16x4x8xf32> {
  // expected-error @+1 {{leading dims differ: query 4x16x8, key 2x32x8, value 2x32x8}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, layout = "bshd", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<16x4x8xf32>, tensor<32x2x8xf32>, tensor<32x2x8xf32>) -> tensor<16x4x8xf32>
  return %0 : tensor<16x4x8xf32>
}

// -----

// The result keeps the operands' layout: [Sq, H, Dv], not [H, Sq, Dv].
func.func @heads_inside_result(%q: tensor<16x4x8xf32>, %k: tensor<32x4x8xf32>, %v: tensor<32x4x8xf32>) -> tensor<4x16x8xf32> {
  // expected-error @+1 {{result shape 4x16x8 must be 16x4x8}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, layout = "bshd", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<16x4x8xf32>, tensor<32x4x8xf32>, tensor<32x4x8xf32>) -> tensor<4x16x8xf32>
  return %0 : tensor<4x16x8xf32>
}

// -----

func.func @heads_inside_rank(%q: tensor<16x8xf32>, %k: tensor<32x8xf32>, %v: tensor<32x8xf32>) -> tensor<16x8xf32> {
  // expected-error @+1 {{query, key, value and result must have rank >= 3}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, layout = "bshd", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<16x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>) -> tensor<16x8xf32>
  return %0 : tensor<16x8xf32>
}

// -----

func.func @unknown_layout(%q: tensor<16x4x8xf32>, %k: tensor<32x4x8xf32>, %v: tensor<32x4x8xf32>) -> tensor<16x4x8xf32> {
  // expected-error @+1 {{attention layout}}
  %0 = "ember.attention"(%q, %k, %v) {scale = 1.0 : f32, causal = false, layout = "sbhd", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<16x4x8xf32>, tensor<32x4x8xf32>, tensor<32x4x8xf32>) -> tensor<16x4x8xf32>
  return %0 : tensor<16x4x8xf32>
}
