// RUN: ember-opt %s --split-input-file | filecheck %s
// RUN: ember-opt %s --split-input-file --mlir-print-op-generic | ember-opt --split-input-file | filecheck %s

// ember.conv2d round-trips in both layouts, with and without its optional operands.

// CHECK-LABEL: func.func @nchw_bias_relu
// CHECK: "ember.conv2d"(%arg0, %arg1, %arg2) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 1, 0>, padding = array<i64: 1, 1>, strides = array<i64: 2, 2>}
func.func @nchw_bias_relu(%x: tensor<?x3x16x16xf32>, %w: tensor<8x3x3x3xf32>, %b: tensor<8xf32>) -> tensor<?x8x8x8xf32> {
  %0 = "ember.conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<?x3x16x16xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<?x8x8x8xf32>
  return %0 : tensor<?x8x8x8xf32>
}

// -----

// CHECK-LABEL: func.func @nhwc_depthwise_residual
// CHECK: "ember.conv2d"(%arg0, %arg1, %arg2) {{{.*}}groups = 8 : i64, layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 1>
func.func @nhwc_depthwise_residual(%x: tensor<1x8x8x8xf32>, %w: tensor<3x3x1x8xf32>, %r: tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %0 = "ember.conv2d"(%x, %w, %r) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 8, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 1>} : (tensor<1x8x8x8xf32>, tensor<3x3x1x8xf32>, tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  return %0 : tensor<1x8x8x8xf32>
}
