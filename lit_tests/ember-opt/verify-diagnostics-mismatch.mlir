// RUN: not ember-opt %s --split-input-file --verify-diagnostics 2>&1 | filecheck %s

// When expectations and diagnostics disagree, --verify-diagnostics reports each mismatch at
// its line and exits with 1.

// A produced error that no comment expects.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:8: error: unexpected error: '"swish"' does not satisfy the constraint
func.func @unexpected(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%a) {kind = "swish"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// An expectation that nothing produced; it is reported at the comment.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:6: error: expected error "something went wrong" was not produced
func.func @not_produced(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{something went wrong}}
  return %a : tensor<4xf32>
}

// -----

// The right message on the wrong line is both unexpected and not produced.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 4]]:8: error: unexpected error: 'ember.softmax' op axis 3 out of range
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:6: error: expected error "axis 3 out of range" was not produced
func.func @wrong_line(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+2 {{axis 3 out of range}}
  %0 = "ember.softmax"(%a) {axis = 3} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// The right line with a message that is not a substring of the produced one.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 4]]:8: error: unexpected error: 'ember.reshape' op element counts differ
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:6: error: expected error "element counts are equal" was not produced
func.func @wrong_message(%a: tensor<4xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{element counts are equal}}
  %0 = "ember.reshape"(%a) : (tensor<4xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// The right line and message with the wrong severity.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 3]]:6: error: 'error' diagnostic emitted when expecting a 'warning'
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:6: error: expected warning "does not satisfy the constraint" was not produced
func.func @wrong_severity(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-warning @+1 {{does not satisfy the constraint}}
  %0 = "ember.binary"(%a, %a) {kind = "xor"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A designator pointing outside the chunk.
// CHECK: verify-diagnostics-mismatch.mlir:[[# @LINE + 2]]:6: error: expected diagnostic designator @-10 points outside the input
func.func @outside() {
  // expected-error @-10 {{anything}}
  return
}
