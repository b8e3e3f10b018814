// RUN: ember-opt %s --split-input-file | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-lower-to-linalg | filecheck %s --check-prefix=LINALG

// CHECK-LABEL: func.func @reduce_mean_keepdim
// CHECK: "ember.reduce"(%arg0) {axes = array<i64: 1>, keepdim = true, kind = "mean"}
// LINALG-LABEL: func.func @reduce_mean_keepdim
// LINALG: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// LINALG: arith.divf
func.func @reduce_mean_keepdim(%x: tensor<?x16xf32>) -> tensor<?x1xf32> {
  %0 = "ember.reduce"(%x) {kind = "mean", axes = array<i64: 1>, keepdim = true} : (tensor<?x16xf32>) -> tensor<?x1xf32>
  return %0 : tensor<?x1xf32>
}

// -----

// CHECK-LABEL: func.func @concat_last
// CHECK: "ember.concat"(%arg0, %arg1) {axis = 1 : i64}
// LINALG-LABEL: func.func @concat_last
// LINALG: tensor.insert_slice %arg0 into {{.*}}[0, 0] [%{{.*}}, 3] [1, 1]
// LINALG: tensor.insert_slice %arg1 into {{.*}}[0, 3] [%{{.*}}, 5] [1, 1]
func.func @concat_last(%a: tensor<?x3xf32>, %b: tensor<?x5xf32>) -> tensor<?x8xf32> {
  %0 = "ember.concat"(%a, %b) {axis = 1} : (tensor<?x3xf32>, tensor<?x5xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Along a dynamic axis, the second input's offset and the result's size are run-time values.
// CHECK-LABEL: func.func @concat_dynamic_axis
// CHECK: "ember.concat"(%arg0, %arg1) {axis = 0 : i64}
// LINALG-LABEL: func.func @concat_dynamic_axis
// LINALG: %[[N:.*]] = tensor.dim %arg0, %{{.*}} : tensor<?x4xf32>
// LINALG: %[[TOTAL:.*]] = arith.addi %[[N]], %{{.*}} : index
// LINALG: %[[EMPTY:.*]] = tensor.empty(%[[TOTAL]]) : tensor<?x4xf32>
// LINALG: %[[FIRST:.*]] = tensor.insert_slice %arg0 into %[[EMPTY]][0, 0] [%{{.*}}, 4] [1, 1]
// LINALG: tensor.insert_slice %arg1 into %[[FIRST]][%[[N]], 0] [2, 4] [1, 1]
func.func @concat_dynamic_axis(%a: tensor<?x4xf32>, %b: tensor<2x4xf32>) -> tensor<?x4xf32> {
  %0 = "ember.concat"(%a, %b) {axis = 0} : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}
