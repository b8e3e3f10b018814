// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-convert-layout,ember-fold-constants,ember-fuse-epilogue,ember-canonicalize)' | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-convert-layout=layout=nchw | filecheck %s --check-prefix=NCHW

// A ResNet-style stem and basic block: conv-relu, max pool, conv-relu, conv + residual, relu,
// global average pool. After conversion one transpose remains (the NCHW input); none is left
// between convolutions or pools, and the residual add and ReLUs fuse into the NHWC convs.
// CHECK-LABEL: func.func @resnet_block
// CHECK: "ember.transpose"(%arg0) {permutation = array<i64: 0, 2, 3, 1>}
// CHECK-NOT: ember.transpose
// CHECK: "ember.conv2d"({{.*}}) {activation = "relu", {{.*}}layout = "nhwc"
// CHECK-NOT: ember.transpose
// CHECK: "ember.pool2d"({{.*}}) {{{.*}}kind = "max", layout = "nhwc"
// CHECK-NOT: ember.transpose
// CHECK: "ember.conv2d"({{.*}}) {activation = "relu", {{.*}}layout = "nhwc"
// CHECK-NOT: ember.transpose
// CHECK: "ember.conv2d"({{.*}}) {activation = "none", {{.*}}layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 1>
// CHECK-NOT: ember.transpose
// CHECK: "ember.unary"({{.*}}) {kind = "relu"}
// CHECK-NOT: ember.transpose
// CHECK: "ember.pool2d"({{.*}}) {{{.*}}kind = "avg", layout = "nhwc"
// CHECK-NOT: ember.transpose
// CHECK: "ember.reshape"({{.*}}) : (tensor<1x1x1x8xf32>) -> tensor<1x8xf32>
// CHECK-NOT: ember.transpose
// CHECK: return
// NCHW-LABEL: func.func @resnet_block
// NCHW-NOT: ember.transpose
// NCHW-NOT: layout = "nhwc"
func.func @resnet_block(%x: tensor<1x3x16x16xf32>) -> tensor<1x8xf32> {
  %w0 = "ember.weight"() {name = "stem.weight"} : () -> tensor<8x3x3x3xf32>
  %w1 = "ember.weight"() {name = "block.conv1.weight"} : () -> tensor<8x8x3x3xf32>
  %w2 = "ember.weight"() {name = "block.conv2.weight"} : () -> tensor<8x8x3x3xf32>
  %0 = "ember.conv2d"(%x, %w0) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x16x16xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x16x16xf32>
  %1 = "ember.unary"(%0) {kind = "relu"} : (tensor<1x8x16x16xf32>) -> tensor<1x8x16x16xf32>
  %2 = "ember.pool2d"(%1) {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = array<i64: 0, 0>, layout = "nchw"} : (tensor<1x8x16x16xf32>) -> tensor<1x8x8x8xf32>
  %3 = "ember.conv2d"(%2, %w1) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<8x8x3x3xf32>) -> tensor<1x8x8x8xf32>
  %4 = "ember.unary"(%3) {kind = "relu"} : (tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %5 = "ember.conv2d"(%4, %w2) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<8x8x3x3xf32>) -> tensor<1x8x8x8xf32>
  %6 = "ember.binary"(%5, %2) {kind = "add"} : (tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %7 = "ember.unary"(%6) {kind = "relu"} : (tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %8 = "ember.pool2d"(%7) {kind = "avg", kernel = array<i64: 8, 8>, strides = array<i64: 8, 8>, padding = array<i64: 0, 0>, layout = "nchw"} : (tensor<1x8x8x8xf32>) -> tensor<1x8x1x1xf32>
  %9 = "ember.reshape"(%8) : (tensor<1x8x1x1xf32>) -> tensor<1x8xf32>
  return %9 : tensor<1x8xf32>
}

// -----

// Negative: an add with an NCHW activation that is neither transposed nor constant blocks the
// sinking, so the transpose back to NCHW stays right after the conv.
// CHECK-LABEL: func.func @blocked_by_nchw_operand
// CHECK: "ember.conv2d"({{.*}}layout = "nhwc"
// CHECK-NEXT: %[[T:.*]] = "ember.transpose"({{.*}}) {permutation = array<i64: 0, 3, 1, 2>}
// CHECK-NEXT: "ember.binary"(%[[T]], %arg1) {kind = "add"}
func.func @blocked_by_nchw_operand(%x: tensor<1x3x8x8xf32>, %y: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4x3x3x3xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %1 = "ember.binary"(%0, %y) {kind = "add"} : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %1 : tensor<1x4x8x8xf32>
}

// -----

// A quantized network: the transposes sink through per-tensor quantize and dequantize (both
// elementwise), so the pair between the two convolutions cancels.
// CHECK-LABEL: func.func @quantized_chain
// CHECK: %[[C:.*]] = "ember.conv2d"
// CHECK-NEXT: %[[Q:.*]] = "ember.quantize"(%[[C]]) {{.*}} -> tensor<1x6x6x8xui8>
// CHECK-NEXT: %[[D:.*]] = "ember.dequantize"(%[[Q]]) {{.*}} -> tensor<1x6x6x8xf32>
// CHECK-NOT: "ember.transpose"(%[[D]])
// CHECK: "ember.conv2d"(%[[D]],
func.func @quantized_chain(%x: tensor<1x8x6x6xf32>, %w: tensor<8x8x3x3xf32>) -> tensor<1x8x6x6xf32> {
  %0 = "ember.conv2d"(%x, %w) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x6x6xf32>, tensor<8x8x3x3xf32>) -> tensor<1x8x6x6xf32>
  %q = "ember.quantize"(%0) {scale = 0.5 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xui8>
  %d = "ember.dequantize"(%q) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<1x8x6x6xui8>) -> tensor<1x8x6x6xf32>
  %1 = "ember.conv2d"(%d, %w) {activation = "none", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x6x6xf32>, tensor<8x8x3x3xf32>) -> tensor<1x8x6x6xf32>
  return %1 : tensor<1x8x6x6xf32>
}

