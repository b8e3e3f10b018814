// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.transpose: result dim i is input dim permutation[i].

// CHECK-LABEL: func.func @transpose_2d
// CHECK: "ember.transpose"(%arg0) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
func.func @transpose_2d(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_4d_dynamic
// CHECK: "ember.transpose"(%arg0) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<?x16x8x64xf32>) -> tensor<?x8x16x64xf32>
func.func @transpose_4d_dynamic(%x: tensor<?x16x8x64xf32>) -> tensor<?x8x16x64xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<?x16x8x64xf32>) -> tensor<?x8x16x64xf32>
  return %0 : tensor<?x8x16x64xf32>
}

// -----

// The identity permutation is valid (ember-canonicalize removes it).
// CHECK-LABEL: func.func @transpose_identity
// CHECK: "ember.transpose"(%arg0) {permutation = array<i64: 0, 1, 2>}
func.func @transpose_identity(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 0, 1, 2>} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}
