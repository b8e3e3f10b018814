// RUN: ember-opt %s --split-input-file --ember-fuse-epilogue | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-fuse-epilogue=bias=false | filecheck %s --check-prefix=NOBIAS
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-fuse-epilogue{activation=false})' | filecheck %s --check-prefix=NOACT
// RUN: ember-opt %s --split-input-file --ember-fuse-epilogue=residual=false | filecheck %s --check-prefix=NORES
// RUN: ember-opt %s --split-input-file --ember-fuse-epilogue='bias=false residual=false' | filecheck %s --check-prefix=NONE

// ember-fuse-epilogue folds `residual + act(gemm + bias)` chains into the gemm's epilogue, one
// step at a time and only in the epilogue's order, when the gemm result has no other user.

// The whole chain, with the residual on the add's left.
// CHECK-LABEL: func.func @full_chain
// CHECK-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1, %arg2, %arg3) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK-NEXT: return %[[G]]
// Without bias fusion the add stays, so the activation and residual do not reach the gemm.
// NOBIAS-LABEL: func.func @full_chain
// NOBIAS-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// NOBIAS-NEXT: "ember.binary"({{.*}}, %arg2) {kind = "add"}
// NOBIAS-NEXT: "ember.unary"({{.*}}) {kind = "gelu"}
// NOBIAS-NEXT: "ember.binary"(%arg3, {{.*}}) {kind = "add"}
// The bias is fused; the GELU stays, and the residual add then follows a unary, not a gemm.
// NOACT-LABEL: func.func @full_chain
// NOACT-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
// NOACT-NEXT: %[[A:.*]] = "ember.unary"(%[[G]]) {kind = "gelu"}
// NOACT-NEXT: "ember.binary"(%arg3, %[[A]]) {kind = "add"}
// NORES-LABEL: func.func @full_chain
// NORES-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1, %arg2) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
// NORES-NEXT: "ember.binary"(%arg3, %[[G]]) {kind = "add"}
// NONE-LABEL: func.func @full_chain
// NONE-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// NONE-NEXT: "ember.binary"
// NONE-NEXT: "ember.unary"
// NONE-NEXT: "ember.binary"
func.func @full_chain(%a: tensor<?x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>, %r: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x16xf32>, tensor<16x32xf32>) -> tensor<?x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %2 = "ember.unary"(%1) {kind = "gelu"} : (tensor<?x32xf32>) -> tensor<?x32xf32>
  %3 = "ember.binary"(%r, %2) {kind = "add"} : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %3 : tensor<?x32xf32>
}

// -----

// The bias may be either operand of the add.
// CHECK-LABEL: func.func @bias_on_the_left
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
// CHECK-NOT: ember.binary
// NOBIAS-LABEL: func.func @bias_on_the_left
// NOBIAS: "ember.binary"(%arg2, {{.*}}) {kind = "add"}
func.func @bias_on_the_left(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%b, %0) {kind = "add"} : (tensor<32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}

// -----

// A batched gemm fuses the same way.
// CHECK-LABEL: func.func @batched
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "silu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<4x8x32xf32>
// CHECK-NEXT: return
func.func @batched(%a: tensor<4x8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<4x8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<4x8x32xf32>, tensor<32xf32>) -> tensor<4x8x32xf32>
  %2 = "ember.unary"(%1) {kind = "silu"} : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
  return %2 : tensor<4x8x32xf32>
}

// -----

// The unfused gemm result is still needed by its second user: nothing fuses.
// CHECK-LABEL: func.func @two_users
// CHECK-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: %[[A:.*]] = "ember.binary"(%[[G]], %arg2) {kind = "add"}
// CHECK-NEXT: return %[[G]], %[[A]]
func.func @two_users(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0, %1 : tensor<8x32xf32>, tensor<8x32xf32>
}

// -----

// Same for an activation: the gemm result feeds the activation and the return.
// CHECK-LABEL: func.func @two_users_activation
// CHECK-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1) {activation = "none"
// CHECK-NEXT: "ember.unary"(%[[G]]) {kind = "relu"}
func.func @two_users_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.unary"(%0) {kind = "relu"} : (tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0, %1 : tensor<8x32xf32>, tensor<8x32xf32>
}

// -----

// A [1, N] addend is not a bias ([N]) and not a residual (the result's shape).
// CHECK-LABEL: func.func @bias_not_1d
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: "ember.binary"({{.*}}, %arg2) {kind = "add"} : (tensor<8x32xf32>, tensor<1x32xf32>) -> tensor<8x32xf32>
func.func @bias_not_1d(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<1x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<1x32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}

// -----

// A bias of dynamic size cannot be proven to be [N].
// CHECK-LABEL: func.func @bias_dynamic
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: "ember.binary"({{.*}}, %arg2) {kind = "add"}
func.func @bias_dynamic(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<?xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<?xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}

// -----

// The activation comes before the bias in the epilogue's order, so act(x@w) + b cannot fuse.
// CHECK-LABEL: func.func @activation_before_bias
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: "ember.binary"({{.*}}, %arg2) {kind = "add"}
func.func @activation_before_bias(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}

// -----

// The residual comes last: relu(x@w + r) fuses the residual but not the relu after it.
// CHECK-LABEL: func.func @activation_after_residual
// CHECK-NEXT: %[[G:.*]] = "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>}
// CHECK-NEXT: "ember.unary"(%[[G]]) {kind = "relu"}
// NORES-LABEL: func.func @activation_after_residual
// NORES-NEXT: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// NORES-NEXT: "ember.binary"
// NORES-NEXT: "ember.unary"
func.func @activation_after_residual(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %r: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %r) {kind = "add"} : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %2 = "ember.unary"(%1) {kind = "relu"} : (tensor<8x32xf32>) -> tensor<8x32xf32>
  return %2 : tensor<8x32xf32>
}

// -----

// Only add fuses (a sub is not a bias), and only epilogue activations (exp is not one).
// CHECK-LABEL: func.func @not_fusible_kinds
// CHECK-NEXT: %[[G1:.*]] = "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: "ember.binary"(%[[G1]], %arg2) {kind = "sub"}
// CHECK-NEXT: %[[G2:.*]] = "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// CHECK-NEXT: "ember.unary"(%[[G2]]) {kind = "exp"}
func.func @not_fusible_kinds(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "sub"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %2 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %3 = "ember.unary"(%2) {kind = "exp"} : (tensor<8x32xf32>) -> tensor<8x32xf32>
  return %1, %3 : tensor<8x32xf32>, tensor<8x32xf32>
}
