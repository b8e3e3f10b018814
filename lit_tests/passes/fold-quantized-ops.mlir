// RUN: ember-opt %s --split-input-file --ember-fold-quantized-ops | filecheck %s

// A PT2E Linear: dequantized codes x dequantized (per channel, symmetric) int8 weight [N, K],
// transposed, with a fused bias and ReLU, becomes a static int8 GEMM on the codes; the weight
// is stored transposed once ([K, N], `<name>.transpose`), its scales are used as they are.
// lhs_encoding says how a kernel may read the codes: u8 (unsigned), s8 (signed), u7 (unsigned
// codes a quantize kept below 128, see @seven_bits).
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "fc.scale"} : () -> tensor<32xf32>
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "fc.bias"} : () -> tensor<32xf32>
// CHECK-DAG: %[[Q:.*]] = "ember.quantize"(%arg0)
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "fc.weight.transpose"} : () -> tensor<16x32xi8>
// CHECK: %[[Y:.*]] = "ember.qgemm"(%[[Q]], %[[W]], %[[S]], %[[B]]) {activation = "relu", lhs_encoding = "u8", lhs_scale = 2.500000e-01 : f32, lhs_zero_point = 128 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>} : (tensor<?x16xui8>, tensor<16x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
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
  %y = "ember.gemm"(%a, %wt, %b) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
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
  %y = "ember.gemm"(%a, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
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
  %y0 = "ember.gemm"(%a, %asym) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %du = "ember.dequantize"(%u) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xui8>) -> tensor<16x8xf32>
  %y1 = "ember.gemm"(%a, %du) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y2 = "ember.gemm"(%x, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %ac = "ember.dequantize"(%c, %s16, %z16) {axis = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x16xui8>, tensor<16xf32>, tensor<16xi64>) -> tensor<4x16xf32>
  %y3 = "ember.gemm"(%ac, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %r = "ember.quantize"(%a) {scale = 0.25 : f32, zero_point = 3 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x16xf32>) -> tensor<4x16xui8>
  return %y0, %y1, %y2, %y3, %r : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x16xui8>
}

// -----

// A PT2E convolution after ember-convert-layout: NHWC conv2d on transposed dequantized codes
// and a transposed per-channel int8 filter [F, C, KH, KW]. The transposes move onto the
// bytes (the filter's is derived in the weights table, its channel axis follows), and the
// conv becomes a qgemm over the codes' patches: lhs_patches = KH, KW, SH, SW, DH, DW, PH, PW
// (padded with the zero point), the filter as a [KH*KW*C, F] matrix.
// CHECK-LABEL: func.func @conv
// CHECK-DAG: %[[T:.*]] = "ember.transpose"(%[[Q:.*]]) {permutation = array<i64: 0, 2, 3, 1>} : (tensor<2x3x8x8xui8>) -> tensor<2x8x8x3xui8>
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "conv.weight.transpose.matrix"} : () -> tensor<27x16xi8>
// CHECK: "ember.qgemm"(%[[T]], %[[W]], %{{.*}}, %{{.*}}) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 2, 2, 1, 1, 1, 1>, lhs_scale = 5.000000e-01 : f32, lhs_zero_point = 7 : i64
// CHECK-SAME: (tensor<2x8x8x3xui8>, tensor<27x16xi8>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x4x4x16xf32>
// CHECK-NOT: ember.conv2d
func.func @conv(%x: tensor<2x3x8x8xf32>) -> tensor<2x4x4x16xf32> {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<16x3x3x3xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<16xf32>
  %z = arith.constant dense<0> : tensor<16xi64>
  %b = "ember.weight"() {name = "conv.bias"} : () -> tensor<16xf32>
  %q = "ember.quantize"(%x) {scale = 0.5 : f32, zero_point = 7 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<2x3x8x8xf32>) -> tensor<2x3x8x8xui8>
  %a = "ember.dequantize"(%q) {scale = 0.5 : f32, zero_point = 7 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<2x3x8x8xui8>) -> tensor<2x3x8x8xf32>
  %an = "ember.transpose"(%a) {permutation = array<i64: 0, 2, 3, 1>} : (tensor<2x3x8x8xf32>) -> tensor<2x8x8x3xf32>
  %dw = "ember.dequantize"(%w, %s, %z) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<16x3x3x3xi8>, tensor<16xf32>, tensor<16xi64>) -> tensor<16x3x3x3xf32>
  %f = "ember.transpose"(%dw) {permutation = array<i64: 2, 3, 1, 0>} : (tensor<16x3x3x3xf32>) -> tensor<3x3x3x16xf32>
  %y = "ember.conv2d"(%an, %f, %b) {activation = "relu", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nhwc", padding = array<i64: 1, 1>, strides = array<i64: 2, 2>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<2x8x8x3xf32>, tensor<3x3x3x16xf32>, tensor<16xf32>) -> tensor<2x4x4x16xf32>
  return %y : tensor<2x4x4x16xf32>
}

