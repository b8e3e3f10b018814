// RUN: ember-opt %s --pass-pipeline='builtin.module(func.func(canonicalize,ember-fuse-epilogue,cse))' | filecheck %s
// RUN: ember-opt %s --pass-pipeline='builtin.module(func.func(canonicalize,ember-fuse-epilogue,cse))' --mlir-print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=STAGES

// An ember pass may be named inside an op nesting such as func.func(...): the nesting is split
// around it (upstream passes stay nested) and the ember pass runs on every function.
// STAGES: // -----// IR Dump After func.func(canonicalize) //----- //
// STAGES: // -----// IR Dump After ember-fuse-epilogue //----- //
// STAGES: // -----// IR Dump After func.func(cse) //----- //

// CHECK-LABEL: func.func @first
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
// CHECK-NEXT: return
func.func @first(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %2 = "ember.unary"(%1) {kind = "relu"} : (tensor<8x32xf32>) -> tensor<8x32xf32>
  return %2 : tensor<8x32xf32>
}

// CHECK-LABEL: func.func @second
// CHECK-NEXT: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>}
// CHECK-NEXT: return
func.func @second(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %r: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%r, %0) {kind = "add"} : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}
