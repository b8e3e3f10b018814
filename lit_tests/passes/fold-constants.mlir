// RUN: ember-opt %s --split-input-file --ember-fold-constants | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-fold-constants=max-elements=16 | filecheck %s --check-prefix=SMALL

// ember-fold-constants evaluates ember ops whose operands are all constants (at least one an
// ember.weight) into a new weights-table entry named after the source and the op. Without
// --weights the table is abstract: the IR is rewritten the same way, the data is absent.
// max-elements bounds the size of a folded result.

// linear's weight transpose disappears from the run-time code.
// CHECK-LABEL: func.func @transpose
// CHECK-NEXT: %[[W:.*]] = "ember.weight"() {name = "w.transpose"} : () -> tensor<8x4xf32>
// CHECK-NEXT: return %[[W]]
// 32 elements is over the limit of 16: nothing folds.
// SMALL-LABEL: func.func @transpose
// SMALL-NEXT: "ember.weight"() {name = "w"} : () -> tensor<4x8xf32>
// SMALL-NEXT: "ember.transpose"
func.func @transpose() -> tensor<8x4xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4x8xf32>
  %0 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// Results small enough fold under both limits.
// CHECK-LABEL: func.func @small_reshape
// CHECK-NEXT: "ember.weight"() {name = "b.reshape"} : () -> tensor<2x8xf32>
// SMALL-LABEL: func.func @small_reshape
// SMALL-NEXT: "ember.weight"() {name = "b.reshape"} : () -> tensor<2x8xf32>
func.func @small_reshape() -> tensor<2x8xf32> {
  %b = "ember.weight"() {name = "b"} : () -> tensor<16xf32>
  %0 = "ember.reshape"(%b) : (tensor<16xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// A chain folds step by step; the name records every step.
// CHECK-LABEL: func.func @chain
// CHECK-NEXT: %[[W:.*]] = "ember.weight"() {name = "w.transpose.neg.reshape"} : () -> tensor<32xf32>
// CHECK-NEXT: return %[[W]]
func.func @chain() -> tensor<32xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4x8xf32>
  %0 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %1 = "ember.unary"(%0) {kind = "neg"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
  %2 = "ember.reshape"(%1) : (tensor<8x4xf32>) -> tensor<32xf32>
  return %2 : tensor<32xf32>
}

// -----

// Two weights, broadcast.
// CHECK-LABEL: func.func @two_weights
// CHECK-NEXT: "ember.weight"() {name = "a.mul"} : () -> tensor<4x8xf32>
// CHECK-NEXT: return
func.func @two_weights() -> tensor<4x8xf32> {
  %a = "ember.weight"() {name = "a"} : () -> tensor<4x8xf32>
  %b = "ember.weight"() {name = "b"} : () -> tensor<8xf32>
  %0 = "ember.binary"(%a, %b) {kind = "mul"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// A weight and a dense arith.constant (splat or not) fold together.
// CHECK-LABEL: func.func @weight_and_literal
// CHECK-NEXT: "ember.weight"() {name = "a.mul"} : () -> tensor<2xf32>
// CHECK-NEXT: "ember.weight"() {name = "a.sub"} : () -> tensor<2xf32>
// CHECK-NOT: arith.constant
// CHECK: return
func.func @weight_and_literal() -> (tensor<2xf32>, tensor<2xf32>) {
  %a = "ember.weight"() {name = "a"} : () -> tensor<2xf32>
  %c = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %s = arith.constant dense<2.0> : tensor<2xf32>
  %0 = "ember.binary"(%c, %a) {kind = "mul"} : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %1 = "ember.binary"(%a, %s) {kind = "sub"} : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %0, %1 : tensor<2xf32>, tensor<2xf32>
}

// -----

// An operand that is a function argument is not a constant: nothing folds.
// CHECK-LABEL: func.func @argument_operand
// CHECK-NEXT: %[[A:.*]] = "ember.weight"() {name = "a"} : () -> tensor<4x8xf32>
// CHECK-NEXT: "ember.binary"(%arg0, %[[A]]) {kind = "add"}
func.func @argument_operand(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = "ember.weight"() {name = "a"} : () -> tensor<4x8xf32>
  %0 = "ember.binary"(%x, %a) {kind = "add"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// Only arith constants (no weight): left to upstream constant folding.
// CHECK-LABEL: func.func @literals_only
// CHECK: arith.constant
// CHECK-NEXT: "ember.unary"(%{{.*}}) {kind = "neg"}
func.func @literals_only() -> tensor<4xf32> {
  %c = arith.constant dense<2.0> : tensor<4xf32>
  %0 = "ember.unary"(%c) {kind = "neg"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// Ops without a compile-time evaluator stay: erf-based gelu and gemm.
// CHECK-LABEL: func.func @not_evaluated
// CHECK: "ember.unary"(%{{.*}}) {kind = "gelu"}
// CHECK: "ember.gemm"
func.func @not_evaluated() -> (tensor<4x8xf32>, tensor<4x4xf32>) {
  %a = "ember.weight"() {name = "a"} : () -> tensor<4x8xf32>
  %b = "ember.weight"() {name = "b"} : () -> tensor<8x4xf32>
  %0 = "ember.unary"(%a) {kind = "gelu"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = "ember.gemm"(%a, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x4xf32>
}

// -----

// The same fold twice (tied weights) shares one derived entry; different folds of one weight
// get distinct names.
// CHECK-LABEL: func.func @shared_and_unique_names
// CHECK-DAG: %[[T:.*]] = "ember.weight"() {name = "w.transpose"} : () -> tensor<8x4xf32>
// CHECK-DAG: %[[N:.*]] = "ember.weight"() {name = "w.neg"} : () -> tensor<4x8xf32>
// CHECK-DAG: %[[E:.*]] = "ember.weight"() {name = "w.exp"} : () -> tensor<4x8xf32>
// CHECK: return %[[T]], %[[T]], %[[N]], %[[E]]
func.func @shared_and_unique_names() -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4x8xf32>
  %0 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %1 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %2 = "ember.unary"(%w) {kind = "neg"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %3 = "ember.unary"(%w) {kind = "exp"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0, %1, %2, %3 : tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A mutable weight (a buffer the model changes in place) is known only at run time: nothing
// folds it, the op stays.
// CHECK-LABEL: func.func @mutable_weight
// CHECK-NEXT: %[[C:.*]] = "ember.weight"() {mutable = true, name = "count"}
// CHECK-NEXT: "ember.unary"(%[[C]]) {kind = "neg"}
func.func @mutable_weight() -> tensor<4xf32> {
  %c = "ember.weight"() {name = "count", mutable = true} : () -> tensor<4xf32>
  %0 = "ember.unary"(%c) {kind = "neg"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
