// RUN: not ember-opt < %s --split-input-file --ember-canonicalize 2>/dev/null | filecheck %s
// RUN: not ember-opt - --split-input-file --ember-canonicalize < %s 2>/dev/null | filecheck %s
// RUN: not ember-opt --split-input-file < %s 2>&1 | filecheck %s --check-prefix=ERR

// With no input file, or `-`, ember-opt reads stdin; diagnostics then name <stdin>.
// CHECK-LABEL: func.func @f
// CHECK-NEXT: return %arg0
func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 0, 1>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  // ERR: <stdin>:[[# @LINE + 1]]:8: error: 'ember.softmax' op axis 1 out of range for rank 1
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
