// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.softmax along the last, the first and a middle axis.

// CHECK-LABEL: func.func @softmax_last
// CHECK: "ember.softmax"(%arg0) {axis = 1 : i64} : (tensor<?x128xf32>) -> tensor<?x128xf32>
func.func @softmax_last(%x: tensor<?x128xf32>) -> tensor<?x128xf32> {
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<?x128xf32>) -> tensor<?x128xf32>
  return %0 : tensor<?x128xf32>
}

// -----

// CHECK-LABEL: func.func @softmax_axes
// CHECK: "ember.softmax"(%arg0) {axis = 0 : i64} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
// CHECK: "ember.softmax"(%arg0) {axis = 1 : i64} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
func.func @softmax_axes(%x: tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<2x8x16xf32>) {
  %0 = "ember.softmax"(%x) {axis = 0} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  %1 = "ember.softmax"(%x) {axis = 1} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %0, %1 : tensor<2x8x16xf32>, tensor<2x8x16xf32>
}
