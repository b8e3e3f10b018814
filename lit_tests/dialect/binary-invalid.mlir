// RUN: ember-opt %s --split-input-file --verify-diagnostics

// IRDL (irdl.any_of): an unknown kind fails at parse time.
func.func @bad_kind(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'"mod"' does not satisfy the constraint}}
  %0 = "ember.binary"(%a, %b) {kind = "mod"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @not_broadcastable(%a: tensor<4x8xf32>, %b: tensor<4xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{operand shapes 4x8 and 4 do not broadcast}}
  %0 = "ember.binary"(%a, %b) {kind = "add"} : (tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @not_broadcastable_3d(%a: tensor<2x3x4xf32>, %b: tensor<3x3x4xf32>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{operand shapes 2x3x4 and 3x3x4 do not broadcast}}
  %0 = "ember.binary"(%a, %b) {kind = "mul"} : (tensor<2x3x4xf32>, tensor<3x3x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

func.func @wrong_result_shape(%a: tensor<4x1xf32>, %b: tensor<1x8xf32>) -> tensor<4x1xf32> {
  // expected-error @+1 {{result shape 4x1 must be the broadcast shape 4x8}}
  %0 = "ember.binary"(%a, %b) {kind = "add"} : (tensor<4x1xf32>, tensor<1x8xf32>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

// IRDL: exactly two operands.
func.func @one_operand(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{op expects exactly 2 operands, but got 1}}
  %0 = "ember.binary"(%a) {kind = "add"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
