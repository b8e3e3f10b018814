// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @count_mismatch(%x: tensor<4x512xf32>) -> tensor<4x8x32xf32> {
  // expected-error @+1 {{'ember.reshape' op element counts differ: 4x512 has 2048, 4x8x32 has 1024}}
  %0 = "ember.reshape"(%x) : (tensor<4x512xf32>) -> tensor<4x8x32xf32>
  return %0 : tensor<4x8x32xf32>
}

// -----

func.func @to_scalar(%x: tensor<2xf32>) -> tensor<f32> {
  // expected-error @+1 {{element counts differ: 2 has 2, scalar has 1}}
  %0 = "ember.reshape"(%x) : (tensor<2xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// IRDL: reshape takes its target shape from the result type, not an operand.
func.func @shape_operand(%x: tensor<4x8xf32>, %s: tensor<2xindex>) -> tensor<8x4xf32> {
  // expected-error @+1 {{op expects exactly 1 operands, but got 2}}
  %0 = "ember.reshape"(%x, %s) : (tensor<4x8xf32>, tensor<2xindex>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
