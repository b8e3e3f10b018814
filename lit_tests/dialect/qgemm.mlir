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

// -----

// A residual of codes (a ResNet shortcut the GEMM's epilogue dequantizes): ui8 or i8 bytes with
// residual_scale and residual_zero_point.
// CHECK-LABEL: func.func @residual_codes
// CHECK: "ember.qgemm"(%arg0, %arg1, %arg2, %arg3) {activation = "none", lhs_encoding = "u8", lhs_scale = 5.000000e-01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>, residual_scale = 2.500000e-01 : f32, residual_zero_point = 3 : i64}
// CHECK-SAME: (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xui8>) -> tensor<4x8xf32>
// CHECK: "ember.qgemm"({{.*}}residual_scale = 1.250000e-01 : f32, residual_zero_point = -5 : i64
// CHECK-SAME: tensor<4x8xi8>) -> tensor<4x8xui8>
func.func @residual_codes(%a: tensor<4x16xui8>, %w: tensor<16x8xi8>, %s: tensor<8xf32>, %r: tensor<4x8xui8>, %t: tensor<4x8xi8>) -> (tensor<4x8xf32>, tensor<4x8xui8>) {
  %0 = "ember.qgemm"(%a, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, residual_scale = 0.25 : f32, residual_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xui8>) -> tensor<4x8xf32>
  %1 = "ember.qgemm"(%a, %w, %s, %t) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 0 : i64, residual_scale = 0.125 : f32, residual_zero_point = -5 : i64, result_scale = 0.5 : f32, result_zero_point = 0 : i64, result_range = array<i64: 0, 255>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<4x16xui8>, tensor<16x8xi8>, tensor<8xf32>, tensor<4x8xi8>) -> tensor<4x8xui8>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xui8>
}
