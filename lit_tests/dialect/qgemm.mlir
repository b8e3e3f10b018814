// RUN: ember-opt %s | ember-opt | filecheck %s

// A quantized GEMM round-trips: unpacked (i8 weight) and packed (i32 words + compensation).
// CHECK-LABEL: func.func @qgemm
// CHECK: "ember.qgemm"(%arg0, %arg1, %arg2, %arg3) {activation = "relu", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>}
// CHECK: "ember.qgemm"(%arg0, %arg4, %arg2, %arg5) {activation = "none", lhs_encoding = "u8", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>, rhs_panel = 16 : i64}
func.func @qgemm(%a: tensor<?x18xf32>, %w: tensor<18x40xi8>, %s: tensor<40xf32>, %b: tensor<40xf32>, %p: tensor<3x5x16xi32>, %c: tensor<40xi32>) -> (tensor<?x40xf32>, tensor<?x40xf32>) {
  %0 = "ember.qgemm"(%a, %w, %s, %b) {activation = "relu", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>} : (tensor<?x18xf32>, tensor<18x40xi8>, tensor<40xf32>, tensor<40xf32>) -> tensor<?x40xf32>
  %1 = "ember.qgemm"(%a, %p, %s, %c) {activation = "none", lhs_encoding = "u8", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x18xf32>, tensor<3x5x16xi32>, tensor<40xf32>, tensor<40xi32>) -> tensor<?x40xf32>
  return %0, %1 : tensor<?x40xf32>, tensor<?x40xf32>
}
