// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.reshape: same element count, any ranks.

// CHECK-LABEL: func.func @reshape_split
// CHECK: "ember.reshape"(%arg0) : (tensor<4x512xf32>) -> tensor<4x8x64xf32>
func.func @reshape_split(%x: tensor<4x512xf32>) -> tensor<4x8x64xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x512xf32>) -> tensor<4x8x64xf32>
  return %0 : tensor<4x8x64xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_flatten
// CHECK: "ember.reshape"(%arg0) : (tensor<2x3x4xf32>) -> tensor<24xf32>
func.func @reshape_flatten(%x: tensor<2x3x4xf32>) -> tensor<24xf32> {
  %0 = "ember.reshape"(%x) : (tensor<2x3x4xf32>) -> tensor<24xf32>
  return %0 : tensor<24xf32>
}

// -----

// A dynamic input's element count is unknown: the verifier cannot compare it.
// CHECK-LABEL: func.func @reshape_dynamic_input
// CHECK: "ember.reshape"(%arg0) : (tensor<?x64xf32>) -> tensor<4x8x64xf32>
func.func @reshape_dynamic_input(%x: tensor<?x64xf32>) -> tensor<4x8x64xf32> {
  %0 = "ember.reshape"(%x) : (tensor<?x64xf32>) -> tensor<4x8x64xf32>
  return %0 : tensor<4x8x64xf32>
}
