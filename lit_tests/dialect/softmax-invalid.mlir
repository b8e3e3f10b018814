// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @axis_too_large(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'ember.softmax' op axis 2 out of range for rank 2}}
  %0 = "ember.softmax"(%x) {axis = 2} : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// Negative axes are not accepted: the frontend normalizes them.
func.func @axis_negative(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{axis -1 out of range for rank 2}}
  %0 = "ember.softmax"(%x) {axis = -1} : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

func.func @result_shape(%x: tensor<8x16xf32>) -> tensor<16x8xf32> {
  // expected-error @+1 {{result must have the input's shape}}
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<8x16xf32>) -> tensor<16x8xf32>
  return %0 : tensor<16x8xf32>
}

// -----

// IRDL: axis is an integer attribute.
func.func @axis_not_integer(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.integer' but got 'builtin.string'}}
  %0 = "ember.softmax"(%x) {axis = "last"} : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
