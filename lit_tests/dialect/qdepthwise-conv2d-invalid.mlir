// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @float_input(%x: tensor<1x6x6x16xf32>, %w: tensor<3x3x16xi8>, %s: tensor<16xf32>) -> tensor<1x6x6x16xf32> {
  // expected-error @+1 {{codes must be ui8 or i8, got f32}}
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, strides = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 0 : i64, padding = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x6x6x16xf32>, tensor<3x3x16xi8>, tensor<16xf32>) -> tensor<1x6x6x16xf32>
  return %0 : tensor<1x6x6x16xf32>
}

// -----

func.func @channels_differ(%x: tensor<1x6x6x16xui8>, %w: tensor<3x3x8xi8>, %s: tensor<8xf32>) -> tensor<1x6x6x16xf32> {
  // expected-error @+1 {{filter has 8 channels, input 16}}
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, strides = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 0 : i64, padding = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x6x6x16xui8>, tensor<3x3x8xi8>, tensor<8xf32>) -> tensor<1x6x6x16xf32>
  return %0 : tensor<1x6x6x16xf32>
}

// -----

func.func @wrong_output(%x: tensor<1x6x6x16xui8>, %w: tensor<3x3x16xi8>, %s: tensor<16xf32>) -> tensor<1x6x6x16xf32> {
  // expected-error @+1 {{result shape 1x6x6x16 does not match the convolution's 1x3x3x16 (N, OH, OW, C)}}
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 0 : i64, padding = array<i64: 1, 1>, strides = array<i64: 2, 2>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x6x6x16xui8>, tensor<3x3x16xi8>, tensor<16xf32>) -> tensor<1x6x6x16xf32>
  return %0 : tensor<1x6x6x16xf32>
}

// -----

func.func @codes_without_scale(%x: tensor<1x6x6x16xui8>, %w: tensor<3x3x16xi8>, %s: tensor<16xf32>) -> tensor<1x6x6x16xui8> {
  // expected-error @+1 {{result must be f32 (or codes with result_scale), got ui8}}
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, strides = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 0 : i64, padding = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x6x6x16xui8>, tensor<3x3x16xi8>, tensor<16xf32>) -> tensor<1x6x6x16xui8>
  return %0 : tensor<1x6x6x16xui8>
}

// -----

func.func @scales_per_tensor(%x: tensor<1x6x6x16xui8>, %w: tensor<3x3x16xi8>, %s: tensor<1xf32>) -> tensor<1x6x6x16xf32> {
  // expected-error @+1 {{filter_scale must be f32 [16]}}
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, strides = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 0 : i64, padding = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x6x6x16xui8>, tensor<3x3x16xi8>, tensor<1xf32>) -> tensor<1x6x6x16xf32>
  return %0 : tensor<1x6x6x16xf32>
}
