// RUN: ember-opt %s --split-input-file --verify-diagnostics --target=host --ember-lower-to-linalg --ember-bind-weights --stages=bufferize,kernels,loops,llvm | filecheck %s
// RUN: not ember-opt %s --split-input-file --target=host --ember-lower-to-linalg --stages=bufferize,kernels,loops,llvm 2>&1 | filecheck %s --check-prefix=UNBOUND

// The CPU targets' stages after `lower` bufferize bound linalg-on-tensors code (results become
// out-parameters), lower it to loops and then to the LLVM dialect, with `_mlir_ciface_` wrappers
// on public functions. They expect ember.weight to be bound already: an unbound weight cannot
// be bufferized, and one-shot-bufferize fails at it, named as the failing pass (UNBOUND). The function without weights still lowers.

// CHECK-LABEL: llvm.func @main(
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: llvm.fmul
// CHECK: llvm.fadd
// CHECK: llvm.fcmp "olt"
// CHECK: llvm.select
// CHECK: llvm.return
// The wrapper takes the input, the bound weight (still tagged), the result and the fault
// record of the run-time checks (ember-runtime-checks), as pointers.
// CHECK-LABEL: llvm.func @_mlir_ciface_main(
// CHECK-SAME: %arg0: !llvm.ptr, %arg1: !llvm.ptr {ember.weight = "fc.weight"}, %arg2: !llvm.ptr, %arg3: !llvm.ptr {ember.fault_record})
// CHECK-NEXT: llvm.load %arg0
// CHECK: llvm.call @main(
// CHECK-NOT: tensor<
// CHECK-NOT: memref<
// CHECK-NOT: linalg.
// CHECK-NOT: "ember.
// CHECK: // -----
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  // UNBOUND: cpu-stages.mlir:[[# @LINE + 2]]:8: error: op was not bufferized
  // UNBOUND: ember-opt: error: pass 'one-shot-bufferize' failed
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<8x16xf32>
  %0 = "ember.gemm"(%x, %w) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

// Only public functions get a C interface; a private helper is called directly.
// CHECK-LABEL: llvm.func @helper(
// CHECK-NOT: llvm.emit_c_interface
// CHECK: llvm.return
// CHECK-NOT: @_mlir_ciface_helper
// CHECK-LABEL: llvm.func @entry(
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: llvm.call @helper(
// CHECK: llvm.func @_mlir_ciface_entry(
// UNBOUND: llvm.func @_mlir_ciface_entry(
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%x) {kind = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func @entry(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = func.call @helper(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
