// RUN: ember-opt %s --split-input-file --verify-diagnostics --ember-bind-weights | filecheck %s
// RUN: ember-opt %s --split-input-file --verify-diagnostics --ember-lower-to-linalg --ember-bind-weights | filecheck %s --check-prefix=LINALG

// ember-bind-weights turns each distinct ember.weight name used in a function into one trailing
// argument tagged `ember.weight = "<name>"`; every argument becomes read-only for bufferization.

// A name used twice becomes one argument.
// CHECK-LABEL: func.func @main(
// CHECK-SAME: %arg0: tensor<4x8xf32> {bufferization.writable = false},
// CHECK-SAME: %arg1: tensor<8x16xf32> {bufferization.writable = false, ember.weight = "fc.weight"},
// CHECK-SAME: %arg2: tensor<16xf32> {bufferization.writable = false, ember.weight = "fc.bias"})
// CHECK-SAME: -> tensor<4x16xf32>
// CHECK-NOT: ember.weight"()
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2)
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2)
// The same after lowering: no ember op is left.
// LINALG-LABEL: func.func @main(
// LINALG-SAME: ember.weight = "fc.weight"
// LINALG-NOT: "ember.
// LINALG: linalg.matmul ins(%arg0, %arg1 : tensor<4x8xf32>, tensor<8x16xf32>)
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<8x16xf32>
  %b = "ember.weight"() {name = "fc.bias"} : () -> tensor<16xf32>
  %w2 = "ember.weight"() {name = "fc.weight"} : () -> tensor<8x16xf32>
  %0 = "ember.gemm"(%x, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %1 = "ember.gemm"(%x, %w2, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %2 = "ember.binary"(%0, %1) {kind = "add"} : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %2 : tensor<4x16xf32>
}

// -----

// Without weights only the read-only marks are added; existing argument attributes stay, and
// declarations are left alone.
// CHECK-LABEL: func.func @no_weights(
// CHECK-SAME: %arg0: tensor<4xf32> {bufferization.writable = false, foo.bar = 1 : i32})
// CHECK: func.func private @decl(tensor<4xf32>) -> tensor<4xf32>
func.func @no_weights(%x: tensor<4xf32> {foo.bar = 1 : i32}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
func.func private @decl(tensor<4xf32>) -> tensor<4xf32>

// -----

// Each function binds its own weights.
// CHECK-LABEL: func.func @first(
// CHECK-SAME: %arg1: tensor<4xf32> {bufferization.writable = false, ember.weight = "a"})
// CHECK-LABEL: func.func @second(
// CHECK-SAME: %arg1: tensor<4xf32> {bufferization.writable = false, ember.weight = "b"})
func.func @first(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "a"} : () -> tensor<4xf32>
  %0 = "ember.binary"(%x, %w) {kind = "add"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func @second(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "b"} : () -> tensor<4xf32>
  %0 = "ember.binary"(%x, %w) {kind = "add"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// Binding adds arguments, so a function called from IR can no longer be called with its old
// signature: the verifier after the pass reports the call, and the pass fails.
func.func @callee(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "a"} : () -> tensor<4xf32>
  %0 = "ember.binary"(%x, %w) {kind = "add"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func @caller(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'func.call' op incorrect number of operands for callee}}
  %0 = func.call @callee(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