// -----

// Left as they are: an NCHW conv, and a depthwise conv with a residual.
// CHECK-LABEL: func.func @conv_not_folded
// CHECK-NOT: ember.qgemm
// CHECK-NOT: ember.qdepthwise_conv2d
// CHECK-COUNT-2: "ember.conv2d"
func.func @conv_not_folded(%c: tensor<1x4x4x8xui8>, %cn: tensor<1x8x4x4xui8>, %r: tensor<1x4x4x8xf32>) -> (tensor<1x4x4x8xf32>, tensor<1x8x4x4xf32>) {
  %w = "ember.weight"() {name = "dw.weight"} : () -> tensor<3x3x1x8xi8>
  %w2 = "ember.weight"() {name = "nchw.weight"} : () -> tensor<8x8x1x1xi8>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<1x4x4x8xui8>) -> tensor<1x4x4x8xf32>
  %an = "ember.dequantize"(%cn) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<3x3x1x8xi8>) -> tensor<3x3x1x8xf32>
  %dw2 = "ember.dequantize"(%w2) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x8x1x1xi8>) -> tensor<8x8x1x1xf32>
  %y = "ember.conv2d"(%a, %dw, %r) {activation = "none", dilations = array<i64: 1, 1>, groups = 8 : i64, layout = "nhwc", padding = array<i64: 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 1>} : (tensor<1x4x4x8xf32>, tensor<3x3x1x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  %y2 = "ember.conv2d"(%an, %dw2) {activation = "none", dilations = array<i64: 1, 1>, groups = 1 : i64, layout = "nchw", padding = array<i64: 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
  return %y, %y2 : tensor<1x4x4x8xf32>, tensor<1x8x4x4xf32>
}

// -----

// A depthwise conv (groups = C = F) on codes with a per-channel int8 filter [KH, KW, 1, C]
// becomes ember.qdepthwise_conv2d on the codes, its filter [KH, KW, C] derived in the weights
// table; the quantize after it moves into its epilogue.
// CHECK-LABEL: func.func @depthwise
// CHECK-DAG: %[[F:.*]] = "ember.weight"() {name = "dw.weight.depthwise"} : () -> tensor<3x3x8xi8>
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "dw.scale"} : () -> tensor<8xf32>
// CHECK: "ember.qdepthwise_conv2d"(%arg0, %[[F]], %[[S]], %{{.*}}) {activation = "relu", dilations = array<i64: 1, 1>, input_scale = 5.000000e-01 : f32, input_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1>, padding = array<i64: 1, 1>, result_range = array<i64: 0, 255>, result_scale = 2.500000e-01 : f32, result_zero_point = 0 : i64, strides = array<i64: 2, 2>} : (tensor<1x8x8x8xui8>, tensor<3x3x8xi8>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x4x4x8xui8>
// CHECK-NOT: ember.conv2d
// CHECK-NOT: ember.quantize
func.func @depthwise(%c: tensor<1x8x8x8xui8>) -> tensor<1x4x4x8xui8> {
  %w = "ember.weight"() {name = "dw.weight"} : () -> tensor<3x3x1x8xi8>
  %s = "ember.weight"() {name = "dw.scale"} : () -> tensor<8xf32>
  %z = arith.constant dense<0> : tensor<8xi64>
  %b = "ember.weight"() {name = "dw.bias"} : () -> tensor<8xf32>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x8x8xf32>
  %dw = "ember.dequantize"(%w, %s, %z) {axis = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<3x3x1x8xi8>, tensor<8xf32>, tensor<8xi64>) -> tensor<3x3x1x8xf32>
  %y = "ember.conv2d"(%a, %dw, %b) {activation = "relu", dilations = array<i64: 1, 1>, groups = 8 : i64, layout = "nhwc", padding = array<i64: 1, 1>, strides = array<i64: 2, 2>, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x8x8x8xf32>, tensor<3x3x1x8xf32>, tensor<8xf32>) -> tensor<1x4x4x8xf32>
  %q = "ember.quantize"(%y) {scale = 0.25 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xui8>
  return %q : tensor<1x4x4x8xui8>
}

// -----

// Codes a quantize kept in [0, 127] (7-bit activations, for vpmaddubsw) are marked u7, also
// when they reach the GEMM through data movement.
// CHECK-LABEL: func.func @seven_bits
// CHECK: "ember.qgemm"({{.*}}lhs_encoding = "u7"
func.func @seven_bits(%x: tensor<4x2x8xf32>) -> tensor<8x8xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x8xi8>
  %q = "ember.quantize"(%x) {scale = 0.25 : f32, zero_point = 64 : i64, quant_min = 0 : i64, quant_max = 127 : i64} : (tensor<4x2x8xf32>) -> tensor<4x2x8xui8>
  %r = "ember.reshape"(%q) : (tensor<4x2x8xui8>) -> tensor<8x8xui8>
  %t = "ember.transpose"(%r) {permutation = array<i64: 1, 0>} : (tensor<8x8xui8>) -> tensor<8x8xui8>
  %a = "ember.dequantize"(%t) {scale = 0.25 : f32, zero_point = 64 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x8xui8>) -> tensor<8x8xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x8xi8>) -> tensor<8x8xf32>
  %y = "ember.gemm"(%a, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  return %y : tensor<8x8xf32>
}

