// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize,ember-fold-constants,ember-fuse-epilogue,ember-canonicalize)' | filecheck %s
// RUN: ember-opt %s --ember-canonicalize --ember-fold-constants --ember-fuse-epilogue --ember-canonicalize | filecheck %s
// RUN: ember-opt %s --ember-canonicalize --ember-fold-constants --ember-fuse-epilogue --ember-canonicalize | filecheck %s --check-prefix=COUNT

// The MLP block as the frontend emits it (Linear -> GELU -> Linear -> + x -> LayerNorm, with
// the weight transposes of torch's Linear) through ember's graph passes: the transposes fold
// into pre-transposed weights, and each Linear with its bias, GELU and residual becomes one
// gemm. Exactly two gemms remain, and no loose elementwise or data-movement op.

// COUNT-NOT: "ember.{{(binary|unary|transpose)}}"
// COUNT-COUNT-2: "ember.gemm"
// COUNT-NOT: "ember.gemm"
// COUNT-NOT: "ember.{{(binary|unary|transpose)}}"

// CHECK-LABEL: func.func @main(%arg0: tensor<?x512xf32>) -> tensor<?x512xf32>
// CHECK-DAG: %[[B1:.*]] = "ember.weight"() {name = "fc1.bias"} : () -> tensor<2048xf32>
// CHECK-DAG: %[[B2:.*]] = "ember.weight"() {name = "fc2.bias"} : () -> tensor<512xf32>
// CHECK-DAG: %[[G:.*]] = "ember.weight"() {name = "ln.weight"} : () -> tensor<512xf32>
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "ln.bias"} : () -> tensor<512xf32>
// CHECK-DAG: %[[W1:.*]] = "ember.weight"() {name = "fc1.weight.transpose"} : () -> tensor<512x2048xf32>
// First Linear + GELU: bias and activation in the epilogue.
// CHECK: %[[H:.*]] = "ember.gemm"(%arg0, %[[W1]], %[[B1]]) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x512xf32>, tensor<512x2048xf32>, tensor<2048xf32>) -> tensor<?x2048xf32>
// CHECK: %[[W2:.*]] = "ember.weight"() {name = "fc2.weight.transpose"} : () -> tensor<2048x512xf32>
// Second Linear + residual: bias and the block input as the residual.
// CHECK: %[[Y:.*]] = "ember.gemm"(%[[H]], %[[W2]], %[[B2]], %arg0) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x2048xf32>, tensor<2048x512xf32>, tensor<512xf32>, tensor<?x512xf32>) -> tensor<?x512xf32>
// CHECK: %[[OUT:.*]] = "ember.layer_norm"(%[[Y]], %[[G]], %[[B]])
// CHECK-NEXT: return %[[OUT]]

func.func @main(%x: tensor<?x512xf32>) -> tensor<?x512xf32> {
  %w1 = "ember.weight"() {name = "fc1.weight"} : () -> tensor<2048x512xf32>
  %b1 = "ember.weight"() {name = "fc1.bias"} : () -> tensor<2048xf32>
  %w2 = "ember.weight"() {name = "fc2.weight"} : () -> tensor<512x2048xf32>
  %b2 = "ember.weight"() {name = "fc2.bias"} : () -> tensor<512xf32>
  %g = "ember.weight"() {name = "ln.weight"} : () -> tensor<512xf32>
  %b = "ember.weight"() {name = "ln.bias"} : () -> tensor<512xf32>
  %w1t = "ember.transpose"(%w1) {permutation = array<i64: 1, 0>} : (tensor<2048x512xf32>) -> tensor<512x2048xf32>
  %0 = "ember.gemm"(%x, %w1t) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x512xf32>, tensor<512x2048xf32>) -> tensor<?x2048xf32>
  %1 = "ember.binary"(%0, %b1) {kind = "add"} : (tensor<?x2048xf32>, tensor<2048xf32>) -> tensor<?x2048xf32>
  %2 = "ember.unary"(%1) {kind = "gelu"} : (tensor<?x2048xf32>) -> tensor<?x2048xf32>
  %w2t = "ember.transpose"(%w2) {permutation = array<i64: 1, 0>} : (tensor<512x2048xf32>) -> tensor<2048x512xf32>
  %3 = "ember.gemm"(%2, %w2t) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x2048xf32>, tensor<2048x512xf32>) -> tensor<?x512xf32>
  %4 = "ember.binary"(%3, %b2) {kind = "add"} : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  %5 = "ember.binary"(%4, %x) {kind = "add"} : (tensor<?x512xf32>, tensor<?x512xf32>) -> tensor<?x512xf32>
  %6 = "ember.layer_norm"(%5, %g, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<?x512xf32>, tensor<512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  return %6 : tensor<?x512xf32>
}
