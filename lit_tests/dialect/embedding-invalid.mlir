// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @table_not_matrix(%t: tensor<100xf32>, %i: tensor<4xi64>) -> tensor<4x1xf32> {
  // expected-error @+1 {{table must be a rank-2 tensor [V, D]}}
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100xf32>, tensor<4xi64>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

func.func @float_indices(%t: tensor<100x8xf32>, %i: tensor<4xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{indices must be i32 or i64, got f32}}
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @wrong_shape(%t: tensor<100x8xf32>, %i: tensor<4xi64>) -> tensor<4x9xf32> {
  // expected-error @+1 {{result shape 4x9 must be the indices' shape followed by D: 4x8}}
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x8xf32>, tensor<4xi64>) -> tensor<4x9xf32>
  return %0 : tensor<4x9xf32>
}

// -----

func.func @float_table_with_scales(%t: tensor<100x8xf32>, %i: tensor<4xi64>, %s: tensor<100xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{an int8 table (with scales) is i8 and its rows f32, got f32 -> f32}}
  %0 = "ember.embedding"(%t, %i, %s) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x8xf32>, tensor<4xi64>, tensor<100xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @scale_per_column(%t: tensor<100x8xi8>, %i: tensor<4xi64>, %s: tensor<8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{scales must be f32 [100] (one per row)}}
  %0 = "ember.embedding"(%t, %i, %s) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x8xi8>, tensor<4xi64>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @rows_not_table_type(%t: tensor<100x8xf32>, %i: tensor<4xi64>) -> tensor<4x8xf16> {
  // expected-error @+1 {{result must have the table's element type f32, got f16}}
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x8xf32>, tensor<4xi64>) -> tensor<4x8xf16>
  return %0 : tensor<4x8xf16>
}