// -----

// A quantize reading an int8 GEMM moves into it: the qgemm requantizes in its epilogue and
// writes the codes (result_scale, result_zero_point, result_range). Not when the GEMM's f32
// result has another user (@shared).
// CHECK-LABEL: func.func @requantize_in_epilogue
// CHECK: %[[H:.*]] = "ember.qgemm"({{.*}}result_range = array<i64: 0, 127>, result_scale = 1.250000e-01 : f32, result_zero_point = 3 : i64} : ({{.*}}) -> tensor<4x8xui8>
// CHECK-NOT: ember.quantize
// CHECK: return %[[H]]
func.func @requantize_in_epilogue(%c: tensor<4x16xi8>) -> tensor<4x8xui8> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xi8>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y = "ember.gemm"(%a, %dw) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %q = "ember.quantize"(%y) {scale = 0.125 : f32, zero_point = 3 : i64, quant_min = 0 : i64, quant_max = 127 : i64} : (tensor<4x8xf32>) -> tensor<4x8xui8>
  return %q : tensor<4x8xui8>
}

// CHECK-LABEL: func.func @shared
// CHECK: %[[Y:.*]] = "ember.qgemm"({{.*}}) -> tensor<4x8xf32>
// CHECK: "ember.quantize"(%[[Y]])
func.func @shared(%c: tensor<4x16xi8>) -> (tensor<4x8xui8>, tensor<4x8xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xi8>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y = "ember.gemm"(%a, %dw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %q = "ember.quantize"(%y) {scale = 0.125 : f32, zero_point = 3 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x8xf32>) -> tensor<4x8xui8>
  return %q, %y : tensor<4x8xui8>, tensor<4x8xf32>
}

// -----

// A residual block's closing ReLU after an int8 GEMM with a residual becomes the GEMM's
// output_activation (applied after the residual), and the quantize after it moves in too.
// CHECK-LABEL: func.func @residual_block
// CHECK: %[[Y:.*]] = "ember.qgemm"(%{{.*}}, %{{.*}}, %{{.*}}, %arg1) {activation = "none", lhs_encoding = "s8", lhs_scale = 5.000000e-01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>, output_activation = "relu", result_range = array<i64: 0, 255>
// CHECK-NOT: ember.unary
// CHECK: return %[[Y]]
func.func @residual_block(%c: tensor<4x16xi8>, %r: tensor<4x8xf32>) -> tensor<4x8xui8> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xi8>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y = "ember.gemm"(%a, %dw, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %z = "ember.unary"(%y) {kind = "relu"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %q = "ember.quantize"(%z) {scale = 0.125 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x8xf32>) -> tensor<4x8xui8>
  return %q : tensor<4x8xui8>
}

// A unary the epilogue cannot compute (exp), or one after a GEMM without a residual (the
// activation attribute takes it there, ember-fuse-epilogue's job), stays.
// CHECK-LABEL: func.func @not_after_residual
// CHECK: "ember.unary"
func.func @not_after_residual(%c: tensor<4x16xi8>, %r: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xi8>
  %a = "ember.dequantize"(%c) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %dw = "ember.dequantize"(%w) {scale = 0.5 : f32, zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16x8xi8>) -> tensor<16x8xf32>
  %y = "ember.gemm"(%a, %dw, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %z = "ember.unary"(%y) {kind = "exp"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %z : tensor<4x8xf32>
}

// -----

// A shortcut: %a is quantized for the next layer and is also the residual of a later int8
// GEMM. %a then writes the codes alone, and the residual reads them, dequantized in the
// GEMM's epilogue (residual_scale, residual_zero_point): no f32 copy, no ember.quantize.
// CHECK-LABEL: func.func @shortcut_codes
// CHECK: %[[A:.*]] = "ember.qgemm"(%arg0, {{.*}}result_range = array<i64: 0, 255>, result_scale = 2.500000e-01 : f32, result_zero_point = 0 : i64} : ({{.*}}) -> tensor<4x16xui8>
// CHECK: %[[B:.*]] = "ember.qgemm"(%[[A]], %{{.*}}, %{{.*}}, %[[A]]) {{.*}}residual_scale = 2.500000e-01 : f32, residual_zero_point = 0 : i64} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xui8>) -> tensor<4x16xf32>
// CHECK-NOT: ember.quantize
// CHECK-NOT: ember.dequantize
// CHECK: return %[[B]]
func.func @shortcut_codes(%c: tensor<4x16xui8>) -> tensor<4x16xf32> {
  %w1 = "ember.weight"() {name = "w1"} : () -> tensor<16x16xi8>
  %s1 = "ember.weight"() {name = "s1"} : () -> tensor<16xf32>
  %w2 = "ember.weight"() {name = "w2"} : () -> tensor<16x16xi8>
  %s2 = "ember.weight"() {name = "s2"} : () -> tensor<16xf32>
  %a = "ember.qgemm"(%c, %w1, %s1) {activation = "relu", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>) -> tensor<4x16xf32>
  %q = "ember.quantize"(%a) {scale = 0.25 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x16xf32>) -> tensor<4x16xui8>
  %b = "ember.qgemm"(%q, %w2, %s2, %a) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %b : tensor<4x16xf32>
}

// -----

// Kept in f32: the shortcut is also a result of the function (not only residuals and one
// quantize read it).
// CHECK-LABEL: func.func @shortcut_also_returned
// CHECK: %[[A:.*]] = "ember.qgemm"({{.*}} -> tensor<4x16xf32>
// CHECK: %[[Q:.*]] = "ember.quantize"(%[[A]])
// CHECK: "ember.qgemm"(%[[Q]], %{{.*}}, %{{.*}}, %[[A]])
// CHECK-NOT: residual_scale
func.func @shortcut_also_returned(%c: tensor<4x16xui8>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %w1 = "ember.weight"() {name = "w1"} : () -> tensor<16x16xi8>
  %s1 = "ember.weight"() {name = "s1"} : () -> tensor<16xf32>
  %w2 = "ember.weight"() {name = "w2"} : () -> tensor<16x16xi8>
  %s2 = "ember.weight"() {name = "s2"} : () -> tensor<16xf32>
  %a = "ember.qgemm"(%c, %w1, %s1) {activation = "relu", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>) -> tensor<4x16xf32>
  %q = "ember.quantize"(%a) {scale = 0.25 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x16xf32>) -> tensor<4x16xui8>
  %b = "ember.qgemm"(%q, %w2, %s2, %a) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %a, %b : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// A residual dequantized per tensor (PT2E quantizes both inputs of a conv's residual add)
// becomes codes of the GEMM; one dequantized per channel stays f32.
// CHECK-LABEL: func.func @dequantized_residual
// CHECK: "ember.qgemm"(%arg0, %{{.*}}, %{{.*}}, %arg1) {{.*}}residual_scale = 5.000000e-01 : f32, residual_zero_point = -2 : i64} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xi8>) -> tensor<4x16xf32>
// CHECK: %[[D:.*]] = "ember.dequantize"(%arg1, %{{.*}}, %{{.*}}) {axis = 1 : i64
// CHECK: "ember.qgemm"(%arg0, %{{.*}}, %{{.*}}, %[[D]])
// CHECK-NOT: residual_scale
func.func @dequantized_residual(%c: tensor<4x16xui8>, %r: tensor<4x16xi8>, %rs: tensor<16xf32>, %rz: tensor<16xi64>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x16xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<16xf32>
  %d = "ember.dequantize"(%r) {scale = 0.5 : f32, zero_point = -2 : i64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x16xi8>) -> tensor<4x16xf32>
  %y = "ember.qgemm"(%c, %w, %s, %d) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %e = "ember.dequantize"(%r, %rs, %rz) {axis = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x16xi8>, tensor<16xf32>, tensor<16xi64>) -> tensor<4x16xf32>
  %z = "ember.qgemm"(%c, %w, %s, %e) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %y, %z : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// A layer left in floating point (an f32 GEMM on a weight) before an int8 one writes the
// codes itself: the quantize moves into its epilogue, as into an int8 GEMM's.
// CHECK-LABEL: func.func @float_layer_writes_codes
// CHECK: %[[Y:.*]] = "ember.gemm"(%arg0, %{{.*}}) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, result_range = array<i64: 0, 255>, result_scale = 1.250000e-01 : f32, result_zero_point = 2 : i64} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xui8>
// CHECK-NOT: ember.quantize
// CHECK: return %[[Y]]
func.func @float_layer_writes_codes(%x: tensor<4x16xf32>) -> tensor<4x8xui8> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<16x8xf32>
  %y = "ember.gemm"(%x, %w) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %q = "ember.quantize"(%y) {scale = 0.125 : f32, zero_point = 2 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x8xf32>) -> tensor<4x8xui8>
  return %q : tensor<4x8xui8>
}

// Not folded: a product of two run-time tensors (no layer: attention's, say).
// CHECK-LABEL: func.func @float_product_not_folded
// CHECK: "ember.gemm"({{.*}}) -> tensor<4x8xf32>
// CHECK: "ember.quantize"
func.func @float_product_not_folded(%x: tensor<4x16xf32>, %v: tensor<16x8xf32>) -> tensor<4x8xui8> {
  %y = "ember.gemm"(%x, %v) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %q = "ember.quantize"(%y) {scale = 0.125 : f32, zero_point = 2 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x8xf32>) -> tensor<4x8xui8>
  return %q : tensor<4x8xui8>
}

// -----

// A float stem whose output is quantized for the next layer and added as a later int8
// GEMM's residual writes the codes alone; the residual reads them (residual_scale).
// CHECK-LABEL: func.func @float_shortcut_codes
// CHECK: %[[A:.*]] = "ember.gemm"(%arg0, {{.*}}result_scale = 2.500000e-01 : f32, result_zero_point = 0 : i64} : ({{.*}}) -> tensor<4x16xui8>
// CHECK: %[[B:.*]] = "ember.qgemm"(%[[A]], %{{.*}}, %{{.*}}, %[[A]]) {{.*}}residual_scale = 2.500000e-01 : f32, residual_zero_point = 0 : i64} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xui8>) -> tensor<4x16xf32>
// CHECK-NOT: ember.quantize
// CHECK-NOT: ember.dequantize
// CHECK: return %[[B]]
func.func @float_shortcut_codes(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w1 = "ember.weight"() {name = "w1"} : () -> tensor<8x16xf32>
  %w2 = "ember.weight"() {name = "w2"} : () -> tensor<16x16xi8>
  %s2 = "ember.weight"() {name = "s2"} : () -> tensor<16xf32>
  %a = "ember.gemm"(%x, %w1) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %q = "ember.quantize"(%a) {scale = 0.25 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<4x16xf32>) -> tensor<4x16xui8>
  %b = "ember.qgemm"(%q, %w2, %s2, %a) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x16xi8>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %b : tensor<4x16xf32>
}
