// RUN: ember-opt %s --split-input-file --ember-legalize-reshapes | filecheck %s

// Splitting one `?` into `? x ?` becomes a tensor.reshape with an explicit shape.
// CHECK-LABEL: func.func @two_dynamic_in_one_group
// CHECK-NOT: tensor.expand_shape
// CHECK: %[[S:.*]] = tensor.from_elements %arg1, %arg2, %{{.*}} : tensor<3xindex>
// CHECK: tensor.reshape %arg0(%[[S]]) : (tensor<?x64xf32>, tensor<3xindex>) -> tensor<?x?x64xf32>
func.func @two_dynamic_in_one_group(%x: tensor<?x64xf32>, %b: index, %s: index) -> tensor<?x?x64xf32> {
  %0 = tensor.expand_shape %x [[0, 1], [2]] output_shape [%b, %s, 64] : tensor<?x64xf32> into tensor<?x?x64xf32>
  return %0 : tensor<?x?x64xf32>
}

// -----

// Negative: one dynamic dim per group is fine for the memref lowering and stays.
// CHECK-LABEL: func.func @one_dynamic_per_group
// CHECK: tensor.expand_shape
// CHECK-NOT: tensor.reshape
func.func @one_dynamic_per_group(%x: tensor<?x64xf32>, %b: index) -> tensor<?x4x16xf32> {
  %0 = tensor.expand_shape %x [[0], [1, 2]] output_shape [%b, 4, 16] : tensor<?x64xf32> into tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
