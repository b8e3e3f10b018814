// RUN: not ember-opt %s 2>&1 | filecheck %s
// RUN: ember-opt %s --verify-diagnostics

// Input that MLIR's own parser aborts on (an assertion, SIGABRT) is refused first with a
// located error: a dense array of index elements. A comment that mentions array<index: 1>
// is not looked at. The exit code is 1 and nothing reaches stdout.
// CHECK: parser-abort.mlir:[[# @LINE + 5]]:52: error: a dense array cannot hold index elements: write array<i64: ...>
// CHECK-NOT: module

func.func @f(%x: tensor<1x3x16x16xf32>) -> tensor<1x3x16x16xf32> {
  // expected-error @+1 {{a dense array cannot hold index elements}}
  %0 = "ember.unary"(%x) {kind = "relu", strides = array<index: 2, 2>} : (tensor<1x3x16x16xf32>) -> tensor<1x3x16x16xf32>
  return %0 : tensor<1x3x16x16xf32>
}
