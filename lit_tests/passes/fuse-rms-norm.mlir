// RUN: ember-opt %s --split-input-file --ember-fuse-rms-norm | filecheck %s

// LLaMA's RMSNorm: x * rsqrt(mean(x^2, -1, keepdim) + eps) * weight.
// CHECK-LABEL: func.func @llama_rms_norm
// CHECK: %[[N:.*]] = "ember.rms_norm"(%arg0, %arg1) {epsilon = 9.99999997E-7 : f32, normalized_ndim = 1 : i64, operandSegmentSizes = array<i32: 1, 1>}
// CHECK-NEXT: return %[[N]]
func.func @llama_rms_norm(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>) -> tensor<2x8x64xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-6> : tensor<f32>
  %0 = "ember.binary"(%x, %two) {kind = "pow"} : (tensor<2x8x64xf32>, tensor<f32>) -> tensor<2x8x64xf32>
  %1 = "ember.reduce"(%0) {kind = "mean", axes = array<i64: 2>, keepdim = true} : (tensor<2x8x64xf32>) -> tensor<2x8x1xf32>
  %2 = "ember.binary"(%1, %eps) {kind = "add"} : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %3 = "ember.unary"(%2) {kind = "rsqrt"} : (tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %4 = "ember.binary"(%x, %3) {kind = "mul"} : (tensor<2x8x64xf32>, tensor<2x8x1xf32>) -> tensor<2x8x64xf32>
  %5 = "ember.binary"(%4, %w) {kind = "mul"} : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return %5 : tensor<2x8x64xf32>
}

// -----

// The x * x and x / sqrt(...) spelling, no weight.
// CHECK-LABEL: func.func @div_sqrt_form
// CHECK: "ember.rms_norm"(%arg0) {epsilon = 9.99999974E-6 : f32, normalized_ndim = 1 : i64, operandSegmentSizes = array<i32: 1, 0>}
// CHECK-NOT: ember.reduce
func.func @div_sqrt_form(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %0 = "ember.binary"(%x, %x) {kind = "mul"} : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  %1 = "ember.reduce"(%0) {kind = "mean", axes = array<i64: 1>, keepdim = true} : (tensor<4x32xf32>) -> tensor<4x1xf32>
  %2 = "ember.binary"(%eps, %1) {kind = "add"} : (tensor<f32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %3 = "ember.unary"(%2) {kind = "sqrt"} : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %4 = "ember.binary"(%x, %3) {kind = "div"} : (tensor<4x32xf32>, tensor<4x1xf32>) -> tensor<4x32xf32>
  return %4 : tensor<4x32xf32>
}

// -----

// Negatives: a mean over another dim, and the square of a different tensor, are not RMSNorm.
// CHECK-LABEL: func.func @not_rms_norm
// CHECK-NOT: ember.rms_norm
func.func @not_rms_norm(%x: tensor<4x32xf32>, %y: tensor<4x32xf32>) -> (tensor<4x32xf32>, tensor<4x32xf32>) {
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %0 = "ember.binary"(%x, %x) {kind = "mul"} : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  %1 = "ember.reduce"(%0) {kind = "mean", axes = array<i64: 0>, keepdim = true} : (tensor<4x32xf32>) -> tensor<1x32xf32>
  %2 = "ember.binary"(%1, %eps) {kind = "add"} : (tensor<1x32xf32>, tensor<f32>) -> tensor<1x32xf32>
  %3 = "ember.unary"(%2) {kind = "rsqrt"} : (tensor<1x32xf32>) -> tensor<1x32xf32>
  %4 = "ember.binary"(%x, %3) {kind = "mul"} : (tensor<4x32xf32>, tensor<1x32xf32>) -> tensor<4x32xf32>
  %5 = "ember.binary"(%y, %y) {kind = "mul"} : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  %6 = "ember.reduce"(%5) {kind = "mean", axes = array<i64: 1>, keepdim = true} : (tensor<4x32xf32>) -> tensor<4x1xf32>
  %7 = "ember.binary"(%6, %eps) {kind = "add"} : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %8 = "ember.unary"(%7) {kind = "rsqrt"} : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %9 = "ember.binary"(%x, %8) {kind = "mul"} : (tensor<4x32xf32>, tensor<4x1xf32>) -> tensor<4x32xf32>
  return %4, %9 : tensor<4x32xf32>, tensor<4x32xf32>
}
