// RUN: ember-opt %s | ember-opt | filecheck %s
// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-lower-to-linalg,canonicalize)' | filecheck %s --check-prefix=LOWER

// ember.qdepthwise_conv2d: an int8 depthwise convolution on NHWC codes with a [KH, KW, C]
// filter and one scale per channel; f32 result (or codes, with result_scale).
// CHECK-LABEL: func.func @depthwise
// CHECK: "ember.qdepthwise_conv2d"(%arg0, %{{.*}}, %{{.*}}) {activation = "none", dilations = array<i64: 1, 1>, input_scale = 5.000000e-01 : f32, input_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0>, padding = array<i64: 1, 1>, strides = array<i64: 1, 1>} : (tensor<?x6x6x16xui8>, tensor<3x3x16xi8>, tensor<16xf32>) -> tensor<?x6x6x16xf32>
// Lowered: the codes padded with the zero point (3), the int32 window sums over
// (n, oh, ow, kh, kw, c) with the channel innermost (codes read unsigned, less the zero
// point), then the int8 epilogue on [N*OH*OW, C]: float(sum) * (0.5 * filter_scale[c]).
// LOWER-LABEL: func.func @depthwise
// LOWER: tensor.pad %{{.*}} low[0, 1, 1, 0] high[0, 1, 1, 0]
// LOWER: tensor.yield %c3_i8 : i8
// LOWER: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]
// LOWER: arith.extui %{{.*}} : i8 to i32
// LOWER: arith.subi
// LOWER: arith.extsi %{{.*}} : i8 to i32
// LOWER: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] : tensor<?x6x6x16xi32> into tensor<?x16xi32>
// LOWER: arith.sitofp %{{.*}} : i32 to f32
// LOWER: tensor.expand_shape
func.func @depthwise(%x: tensor<?x6x6x16xui8>) -> tensor<?x6x6x16xf32> {
  %w = "ember.weight"() {name = "dw.weight.depthwise"} : () -> tensor<3x3x16xi8>
  %s = "ember.weight"() {name = "dw.scale"} : () -> tensor<16xf32>
  %0 = "ember.qdepthwise_conv2d"(%x, %w, %s) {activation = "none", dilations = array<i64: 1, 1>, input_scale = 0.5 : f32, input_zero_point = 3 : i64, padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<?x6x6x16xui8>, tensor<3x3x16xi8>, tensor<16xf32>) -> tensor<?x6x6x16xf32>
  return %0 : tensor<?x6x6x16xf32>
}
