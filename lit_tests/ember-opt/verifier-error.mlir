// RUN: not ember-opt %s 2>&1 | filecheck %s

// After parsing, MLIR's verifier and then ember's semantic verifier run; every broken rule is
// reported at its op, and no pass runs.
// CHECK: verifier-error.mlir:[[# @LINE + 6]]:8: error: 'ember.gemm' op contraction dims differ
// CHECK: verifier-error.mlir:[[# @LINE + 6]]:8: error: 'ember.unary' op result must have the input's shape
// CHECK-NOT: error
// CHECK-NOT: module

func.func @f(%a: tensor<8x16xf32>, %w: tensor<12x32xf32>) -> (tensor<8x32xf32>, tensor<8x8xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<12x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.unary"(%a) {kind = "relu"} : (tensor<8x16xf32>) -> tensor<8x8xf32>
  return %0, %1 : tensor<8x32xf32>, tensor<8x8xf32>
}
