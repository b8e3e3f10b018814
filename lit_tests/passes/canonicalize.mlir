// RUN: ember-opt %s --split-input-file --ember-canonicalize | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-canonicalize)' | filecheck %s

// ember-canonicalize drops identity and cancelling data movement and erases dead ember ops;
// it keeps every transpose and reshape that changes the data's layout.

// CHECK-LABEL: func.func @identity_transpose
// CHECK-NEXT: return %arg0
func.func @identity_transpose(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 0, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// CHECK-LABEL: func.func @keeps_real_transpose
// CHECK-NEXT: %[[T:.*]] = "ember.transpose"(%arg0) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
// CHECK-NEXT: return %[[T]]
func.func @keeps_real_transpose(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// A transpose followed by its inverse cancels.
// CHECK-LABEL: func.func @cancelling_transposes
// CHECK-NOT: ember.transpose
// CHECK: return %arg0
func.func @cancelling_transposes(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %1 = "ember.transpose"(%0) {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// Two transposes that do not cancel compose into one: result dim i is x's dim p[q[i]].
// CHECK-LABEL: func.func @composed_transposes
// CHECK-NEXT: %[[T:.*]] = "ember.transpose"(%arg0) {permutation = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK-NEXT: return %[[T]]
func.func @composed_transposes(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %1 = "ember.transpose"(%0) {permutation = array<i64: 2, 1, 0>} : (tensor<3x2x4xf32>) -> tensor<4x2x3xf32>
  return %1 : tensor<4x2x3xf32>
}

// -----

// CHECK-LABEL: func.func @identity_reshape
// CHECK-NEXT: return %arg0
func.func @identity_reshape(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_of_reshape
// CHECK-NEXT: %[[R:.*]] = "ember.reshape"(%arg0) : (tensor<4x8xf32>) -> tensor<32xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape_of_reshape(%x: tensor<4x8xf32>) -> tensor<32xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x8xf32>) -> tensor<2x16xf32>
  %1 = "ember.reshape"(%0) : (tensor<2x16xf32>) -> tensor<32xf32>
  return %1 : tensor<32xf32>
}

// -----

// A reshape and its inverse cancel.
// CHECK-LABEL: func.func @reshape_round_trip
// CHECK-NEXT: return %arg0
func.func @reshape_round_trip(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x8xf32>) -> tensor<32xf32>
  %1 = "ember.reshape"(%0) : (tensor<32xf32>) -> tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// CHECK-LABEL: func.func @keeps_real_reshape
// CHECK-NEXT: "ember.reshape"(%arg0) : (tensor<4x8xf32>) -> tensor<2x16xf32>
func.func @keeps_real_reshape(%x: tensor<4x8xf32>) -> tensor<2x16xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x8xf32>) -> tensor<2x16xf32>
  return %0 : tensor<2x16xf32>
}

// -----

// Dead ember ops are erased; ops that are used stay.
// CHECK-LABEL: func.func @dead_ops
// CHECK-NOT: ember.weight
// CHECK-NOT: "ember.unary"(%arg0) {kind = "exp"}
// CHECK: %[[R:.*]] = "ember.unary"(%arg0) {kind = "relu"}
// CHECK-NEXT: return %[[R]]
func.func @dead_ops(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "unused"} : () -> tensor<4xf32>
  %0 = "ember.unary"(%x) {kind = "exp"} : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "ember.unary"(%x) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// A transpose with a second user is still folded into the outer one; the inner one stays for
// its other user.
// CHECK-LABEL: func.func @shared_inner_transpose
// CHECK: %[[INNER:.*]] = "ember.transpose"(%arg0) {permutation = array<i64: 1, 0>}
// CHECK-NOT: ember.transpose
// CHECK: return %arg0, %[[INNER]]
func.func @shared_inner_transpose(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x4xf32>) {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %1 = "ember.transpose"(%0) {permutation = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  return %1, %0 : tensor<4x8xf32>, tensor<8x4xf32>
}
