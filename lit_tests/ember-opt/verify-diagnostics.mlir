// RUN: ember-opt %s --split-input-file --verify-diagnostics
// RUN: ember-opt %s --split-input-file --verify-diagnostics --ember-canonicalize --ember-lower-to-linalg

// --verify-diagnostics follows MLIR: each expectation names a line (its own, @+N, @-N,
// @above, @below or @unknown) and a substring of the message; all must be produced, and every
// produced diagnostic must be expected. Then the exit code is 0.

// On the same line as the op.
func.func @same_line(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%a) {kind = "swish"} : (tensor<4xf32>) -> tensor<4xf32> // expected-error {{'"swish"' does not satisfy the constraint}}
  return %0 : tensor<4xf32>
}

// -----

// A relative line, forwards and backwards.
func.func @relative(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+3 {{axis 2 out of range for rank 2}}
  // (a comment line)
  // (another)
  %0 = "ember.softmax"(%a) {axis = 2} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = "ember.reshape"(%0) : (tensor<4x8xf32>) -> tensor<4x4xf32>
  // expected-error @-1 {{element counts differ: 4x8 has 32, 4x4 has 16}}
  return %0 : tensor<4x8xf32>
}

// -----

// @below and @above name the nearest line that holds no expectation.
func.func @above_below(%a: tensor<4x8xf32>, %b: tensor<3xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  // expected-error @below {{operand shapes 4x8 and 3 do not broadcast}}
  // expected-error @+2 {{permutation [0, 0] is not a permutation of [0, 2)}}
  %0 = "ember.binary"(%a, %b) {kind = "add"} : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x8xf32>
  %1 = "ember.transpose"(%a) {permutation = array<i64: 0, 0>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %2 = "ember.unary"(%a) {kind = "relu"} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %3 = "ember.softmax"(%a) {axis = 5} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  // expected-error @-2 {{result must have the input's shape}}
  // expected-error @above {{axis 5 out of range for rank 2}}
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Parse errors are diagnostics too.
func.func @parse_error(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{expects exactly 1 operands, but got 2}}
  %0 = "ember.unary"(%a, %a) {kind = "relu"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// -re matches regexes in {{ }} and the rest literally.
func.func @regex(%a: tensor<8x16xf32>, %w: tensor<12x32xf32>) -> tensor<8x32xf32> {
  // expected-error-re @+1 {{contraction dims differ: lhs {{[0-9]+}}x16 has K={{[0-9]+}}}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<12x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A chunk without errors and without expectations passes.
func.func @clean(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}
