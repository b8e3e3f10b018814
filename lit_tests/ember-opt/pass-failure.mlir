// RUN: not ember-opt %s --split-input-file --ember-canonicalize --ember-lower-to-linalg 2>&1 | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-canonicalize --ember-lower-to-linalg --verify-diagnostics

// A failing pass names itself and its error. An error the pass raises without a location is
// reported at <unknown> (and matched by `expected-error @unknown`); a diagnostic the pass
// emits at an op keeps that op's line.

// CHECK: <unknown>: error: layer_norm over dynamic normalized dims
// CHECK-NEXT: ember-opt: error: pass 'ember-lower-to-linalg' failed
// expected-error @unknown {{layer_norm over dynamic normalized dims}}
func.func @dynamic_normalized_dims(%x: tensor<4x?xf32>) -> tensor<4x?xf32> {
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  return %0 : tensor<4x?xf32>
}

// -----

// An upstream pass fails with a located diagnostic.
// RUN: not ember-opt %s --split-input-file --pass-pipeline='builtin.module(one-shot-bufferize)' 2>&1 | filecheck %s --check-prefix=UPSTREAM
// UPSTREAM: pass-failure.mlir:[[# @LINE + 3]]:8: error: op was not bufferized
// UPSTREAM: ember-opt: error: pass 'one-shot-bufferize' failed
func.func @not_bufferizable(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4xf32>
  %0 = "ember.binary"(%x, %w) {kind = "add"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
