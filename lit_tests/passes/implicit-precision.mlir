// RUN: ember-opt %s --split-input-file --ember-implicit-precision | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-implicit-precision{precision=f16 filter=layer\.0\.})' | filecheck %s --check-prefix=FILTER
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-implicit-precision{exclude=Linear})' | filecheck %s --check-prefix=NONE
// RUN: ember-opt %s --split-input-file --target=host:cpu=haswell --pass-pipeline='builtin.module(ember-implicit-precision,ember-pack-weights{panel=16},ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=KERNEL
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-implicit-precision{precision=fp8})' 2>&1 | filecheck %s --check-prefix=BAD

// ember-implicit-precision stores the f32 weight [K, N] of a GEMM (a Linear) as bf16 (or f16)
// `<name>.bf16`, rounded once at compile time; lhs, bias, residual, result and the epilogue
// stay f32. `filter` and `exclude` match the kind ("Linear") or the module path.
// BAD: error: ember-implicit-precision: precision must be one of ['bf16', 'f16'], got 'fp8'
// CHECK-LABEL: func.func @two_layers
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "layer.0.fc.weight.bf16"} : () -> tensor<20x40xbf16>
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "layer.0.fc.bias"} : () -> tensor<40xf32>
// CHECK: %[[H:.*]] = "ember.gemm"(%arg0, %[[W]], %[[B]], %arg1) {activation = "gelu"{{.*}}} : (tensor<?x20xf32>, tensor<20x40xbf16>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// CHECK: "ember.gemm"(%[[H]], {{.*}}) {{.*}} : (tensor<?x40xf32>, tensor<40x8xbf16>) -> tensor<?x8xf32>
// FILTER-LABEL: func.func @two_layers
// FILTER: "ember.weight"() {name = "layer.0.fc.weight.f16"} : () -> tensor<20x40xf16>
// FILTER: "ember.gemm"({{.*}}) {{.*}} : (tensor<?x40xf32>, tensor<40x8xf32>) -> tensor<?x8xf32>
// NONE-LABEL: func.func @two_layers
// NONE-NOT: bf16
// The kernel reads the 16-bit panels (16 columns each) and sums in f32 (`weights` in its
// spec).
// KERNEL-DAG: func.func private @ember_gemm_{{[0-9]}}(%arg0: tensor<?x20xf32>, %arg1: tensor<3x20x16xbf16>{{.*}}weights = "bf16"
// KERNEL-DAG: func.func private @ember_gemm_{{[0-9]}}(%arg0: tensor<?x40xf32>, %arg1: tensor<1x40x16xbf16>{{.*}}weights = "bf16"
func.func @two_layers(%x: tensor<?x20xf32>, %r: tensor<?x40xf32>) -> tensor<?x8xf32> {
  %w = "ember.weight"() {name = "layer.0.fc.weight"} : () -> tensor<20x40xf32>
  %b = "ember.weight"() {name = "layer.0.fc.bias"} : () -> tensor<40xf32>
  %h = "ember.gemm"(%x, %w, %b, %r) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x20xf32>, tensor<20x40xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  %w2 = "ember.weight"() {name = "layer.1.fc.weight"} : () -> tensor<40x8xf32>
  %y = "ember.gemm"(%h, %w2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x40xf32>, tensor<40x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Left alone: a run-time rhs (attention's products), a GEMM that is not f32.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: bf16>
// CHECK: return
func.func @left_alone(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %h: tensor<4x8xf64>) -> (tensor<4x16xf32>, tensor<4x16xf64>) {
  %0 = "ember.gemm"(%a, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x16xf64>
  %1 = "ember.gemm"(%h, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf64>, tensor<8x16xf64>) -> tensor<4x16xf64>
  return %0, %1 : tensor<4x16xf32>, tensor<4x16xf64>
}
