// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.broadcast: size-1 dims repeated to a static size, the others kept
// (dynamic ones included).

// CHECK-LABEL: func.func @repeat_heads
// CHECK: "ember.broadcast"(%arg0) : (tensor<1x2x1x?x16xf32>) -> tensor<1x2x4x?x16xf32>
func.func @repeat_heads(%x: tensor<1x2x1x?x16xf32>) -> tensor<1x2x4x?x16xf32> {
  %0 = "ember.broadcast"(%x) : (tensor<1x2x1x?x16xf32>) -> tensor<1x2x4x?x16xf32>
  return %0 : tensor<1x2x4x?x16xf32>
}

// -----

// CHECK-LABEL: func.func @several_dims
// CHECK: "ember.broadcast"(%arg0) : (tensor<1x4x1xi1>) -> tensor<3x4x5xi1>
func.func @several_dims(%x: tensor<1x4x1xi1>) -> tensor<3x4x5xi1> {
  %0 = "ember.broadcast"(%x) : (tensor<1x4x1xi1>) -> tensor<3x4x5xi1>
  return %0 : tensor<3x4x5xi1>
}
