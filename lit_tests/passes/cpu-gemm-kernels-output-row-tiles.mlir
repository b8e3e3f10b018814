// RUN: ember-opt %s --split-input-file --target=host:cpu=znver4 --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s

// An int8 convolution reading its patches in place runs each output row in tiles of its own
// (their rows are consecutive pixels of that row): 16 pixels a row take two 8-row tiles, not
// one of the 10 rows the registers allow and tails of 4 and 2, whose few accumulators cannot
// hide the dot product's latency (gemm_schedule.OUTPUT_ROW_SHARE).
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: patches = array<i64: 18, 18, 32, 3, 3, 1, 1, 1, 1>
// CHECK-SAME: ember.gemm_schedule = {{{.*}}mr = 8 : i64
func.func @conv16(%x: tensor<1x16x16x32xui8>) -> tensor<1x16x16x32xf32> {
  %w = "ember.weight"() {name = "conv.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<1x16x16x32xf32>
  return %0 : tensor<1x16x16x32xf32>
}

// -----

// 13 pixels a row have no divisor near 10: the rows the registers allow, and a tail.
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: patches = array<i64: 15, 15, 32, 3, 3, 1, 1, 1, 1>
// CHECK-SAME: ember.gemm_schedule = {{{.*}}mr = 10 : i64
func.func @conv13(%x: tensor<1x13x13x32xui8>) -> tensor<1x13x13x32xf32> {
  %w = "ember.weight"() {name = "conv.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x13x13x32xui8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<1x13x13x32xf32>
  return %0 : tensor<1x13x13x32xf32>
}

// -----

// A GEMM of plain rows keeps the 10 rows.
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: ember.gemm_schedule = {{{.*}}mr = 10 : i64
func.func @linear(%x: tensor<64x288xui8>) -> tensor<64x32xf32> {
  %w = "ember.weight"() {name = "fc.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "fc.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<64x288xui8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<64x32xf32>
  return %0 : tensor<64x32xf32>
}
