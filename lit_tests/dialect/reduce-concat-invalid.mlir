// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @bad_axes(%x: tensor<4x16xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{axes [2] must be sorted, distinct and in [0, 2)}}
  %0 = "ember.reduce"(%x) {kind = "sum", axes = array<i64: 2>, keepdim = false} : (tensor<4x16xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL (irdl.any_of): an unknown kind fails at parse time.
func.func @bad_kind(%x: tensor<4x16xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'"prod"' does not satisfy the constraint}}
  %0 = "ember.reduce"(%x) {kind = "prod", axes = array<i64: 1>, keepdim = false} : (tensor<4x16xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @concat_sizes(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>) -> tensor<2x9xf32> {
  // expected-error @+1 {{inputs add up to 8 along axis 1, result has 9}}
  %0 = "ember.concat"(%a, %b) {axis = 1} : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x9xf32>
  return %0 : tensor<2x9xf32>
}
