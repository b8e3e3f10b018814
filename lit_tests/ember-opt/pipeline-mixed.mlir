// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize,ember-fuse-epilogue,ember-lower-to-linalg,canonicalize,cse)' | filecheck %s
// RUN: ember-opt %s --ember-canonicalize --ember-fuse-epilogue --ember-lower-to-linalg --canonicalize --cse | filecheck %s
// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize,ember-fuse-epilogue,ember-lower-to-linalg,canonicalize,cse)' --mlir-print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=STAGES
// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize,ember-fuse-epilogue,ember-lower-to-linalg,canonicalize,cse)' --mlir-print-ir-after-all 2>/dev/null | filecheck %s --check-prefix=STDOUT

// Upstream MLIR passes and ember passes mix in one pipeline, as flags or in --pass-pipeline.
// Here ember fuses the biases and lowers to linalg, and upstream CSE then merges the two
// identical Linears, which upstream passes cannot do on ember ops (IRDL ops are not known to
// be free of side effects).
// CHECK-LABEL: func.func @two_linears
// CHECK: %[[W:.*]] = linalg.transpose ins(%arg2 : tensor<32x16xf32>)
// CHECK: %[[MM:.*]] = linalg.matmul ins(%arg0, %[[W]] : tensor<8x16xf32>, tensor<16x32xf32>)
// CHECK: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[MM]], %arg1 : tensor<8x32xf32>, tensor<32xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: return %[[Y]], %[[Y]]

// With --mlir-print-ir-after-all the IR is dumped to stderr after every pass, upstream ones
// too (each runs on its own); stdout has only the result.
// STDOUT-NOT: IR Dump
// STDOUT: func.func @two_linears
// STDOUT-NOT: IR Dump
// STAGES: // -----// IR Dump After ember-canonicalize //----- //
// STAGES: // -----// IR Dump After ember-fuse-epilogue //----- //
// STAGES: // -----// IR Dump After ember-lower-to-linalg //----- //
// STAGES: // -----// IR Dump After canonicalize //----- //
// STAGES: // -----// IR Dump After cse //----- //
// STAGES-NOT: IR Dump
func.func @two_linears(%a: tensor<8x16xf32>, %b: tensor<32xf32>, %w: tensor<32x16xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %wt = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<32x16xf32>) -> tensor<16x32xf32>
  %0 = "ember.gemm"(%a, %wt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %wt2 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<32x16xf32>) -> tensor<16x32xf32>
  %2 = "ember.gemm"(%a, %wt2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %3 = "ember.binary"(%2, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %1, %3 : tensor<8x32xf32>, tensor<8x32xf32>
}
