// RUN: not ember-opt %s --split-input-file 2>&1 | filecheck %s --check-prefix=ERR
// RUN: not ember-opt %s --split-input-file 2>/dev/null | filecheck %s
// RUN: ember-opt %s --split-input-file --verify-diagnostics | filecheck %s
// RUN: not ember-opt %s 2>&1 | filecheck %s --check-prefix=ERR

// Each chunk between `// -----` lines is parsed, verified and transformed on its own; a
// failing chunk does not stop the others. Diagnostics name lines of the whole file, the same
// as without --split-input-file (the last RUN line, where the markers are plain comments).

// Outputs are printed in order, separated by `// -----`; a failed chunk prints nothing.
// CHECK-LABEL: func.func @first
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: // -----
// CHECK-NEXT: // -----
// CHECK-NEXT: module {
// CHECK-NEXT: func.func @third
// CHECK: // -----
// CHECK-NOT: module
func.func @first() {
  return
}

// -----

func.func @second(%a: tensor<4xf32>) -> tensor<2xf32> {
  // ERR: split-input-file.mlir:[[# @LINE + 2]]:8: error: 'ember.unary' op result must have the input's shape
  // expected-error @+1 {{result must have the input's shape}}
  %0 = "ember.unary"(%a) {kind = "relu"} : (tensor<4xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @third() {
  return
}

// -----

func.func @fourth(%a: tensor<4x8xf32>) -> tensor<4x4xf32> {
  // ERR: split-input-file.mlir:[[# @LINE + 2]]:8: error: 'ember.transpose' op permutation [0, 0]
  // expected-error @+1 {{permutation [0, 0] is not a permutation of [0, 2)}}
  %0 = "ember.transpose"(%a) {permutation = array<i64: 0, 0>} : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}
