// RUN: ember-opt %s --split-input-file --verify-diagnostics

// IRDL (irdl.any_of): an unknown kind fails at parse time.
func.func @bad_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'"swish"' does not satisfy the constraint}}
  %0 = "ember.unary"(%x) {kind = "swish"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A GEMM activation name is a unary kind, but "none" is not.
func.func @none_is_not_a_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'"none"' does not satisfy the constraint}}
  %0 = "ember.unary"(%x) {kind = "none"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL: exactly one operand.
func.func @two_operands(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{op expects exactly 1 operands, but got 2}}
  %0 = "ember.unary"(%x, %x) {kind = "relu"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL: exactly one result.
func.func @two_results(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{op expects exactly 1 results, but got 2}}
  %0:2 = "ember.unary"(%x) {kind = "relu"} : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return %0#0 : tensor<4xf32>
}

// -----

func.func @shape_change(%x: tensor<4xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{result must have the input's shape}}
  %0 = "ember.unary"(%x) {kind = "exp"} : (tensor<4xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// IRDL: operands are tensors.
func.func @scalar_operand(%x: f32) -> tensor<4xf32> {
  // expected-error @+1 {{expected base type 'builtin.tensor' but got 'builtin.f32'}}
  %0 = "ember.unary"(%x) {kind = "exp"} : (f32) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
