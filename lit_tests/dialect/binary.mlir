// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.binary: every kind, and numpy broadcasting (trailing dims aligned, a
// dim of 1 stretches, a missing leading dim stretches, dynamic dims).

// CHECK-LABEL: func.func @binary_kinds
// CHECK: "ember.binary"(%arg0, %arg1) {kind = "add"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: {kind = "sub"}
// CHECK: {kind = "mul"}
// CHECK: {kind = "div"}
// CHECK: {kind = "max"}
// CHECK: {kind = "min"}
// CHECK: {kind = "pow"}
func.func @binary_kinds(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "add"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = "ember.binary"(%0, %b) {kind = "sub"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %2 = "ember.binary"(%1, %b) {kind = "mul"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %3 = "ember.binary"(%2, %b) {kind = "div"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %4 = "ember.binary"(%3, %b) {kind = "max"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %5 = "ember.binary"(%4, %b) {kind = "min"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %6 = "ember.binary"(%5, %b) {kind = "pow"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %6 : tensor<4x8xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_row
// CHECK: "ember.binary"(%arg0, %arg1) {kind = "add"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
func.func @broadcast_row(%a: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "add"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_ones
// CHECK: "ember.binary"(%arg0, %arg1) {kind = "mul"} : (tensor<4x1xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
func.func @broadcast_ones(%a: tensor<4x1xf32>, %b: tensor<1x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "mul"} : (tensor<4x1xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_scalar_lhs
// CHECK: "ember.binary"(%arg0, %arg1) {kind = "div"} : (tensor<f32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
func.func @broadcast_scalar_lhs(%a: tensor<f32>, %b: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "div"} : (tensor<f32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_dynamic
// CHECK: "ember.binary"(%arg0, %arg1) {kind = "sub"} : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x8xf32>
func.func @broadcast_dynamic(%a: tensor<?x8xf32>, %b: tensor<1x8xf32>) -> tensor<?x8xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "sub"} : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
