// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.layer_norm with and without its optional weight and bias.

// CHECK-LABEL: func.func @ln_weight_bias
// CHECK: "ember.layer_norm"(%arg0, %arg1, %arg2) {epsilon = 9.99999974E-6 : f32, normalized_ndim = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<?x512xf32>, tensor<512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
func.func @ln_weight_bias(%x: tensor<?x512xf32>, %g: tensor<512xf32>, %b: tensor<512xf32>) -> tensor<?x512xf32> {
  %0 = "ember.layer_norm"(%x, %g, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<?x512xf32>, tensor<512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  return %0 : tensor<?x512xf32>
}

// -----

// CHECK-LABEL: func.func @ln_plain
// CHECK: "ember.layer_norm"(%arg0) {{.*}}operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
func.func @ln_plain(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

// CHECK-LABEL: func.func @ln_weight_only
// CHECK: "ember.layer_norm"(%arg0, %arg1) {{.*}}operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
func.func @ln_weight_only(%x: tensor<8x64xf32>, %g: tensor<64xf32>) -> tensor<8x64xf32> {
  %0 = "ember.layer_norm"(%x, %g) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

// CHECK-LABEL: func.func @ln_bias_only
// CHECK: "ember.layer_norm"(%arg0, %arg1) {{.*}}operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
func.func @ln_bias_only(%x: tensor<8x64xf32>, %b: tensor<64xf32>) -> tensor<8x64xf32> {
  %0 = "ember.layer_norm"(%x, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

// Normalizing over the two trailing dims: weight and bias have those dims' shape.
// CHECK-LABEL: func.func @ln_two_dims
// CHECK: "ember.layer_norm"(%arg0, %arg1, %arg2) {epsilon = 9.99999997E-7 : f32, normalized_ndim = 2 : i64, {{.*}}} : (tensor<2x8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<2x8x64xf32>
func.func @ln_two_dims(%x: tensor<2x8x64xf32>, %g: tensor<8x64xf32>, %b: tensor<8x64xf32>) -> tensor<2x8x64xf32> {
  %0 = "ember.layer_norm"(%x, %g, %b) {epsilon = 1.0e-6 : f32, normalized_ndim = 2, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<2x8x64xf32>
  return %0 : tensor<2x8x64xf32>
}
