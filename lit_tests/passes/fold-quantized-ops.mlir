// RUN: ember-opt %s --split-input-file --ember-fold-quantized-ops | filecheck %s

// A PT2E Linear: dequantized codes x dequantized (per channel, symmetric) int8 weight [N, K],
// transposed, with a fused bias and ReLU, becomes a static int8 GEMM on the codes; the weight
// is stored transposed once ([K, N], `<name>.transpose`), its scales are used as they are.
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "fc.scale"} : () -> tensor<32xf32>
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "fc.bias"} : () -> tensor<32xf32>
// CHECK-DAG: %[[Q:.*]] = "ember.quantize"(%arg0)
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "fc.weight.transpose"} : () -> tensor<16x32xi8>
// CHECK: %[[Y:.*]] = "ember.qgemm"(%[[Q]], %[[W]], %[[S]], %[[B]]) {activation = "relu", lhs_encoding = "s8", lhs_scale = 2.500000e-01 : f32, lhs_zero_point = 128 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>} : (tensor<?x16xui8>, tensor<16x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
// CHECK-NOT: ember.dequantize
// CHECK-NOT: ember.gemm
// CHECK: return %[[Y]]
func.func @linear(%x: tensor<?x16xf32>) -> tensor<?x32xf32> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<32x16xi8>
  %s = "ember.weight"() {name = "fc.scale"} : () -> tensor<32xf32>
  %z = arith.constant dense<0> : tensor<32xi64>
  %b = "ember.weight"() {name = "fc.bias"} : () -> tensor<32xf32>
  %q = "ember.quantize"(%x) {scale = 0.25 : f32, zero_point = 128 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<?x16xf32>) -> tensor<?x16xui8>
  %a = "ember.dequantize"(%q) {scale = 0.25 : f32, zero_point = 128 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<?x16xui8>) -> tensor<?x16xf32>
  %dw = "ember.dequantize"(%w, %s, %z) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<32x16xi8>, tensor<32xf32>, tensor<32xi64>) -> tensor<32x16xf32>
  %wt = "ember.transpose"(%dw) {permutation = array<i64: 1, 0>} : (tensor<32x16xf32>) -> tensor<16x32xf32>
  %y = "ember.gemm"(%a, %wt, %b) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<?x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// A weight [K, N] quantized per tensor (zero point 0): its scale becomes a per-column vector.
// quantize(dequantize(c)) with the same parameters is c.
// CHECK-LABEL: func.func @per_tensor_weight
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "mm.weight"} : () -> tensor<16x8xi8>
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "mm.weight.scales"} : () -> tensor<8xf32>
// CHECK: %[[Y:.*]] = "ember.qgemm"(%arg0, %[[W]], %[[S]]) {{.*}}lhs_scale = 1.250000e-01 : f32, lhs_zero_point = -3 : i64
// CHECK-SAME: (tensor<4x16xi8>, tensor<16x8xi8>, tensor<8xf32>) -> tensor<4x8xf32>
// CHECK: return %[[Y]], %arg0
func.func @per_tensor_weight(%c: tensor<4x16xi8>) -> (tensor<4x8xf32>, tensor<4x16xi8>) {
  %w = "ember.weight"() {name = "mm.weight"} : () -> tensor<16x8xi8>
  %a = "ember.dequantize"(%c) {scale = 0.125 : f32, zero_point = -3 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y = "ember.gemm"(%a, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %r = "ember.quantize"(%a) {scale = 0.125 : f32, zero_point = -3 : i64, quant_min = -128 : i64, quant_max = 127 : i64} : (tensor<4x16xf32>) -> tensor<4x16xi8>
  return %y, %r : tensor<4x8xf32>, tensor<4x16xi8>
}

// -----

// Left in floating point: an asymmetric weight (zero points not provably 0), unsigned weight
// bytes, an fp32 lhs, a per-channel dequantized lhs, and a requantization to other parameters.
// CHECK-LABEL: func.func @not_folded
// CHECK-NOT: ember.qgemm
// CHECK-COUNT-4: "ember.gemm"
// CHECK: "ember.quantize"
func.func @not_folded(%x: tensor<4x16xf32>, %c: tensor<4x16xui8>, %z: tensor<8xi64>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x16xui8>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xi8>
  %u = "ember.weight"() {name = "u"} : () -> tensor<16x8xui8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<8xf32>
  %s16 = "ember.weight"() {name = "s16"} : () -> tensor<16xf32>
  %z16 = arith.constant dense<0> : tensor<16xi64>
  %a = "ember.dequantize"(%c) {scale = 0.125 : f32, zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xui8>) -> tensor<4x16xf32>
  %asym = "ember.dequantize"(%w, %s, %z) {axis = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<16x8xi8>, tensor<8xf32>, tensor<8xi64>) -> tensor<16x8xf32>
  %y0 = "ember.gemm"(%a, %asym) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %du = "ember.dequantize"(%u) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xui8>) -> tensor<16x8xf32>
  %y1 = "ember.gemm"(%a, %du) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y2 = "ember.gemm"(%x, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %ac = "ember.dequantize"(%c, %s16, %z16) {axis = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x16xui8>, tensor<16xf32>, tensor<16xi64>) -> tensor<4x16xf32>
  %y3 = "ember.gemm"(%ac, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %r = "ember.quantize"(%a) {scale = 0.25 : f32, zero_point = 3 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x16xf32>) -> tensor<4x16xui8>
  return %y0, %y1, %y2, %y3, %r : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x16xui8>
}
