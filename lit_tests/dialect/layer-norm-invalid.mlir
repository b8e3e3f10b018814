// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @ndim_zero(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{'ember.layer_norm' op normalized_ndim must be in [1, rank], got 0}}
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 0, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

func.func @ndim_above_rank(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{normalized_ndim must be in [1, rank], got 3}}
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 3, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

func.func @weight_shape(%x: tensor<8x64xf32>, %g: tensor<32xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{weight shape 32 must equal the normalized dims 64}}
  %0 = "ember.layer_norm"(%x, %g) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<8x64xf32>, tensor<32xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

func.func @bias_shape(%x: tensor<8x64xf32>, %b: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{bias shape 8x64 must equal the normalized dims 64}}
  %0 = "ember.layer_norm"(%x, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

func.func @result_shape(%x: tensor<8x64xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{result must have the input's shape}}
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// IRDL: epsilon is a float attribute.
func.func @epsilon_not_float(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.float' but got 'builtin.integer'}}
  %0 = "ember.layer_norm"(%x) {epsilon = 1, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

// IRDL: operandSegmentSizes must agree with the operands given.
func.func @segments_disagree(%x: tensor<8x64xf32>, %g: tensor<64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{sum of elements in 'operandSegmentSizes' attribute must be equal to the number of operands}}
  %0 = "ember.layer_norm"(%x, %g) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}
