// RUN: ember-opt %s --split-input-file | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-lower-to-linalg | filecheck %s --check-prefix=LOWER

// ember.embedding: rows of a [V, D] table picked by i64 or i32 indices of any shape; the
// result is the indices' shape followed by D, in the table's element type.
// CHECK-LABEL: func.func @lookup
// CHECK: "ember.embedding"(%{{.*}}, %arg0) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>, tensor<4x?xi64>) -> tensor<4x?x16xf32>
// Lowered: one generic over the result reading the row with tensor.extract.
// LOWER-LABEL: func.func @lookup
// LOWER: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0 : tensor<4x?xi64>) outs(%{{.*}} : tensor<4x?x16xf32>)
// LOWER: %[[ROW:.*]] = arith.index_cast %{{.*}} : i64 to index
// LOWER: %[[COL:.*]] = linalg.index 2 : index
// LOWER: tensor.extract %{{.*}}[%[[ROW]], %[[COL]]] : tensor<100x16xf32>
func.func @lookup(%i: tensor<4x?xi64>) -> tensor<4x?x16xf32> {
  %t = "ember.weight"() {name = "emb.weight"} : () -> tensor<100x16xf32>
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>, tensor<4x?xi64>) -> tensor<4x?x16xf32>
  return %0 : tensor<4x?x16xf32>
}

// -----

// An int8 table with one f32 scale per row: rows come out f32, dequantized as read.
// CHECK-LABEL: func.func @int8_rows
// CHECK: "ember.embedding"(%{{.*}}, %arg0, %{{.*}}) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x16xi8>, tensor<7xi32>, tensor<100xf32>) -> tensor<7x16xf32>
// LOWER-LABEL: func.func @int8_rows
// LOWER: %[[ROW:.*]] = arith.index_cast %{{.*}} : i32 to index
// LOWER: %[[CODE:.*]] = tensor.extract %{{.*}}[%[[ROW]], %{{.*}}] : tensor<100x16xi8>
// LOWER: %[[F:.*]] = arith.sitofp %[[CODE]] : i8 to f32
// LOWER: %[[S:.*]] = tensor.extract %{{.*}}[%[[ROW]]] : tensor<100xf32>
// LOWER: arith.mulf %[[F]], %[[S]] : f32
func.func @int8_rows(%i: tensor<7xi32>) -> tensor<7x16xf32> {
  %t = "ember.weight"() {name = "emb.weight.int8_rows"} : () -> tensor<100x16xi8>
  %s = "ember.weight"() {name = "emb.weight.int8_rows_scale"} : () -> tensor<100xf32>
  %0 = "ember.embedding"(%t, %i, %s) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x16xi8>, tensor<7xi32>, tensor<100xf32>) -> tensor<7x16xf32>
  return %0 : tensor<7x16xf32>
}
