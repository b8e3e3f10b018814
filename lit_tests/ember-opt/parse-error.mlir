// RUN: not ember-opt %s 2>&1 | filecheck %s
// RUN: ember-opt %s --verify-diagnostics

// A syntax error is reported at its file, line and column, like mlir-opt; nothing is printed
// on stdout and the exit code is 1.
// CHECK: parse-error.mlir:[[# @LINE + 6]]:27: error: expected '>' in tensor type
// CHECK-NOT: module

func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%a) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  // expected-error @+1 {{expected '>' in tensor type}}
  return %0 : tensor<4xf32
}
