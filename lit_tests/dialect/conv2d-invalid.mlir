// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @wrong_output_size(%x: tensor<1x3x16x16xf32>, %w: tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32> {
  // expected-error @+1 {{result shape 1x8x16x16 does not match the convolution's 1x8x8x8 (N, F, OH, OW)}}
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x16x16xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32>
  return %0 : tensor<1x8x16x16xf32>
}

// -----

func.func @channel_mismatch(%x: tensor<1x4x16x16xf32>, %w: tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32> {
  // expected-error @+1 {{filter expects 3 input channels, input has 4}}
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x4x16x16xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32>
  return %0 : tensor<1x8x16x16xf32>
}

// -----

// IRDL (irdl.any_of): an unknown layout fails at parse time.
func.func @bad_layout(%x: tensor<1x3x16x16xf32>, %w: tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32> {
  // expected-error @+1 {{'"chwn"' does not satisfy the constraint}}
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "chwn", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x16x16xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32>
  return %0 : tensor<1x8x16x16xf32>
}

// -----

func.func @grouped(%x: tensor<1x4x16x16xf32>, %w: tensor<8x2x3x3xf32>) -> tensor<1x8x16x16xf32> {
  // expected-error @+1 {{groups must be 1 or equal input and output channels (depthwise), got 2}}
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 2, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x4x16x16xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x16x16xf32>
  return %0 : tensor<1x8x16x16xf32>
}

// -----

func.func @zero_stride(%x: tensor<1x3x16x16xf32>, %w: tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32> {
  // expected-error @+1 {{strides must be 2 positive values, got [0, 1]}}
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 0, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x16x16xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32>
  return %0 : tensor<1x8x16x16xf32>
}
