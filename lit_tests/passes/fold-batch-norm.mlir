// RUN: ember-opt %s --split-input-file --ember-fold-batch-norm | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-fold-batch-norm --ember-fuse-epilogue | filecheck %s --check-prefix=FUSED

// ember-fold-batch-norm folds per-channel constant shifts and scales (inference BatchNorm after
// ember-fold-constants) into the producing conv2d/gemm's filter and bias.

// The BatchNorm chain (sub mean, mul scale, add shift) disappears into the conv.
// CHECK-LABEL: func.func @conv_bn
// CHECK-NEXT: %[[W:.*]] = "ember.weight"() {name = "conv.weight.mul"} : () -> tensor<4x3x3x3xf32>
// CHECK-NEXT: %[[B:.*]] = "ember.weight"() {name = "bn.mean.bias.mul.add"} : () -> tensor<4xf32>
// CHECK-NEXT: %[[C:.*]] = "ember.conv2d"(%arg0, %[[W]], %[[B]]) {activation = "none"
// CHECK-NOT: ember.binary
// CHECK: "ember.unary"(%[[C]]) {kind = "relu"}
// FUSED-LABEL: func.func @conv_bn
// FUSED: "ember.conv2d"({{.*}}) {activation = "relu"
// FUSED-NOT: ember.binary
// FUSED-NOT: ember.unary
func.func @conv_bn(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<4x3x3x3xf32>
  %mean = "ember.weight"() {name = "bn.mean"} : () -> tensor<4x1x1xf32>
  %scale = "ember.weight"() {name = "bn.scale"} : () -> tensor<4x1x1xf32>
  %shift = "ember.weight"() {name = "bn.shift"} : () -> tensor<4x1x1xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %1 = "ember.binary"(%0, %mean) {kind = "sub"} : (tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %2 = "ember.binary"(%1, %scale) {kind = "mul"} : (tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %3 = "ember.binary"(%2, %shift) {kind = "add"} : (tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %4 = "ember.unary"(%3) {kind = "relu"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %4 : tensor<1x4x8x8xf32>
}

// -----

// A per-feature scale after a GEMM folds into the [K, N] weight's columns and the bias.
// CHECK-LABEL: func.func @gemm_scale
// FUSED-LABEL: func.func @gemm_scale
// CHECK-DAG: "ember.weight"() {name = "fc.w.mul"} : () -> tensor<8x16xf32>
// CHECK-DAG: "ember.weight"() {name = "fc.b.mul"} : () -> tensor<16xf32>
// CHECK: "ember.gemm"
// CHECK-NOT: ember.binary
func.func @gemm_scale(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %w = "ember.weight"() {name = "fc.w"} : () -> tensor<8x16xf32>
  %b = "ember.weight"() {name = "fc.b"} : () -> tensor<16xf32>
  %s = "ember.weight"() {name = "s"} : () -> tensor<16xf32>
  %0 = "ember.gemm"(%x, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  %1 = "ember.binary"(%0, %s) {kind = "mul"} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return %1 : tensor<?x16xf32>
}

// -----

// Negative: a constant that varies along a spatial dim is not a per-channel affine op.
// CHECK-LABEL: func.func @spatial_constant
// FUSED-LABEL: func.func @spatial_constant
// CHECK: "ember.conv2d"
// CHECK-NEXT: "ember.binary"
func.func @spatial_constant(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<4x3x3x3xf32>
  %c = "ember.weight"() {name = "c"} : () -> tensor<1x8x1xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %1 = "ember.binary"(%0, %c) {kind = "mul"} : (tensor<1x4x8x8xf32>, tensor<1x8x1xf32>) -> tensor<1x4x8x8xf32>
  return %1 : tensor<1x4x8x8xf32>
}

// -----

// Negative: after an activation the affine op no longer commutes into the conv.
// CHECK-LABEL: func.func @after_activation
// FUSED-LABEL: func.func @after_activation
// CHECK: "ember.conv2d"({{.*}}) {activation = "relu"
// CHECK-NEXT: "ember.binary"
func.func @after_activation(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<4x3x3x3xf32>
  %s = "ember.weight"() {name = "s"} : () -> tensor<4x1x1xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %1 = "ember.binary"(%0, %s) {kind = "mul"} : (tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  return %1 : tensor<1x4x8x8xf32>
}

// -----

// Negative: the conv result has a second user, so it must stay unscaled.
// CHECK-LABEL: func.func @two_users
// FUSED-LABEL: func.func @two_users
// CHECK: "ember.conv2d"
// CHECK-NEXT: "ember.binary"
func.func @two_users(%x: tensor<1x3x8x8xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<4x3x3x3xf32>
  %s = "ember.weight"() {name = "s"} : () -> tensor<4x1x1xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %1 = "ember.binary"(%0, %s) {kind = "mul"} : (tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  return %0, %1 : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
}
