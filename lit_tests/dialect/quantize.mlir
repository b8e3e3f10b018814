// RUN: ember-opt %s | ember-opt | filecheck %s
// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-lower-to-linalg,canonicalize)' | filecheck %s --check-prefix=LOWER

// Quantize and dequantize round-trip: per tensor (ui8 and i8 storage) and per channel.
// CHECK-LABEL: func.func @round_trip
// CHECK: %[[Q:.*]] = "ember.quantize"(%arg0) {quant_max = 255 : i64, quant_min = 0 : i64, scale = 5.000000e-01 : f32, zero_point = 3 : i64} : (tensor<?x8xf32>) -> tensor<?x8xui8>
// CHECK: "ember.dequantize"(%[[Q]]) {operandSegmentSizes = array<i32: 1, 0, 0>, scale = 5.000000e-01 : f32, zero_point = 3 : i64} : (tensor<?x8xui8>) -> tensor<?x8xf32>
// CHECK: "ember.dequantize"(%arg1, %arg2, %arg3) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x8xi8>, tensor<4xf32>, tensor<4xi64>) -> tensor<4x8xf32>
// Lowered: PyTorch's arithmetic, elementwise; ui8 bytes are read through bitcasts to i8 that
// cancel between the two ops.
// LOWER-LABEL: func.func @round_trip
// LOWER-NOT: tensor.bitcast
// LOWER: arith.mulf %{{.*}}, %cst
// LOWER: math.roundeven
// LOWER: arith.fptosi
// LOWER: arith.trunci
// LOWER: arith.uitofp
// LOWER: arith.subf
// LOWER: arith.mulf
// LOWER: arith.sitofp
// LOWER: arith.sitofp
func.func @round_trip(%x: tensor<?x8xf32>, %w: tensor<4x8xi8>, %s: tensor<4xf32>, %z: tensor<4xi64>) -> (tensor<?x8xf32>, tensor<4x8xf32>) {
  %q = "ember.quantize"(%x) {scale = 0.5 : f32, zero_point = 3 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<?x8xf32>) -> tensor<?x8xui8>
  %d = "ember.dequantize"(%q) {scale = 0.5 : f32, zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<?x8xui8>) -> tensor<?x8xf32>
  %dw = "ember.dequantize"(%w, %s, %z) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x8xi8>, tensor<4xf32>, tensor<4xi64>) -> tensor<4x8xf32>
  return %d, %dw : tensor<?x8xf32>, tensor<4x8xf32>
}
