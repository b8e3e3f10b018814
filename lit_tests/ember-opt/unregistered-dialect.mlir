// RUN: not ember-opt %s 2>&1 | filecheck %s --check-prefix=ERR
// RUN: ember-opt %s --allow-unregistered-dialect --ember-canonicalize | filecheck %s

// Ops of unknown dialects are rejected unless --allow-unregistered-dialect (as in mlir-opt);
// ember passes then leave them alone.
// ERR: unregistered-dialect.mlir:[[# @LINE + 5]]:21: error: operation being parsed with an unregistered dialect
// CHECK-LABEL: func.func @f
// CHECK-NEXT: %[[X:.*]] = "test.opaque"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: return %[[X]]
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "test.opaque"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "ember.reshape"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}
