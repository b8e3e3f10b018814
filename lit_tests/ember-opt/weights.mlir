// RUN: %python -c "import sys, numpy as np; from safetensors.numpy import save_file; save_file({'w': np.ones((4, 8), np.float32), 'w.transpose': np.zeros((8, 4), np.float32)}, sys.argv[1])" %t.safetensors
// RUN: ember-opt %s --weights %t.safetensors --ember-fold-constants | filecheck %s
// RUN: ember-opt %s --ember-fold-constants | filecheck %s --check-prefix=ABSTRACT
// RUN: not ember-opt %s --weights %t.missing.safetensors --ember-fold-constants 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not ember-opt %s --weights %s --ember-fold-constants 2>&1 | filecheck %s --check-prefix=BAD

// --weights loads a safetensors file as the weights table that passes read and extend. Here
// the table already holds an entry named "w.transpose", so the folded transpose gets a fresh
// name; without --weights the table is abstract and the first name is free.
// CHECK: "ember.weight"() {name = "w.transpose.1"} : () -> tensor<8x4xf32>
// ABSTRACT: "ember.weight"() {name = "w.transpose"} : () -> tensor<8x4xf32>
// MISSING: ember-opt: error: cannot load weights '{{.*}}missing.safetensors': No such file or directory
// BAD: ember-opt: error: cannot load weights '{{.*}}weights.mlir': Error while deserializing header
func.func @f() -> tensor<8x4xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4x8xf32>
  %0 = "ember.transpose"(%w) {permutation = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
