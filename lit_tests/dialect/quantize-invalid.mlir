// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @result_not_bytes(%x: tensor<8xf32>) -> tensor<8xi32> {
  // expected-error @+1 {{result must be ui8 or i8, got i32}}
  %0 = "ember.quantize"(%x) {scale = 0.5 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<8xf32>) -> tensor<8xi32>
  return %0 : tensor<8xi32>
}

// -----

func.func @range_outside_storage(%x: tensor<8xf32>) -> tensor<8xi8> {
  // expected-error @+1 {{[quant_min, quant_max] = [0, 255] must lie within the storage range [-128, 127]}}
  %0 = "ember.quantize"(%x) {scale = 0.5 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<8xf32>) -> tensor<8xi8>
  return %0 : tensor<8xi8>
}

// -----

func.func @zero_scale(%x: tensor<8xf32>) -> tensor<8xui8> {
  // expected-error @+1 {{scale must be positive, got 0.0}}
  %0 = "ember.quantize"(%x) {scale = 0.0 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<8xf32>) -> tensor<8xui8>
  return %0 : tensor<8xui8>
}

// -----

func.func @both_forms(%q: tensor<4x8xi8>, %s: tensor<4xf32>, %z: tensor<4xi64>) -> tensor<4x8xf32> {
  // expected-error @+1 {{give either scale and zero_point (per tensor) or scales, zero_points and axis (per channel)}}
  %0 = "ember.dequantize"(%q, %s, %z) {axis = 0 : i64, scale = 0.5 : f32, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x8xi8>, tensor<4xf32>, tensor<4xi64>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @scales_not_channels(%q: tensor<4x8xi8>, %s: tensor<8xf32>, %z: tensor<8xi64>) -> tensor<4x8xf32> {
  // expected-error @+1 {{scales must be 1-D of size 4 (input dim 0 of 4x8)}}
  %0 = "ember.dequantize"(%q, %s, %z) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x8xi8>, tensor<8xf32>, tensor<8xi64>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @zero_point_outside(%q: tensor<8xui8>) -> tensor<8xf32> {
  // expected-error @+1 {{zero_point 300 lies outside the storage range [0, 255]}}
  %0 = "ember.dequantize"(%q) {scale = 0.5 : f32, zero_point = 300 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8xui8>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @static_qgemm_f32_codes(%a: tensor<8x16xf32>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{static lhs: codes must be ui8 or i8, got f32}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @static_qgemm_u7(%a: tensor<8x16xi8>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{a static lhs in encoding u7 (codes below 128) must be ui8}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "u7", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xi8>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @codes_without_scale(%a: tensor<8x16xui8>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{lhs must be f32 (or codes with lhs_scale), got ui8}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xui8>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @result_codes_without_scale(%a: tensor<8x16xf32>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xui8> {
  // expected-error @+1 {{result must be f32 (or codes with result_scale), got ui8}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xui8>
  return %0 : tensor<8x32xui8>
}

// -----

func.func @result_zero_point_outside_range(%a: tensor<8x16xf32>, %w: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<8x32xui8> {
  // expected-error @+1 {{quantized result: scale 0.5 must be positive and 0 <= lo <= zero point <= hi <= 255, got [0, 127] and zero point 200}}
  %0 = "ember.qgemm"(%a, %w, %s) {activation = "none", lhs_encoding = "s8", result_scale = 0.5 : f32, result_zero_point = 200 : i64, result_range = array<i64: 0, 127>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xi8>, tensor<32xf32>) -> tensor<8x32xui8>
  return %0 : tensor<8x32xui8>
}