// -----

// A global average pool written as a mean over H and W: the transpose back to NCHW sinks into
// the reduction, which then reduces the NHWC dims 1 and 2; the kept dims (N, C) keep their
// order, so no transpose is left after the conv.
// CHECK-LABEL: func.func @mean_pool
// CHECK: %[[C:.*]] = "ember.conv2d"({{.*}}layout = "nhwc"
// CHECK-NEXT: "ember.reduce"(%[[C]]) {axes = array<i64: 1, 2>, keepdim = false, kind = "mean"} : (tensor<2x6x6x8xf32>) -> tensor<2x8xf32>
// CHECK-NOT: ember.transpose
// CHECK: return
func.func @mean_pool(%x: tensor<2x8x6x6xf32>, %w: tensor<8x8x3x3xf32>) -> tensor<2x8xf32> {
  %0 = "ember.conv2d"(%x, %w) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<2x8x6x6xf32>, tensor<8x8x3x3xf32>) -> tensor<2x8x6x6xf32>
  %1 = "ember.reduce"(%0) {axes = array<i64: 2, 3>, keepdim = false, kind = "mean"} : (tensor<2x8x6x6xf32>) -> tensor<2x8xf32>
  return %1 : tensor<2x8xf32>
}

// -----

// With keepdim the size-1 dims stay: the reduction keeps NHWC and a transpose of the small
// [N, 1, 1, C] result restores NCHW (moving only size-1 dims, it canonicalizes to a reshape).
// CHECK-LABEL: func.func @mean_keepdim
// CHECK: %[[R:.*]] = "ember.reduce"({{.*}}) {axes = array<i64: 1, 2>, keepdim = true, kind = "mean"} : (tensor<2x6x6x8xf32>) -> tensor<2x1x1x8xf32>
// CHECK-NEXT: "ember.reshape"(%[[R]]) : (tensor<2x1x1x8xf32>) -> tensor<2x8x1x1xf32>
// CHECK-NOT: ember.transpose
func.func @mean_keepdim(%x: tensor<2x8x6x6xf32>, %w: tensor<8x8x3x3xf32>) -> tensor<2x8x1x1xf32> {
  %0 = "ember.conv2d"(%x, %w) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<2x8x6x6xf32>, tensor<8x8x3x3xf32>) -> tensor<2x8x6x6xf32>
  %1 = "ember.reduce"(%0) {axes = array<i64: 2, 3>, keepdim = true, kind = "mean"} : (tensor<2x8x6x6xf32>) -> tensor<2x8x1x1xf32>
  return %1 : tensor<2x8x1x1xf32>
}

// -----

// A reduction over the channels keeps H and W, in NCHW order [N, H, W] = NHWC's own: no
// transpose either. Reducing H alone keeps [N, C, W], which NHWC holds as [N, W, C]: a
// transpose of that result swaps them back.
// CHECK-LABEL: func.func @sum_channels
// CHECK: "ember.reduce"({{.*}}) {axes = array<i64: 3>, keepdim = false, kind = "sum"} : (tensor<2x6x6x8xf32>) -> tensor<2x6x6xf32>
// CHECK: %[[H:.*]] = "ember.reduce"({{.*}}) {axes = array<i64: 1>, keepdim = false, kind = "sum"} : (tensor<2x6x6x8xf32>) -> tensor<2x6x8xf32>
// CHECK-NEXT: "ember.transpose"(%[[H]]) {permutation = array<i64: 0, 2, 1>} : (tensor<2x6x8xf32>) -> tensor<2x8x6xf32>
func.func @sum_channels(%x: tensor<2x8x6x6xf32>, %w: tensor<8x8x3x3xf32>) -> (tensor<2x6x6xf32>, tensor<2x8x6xf32>) {
  %0 = "ember.conv2d"(%x, %w) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<2x8x6x6xf32>, tensor<8x8x3x3xf32>) -> tensor<2x8x6x6xf32>
  %1 = "ember.reduce"(%0) {axes = array<i64: 1>, keepdim = false, kind = "sum"} : (tensor<2x8x6x6xf32>) -> tensor<2x6x6xf32>
  %2 = "ember.reduce"(%0) {axes = array<i64: 2>, keepdim = false, kind = "sum"} : (tensor<2x8x6x6xf32>) -> tensor<2x8x6xf32>
  return %1, %2 : tensor<2x6x6xf32>, tensor<2x8x6xf32>
}
