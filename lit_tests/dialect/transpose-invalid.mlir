// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @repeated_dim(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{'ember.transpose' op permutation [0, 0] is not a permutation of [0, 2)}}
  %0 = "ember.transpose"(%x) {permutation = array<i64: 0, 0>} : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

func.func @wrong_length(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{permutation [1, 0, 2] is not a permutation of [0, 2)}}
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0, 2>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

func.func @out_of_range(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{permutation [2, 0] is not a permutation of [0, 2)}}
  %0 = "ember.transpose"(%x) {permutation = array<i64: 2, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

func.func @result_not_permuted(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{result shape 4x8 must be the permuted input shape 8x4}}
  %0 = "ember.transpose"(%x) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// IRDL: the permutation is a dense array attribute.
func.func @permutation_not_array(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.dense_array' but got 'builtin.array'}}
  %0 = "ember.transpose"(%x) {permutation = [1, 0]} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
