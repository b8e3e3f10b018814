// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @rhs_not_i8(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{rhs must be an i8 [K, N] matrix, got 16x32 f32}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @scale_not_n(%a: tensor<8x16xf32>, %w: tensor<16x32xi8>, %s: tensor<16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{rhs_scale must be 1-D of size N=32}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xi8>, tensor<16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @k_mismatch(%a: tensor<8x12xf32>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{rhs 16x32 does not match K=12, N=32}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x12xf32>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @packed_without_compensation(%a: tensor<8x16xf32>, %w: tensor<2x4x16xi32>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{a packed rhs needs rhs_compensation i32 [32]}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "u8", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<2x4x16xi32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @packed_wrong_words(%a: tensor<8x16xf32>, %w: tensor<2x16x16xi32>, %s: tensor<32xf32>, %c: tensor<32xi32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{packed rhs must be i32 [ceil(N/NR), ceil(K/4), NR] with static K, N and NR > 0, got 2x16x16 i32}}
  %0 = "ember.qgemm"(%a, %w, %s, %c) {activation = "none", lhs_encoding = "u8", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<2x16x16xi32>, tensor<32xf32>, tensor<32xi32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @bad_encoding(%a: tensor<8x16xf32>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "u4", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A conv's packed weight holds ceil(K/4) words (the kernel reads a materialized im2col copy) or
// each filter tap's channels in whole words (it reads the patches in place): C = 3 under 3x3
// taps is 7 or 9 words, never 8.
func.func @packed_conv_words(%x: tensor<2x8x8x3xui8>, %w: tensor<2x8x16xi32>, %s: tensor<32xf32>, %c: tensor<32xi32>) -> tensor<2x8x8x32xf32> {
  // expected-error @+1 {{packed rhs must be i32 [ceil(N/NR), ceil(K/4) or KH*KW*ceil(C/4), NR] with static K, N and NR > 0, got 2x8x16 i32}}
  %0 = "ember.qgemm"(%x, %w, %s, %c) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<2x8x8x3xui8>, tensor<2x8x16xi32>, tensor<32xf32>, tensor<32xi32>) -> tensor<2x8x8x32xf32>
  return %0 : tensor<2x8x8x32xf32>
}

// -----

func.func @residual_codes_without_scale(%a: tensor<4x16xui8>, %w: tensor<16x8xi8>, %s: tensor<8xf32>, %r: tensor<4x8xui8>) -> tensor<4x8xf32> {
  // expected-error @+1 {{residual must be f32 (or codes with residual_scale), got ui8}}
  %0 = "ember.qgemm"(%a, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xui8>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @residual_scale_alone(%a: tensor<4x16xui8>, %w: tensor<16x8xi8>, %s: tensor<8xf32>, %r: tensor<4x8xui8>) -> tensor<4x8xf32> {
  // expected-error @+1 {{residual_scale and residual_zero_point go together, with a residual}}
  %0 = "ember.qgemm"(%a, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, residual_scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xui8>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @residual_scale_on_floats(%a: tensor<4x16xui8>, %w: tensor<16x8xi8>, %s: tensor<8xf32>, %r: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{residual codes must be ui8 or i8, got f32}}
  %0 = "ember.qgemm"(%a, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, residual_scale = 0.25 : f32, residual_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @residual_zero_point_out_of_range(%a: tensor<4x16xui8>, %w: tensor<16x8xi8>, %s: tensor<8xf32>, %r: tensor<4x8xui8>) -> tensor<4x8xf32> {
  // expected-error @+1 {{residual codes: scale 0.25 must be positive and zero point -1 within [0, 255]}}
  %0 = "ember.qgemm"(%a, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, residual_scale = 0.25 : f32, residual_zero_point = -1 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xui8>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
