// RUN: ember-opt %s --target=host:cpu=cascadelake --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ember-pack-weights{panel=16})' | filecheck %s
// RUN: ember-opt %s --target=host:cpu=cascadelake --split-input-file --verify-diagnostics --ember-pack-weights=panel=16 --ember-pack-weights=panel=8 | filecheck %s --check-prefix=TWICE
// RUN: ember-opt %s --target=host:cpu=cascadelake --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ember-pack-weights{panel=16},ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=LOWER
// RUN: not ember-opt %s --ember-pack-weights=panel=abc 2>&1 | filecheck %s --check-prefix=BADOPT

// ember-pack-weights stores a GEMM's weight rhs [K, N] in NR-column panels [ceil(N/NR), K, NR]
// (zero-padded; a new weights-table entry `<name>.packed<NR>`) and marks the GEMM with
// `rhs_panel = NR`. ember-lower-to-linalg turns a packed GEMM into a call of a private kernel
// function (destination-passing style, a linalg reference body, an `ember.gemm_kernel` spec);
// The verifier checks a packed GEMM's shapes (the expected-error cases at the end).
// BADOPT: ember-opt: error: pass 'ember-pack-weights': option 'panel' expects int, got 'abc'

// N = 40 is not a multiple of 16: three panels, the last one padded.
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "fc.bias"} : () -> tensor<40xf32>
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "fc.weight.packed16"} : () -> tensor<3x20x16xf32>
// CHECK: "ember.gemm"(%arg0, %[[W]], %[[B]]) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>, rhs_panel = 16 : i64} : (tensor<?x20xf32>, tensor<3x20x16xf32>, tensor<40xf32>) -> tensor<?x40xf32>
// A packed GEMM is not packed again.
// TWICE-LABEL: func.func @linear
// TWICE: "ember.weight"() {name = "fc.weight.packed16"} : () -> tensor<3x20x16xf32>
// TWICE-NOT: packed8
// LOWER-LABEL: func.func @linear
// LOWER: %[[INIT:.*]] = tensor.empty(%{{.*}}) : tensor<?x40xf32>
// LOWER: %[[R:.*]] = call @ember_gemm_0(%arg0, %{{.*}}, %{{.*}}, %[[INIT]]) : (tensor<?x20xf32>, tensor<3x20x16xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// LOWER: return %[[R]]
// LOWER-LABEL: func.func private @ember_gemm_0(
// LOWER-SAME: attributes {ember.gemm_kernel = {activation = "gelu", bias = true, k = 20 : i64, m = -1 : i64, n = 40 : i64, nr = 16 : i64, residual = false}}
// LOWER: linalg.fill
// The reference contraction reads rhs[k, n] at packed[n floordiv 16, k, n mod 16].
// LOWER: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// LOWER: linalg.generic
// LOWER: math.absf
// LOWER: arith.divf
// LOWER: return
func.func @linear(%x: tensor<?x20xf32>) -> tensor<?x40xf32> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<20x40xf32>
  %b = "ember.weight"() {name = "fc.bias"} : () -> tensor<40xf32>
  %0 = "ember.gemm"(%x, %w, %b) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x20xf32>, tensor<20x40xf32>, tensor<40xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}

// -----

// Batched lhs: M collapses the leading dims; two GEMMs of the same kind share one kernel.
// CHECK-LABEL: func.func @batched
// CHECK-COUNT-2: rhs_panel = 16 : i64
// LOWER-LABEL: func.func @batched
// LOWER: tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<2x3x8xf32> into tensor<6x8xf32>
// LOWER: call @ember_gemm_0(
// LOWER: tensor.expand_shape
// LOWER: call @ember_gemm_0(
// LOWER-LABEL: func.func private @ember_gemm_0(
// LOWER-SAME: m = 6 : i64, n = 16 : i64
// LOWER-NOT: func.func private
func.func @batched(%x: tensor<2x3x8xf32>, %y: tensor<2x3x8xf32>) -> (tensor<2x3x16xf32>, tensor<2x3x16xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x16xf32>
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x3x8xf32>, tensor<8x16xf32>) -> tensor<2x3x16xf32>
  %1 = "ember.gemm"(%y, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x3x8xf32>, tensor<8x16xf32>) -> tensor<2x3x16xf32>
  return %0, %1 : tensor<2x3x16xf32>, tensor<2x3x16xf32>
}

// -----

// Left alone: an rhs that is not a weight, a batched rhs, an f64 weight.
// CHECK-LABEL: func.func @not_packed
// CHECK-NOT: rhs_panel
// CHECK-NOT: packed16
// CHECK: return
// LOWER-LABEL: func.func @not_packed
// LOWER-NOT: call
// LOWER: linalg.matmul
func.func @not_packed(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %bx: tensor<2x4x8xf32>, %hx: tensor<4x8xf64>) -> (tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf64>) {
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %bw = "ember.weight"() {name = "bw"} : () -> tensor<2x8x16xf32>
  %1 = "ember.gemm"(%bx, %bw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x4x8xf32>, tensor<2x8x16xf32>) -> tensor<2x4x16xf32>
  %hw = "ember.weight"() {name = "hw"} : () -> tensor<8x16xf64>
  %2 = "ember.gemm"(%hx, %hw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf64>, tensor<8x16xf64>) -> tensor<4x16xf64>
  return %0, %1, %2 : tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf64>
}

// -----

// A bf16 weight is packed as it is (16-bit panels, half the bytes of f32) on a target without
// AMX-BF16 (this file's cascadelake; see cpu-gemm-kernels-amx-bf16.mlir for the pairs AMX
// takes); its kernel sums in f32 (the linalg reference: an f32 accumulator, rounded to bf16
// in the epilogue).
// CHECK-LABEL: func.func @half
// CHECK: "ember.weight"() {name = "hw.packed16"} : () -> tensor<1x8x16xbf16>
// CHECK: rhs_panel = 16
// LOWER-LABEL: func.func private @ember_gemm_0(
// LOWER: linalg.fill {{.*}} -> tensor<4x16xf32>
// LOWER: arith.extf %{{.*}} : bf16 to f32
// LOWER: arith.truncf %{{.*}} : f32 to bf16
func.func @half(%hx: tensor<4x8xbf16>) -> tensor<4x16xbf16> {
  %hw = "ember.weight"() {name = "hw"} : () -> tensor<8x16xbf16>
  %0 = "ember.gemm"(%hx, %hw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xbf16>, tensor<8x16xbf16>) -> tensor<4x16xbf16>
  return %0 : tensor<4x16xbf16>
}

// -----

func.func @packed_wrong_panels(%a: tensor<?x20xf32>, %w: tensor<2x20x16xf32>) -> tensor<?x40xf32> {
  // expected-error @+1 {{panel-packed rhs must be [ceil(N/16), K, 16] = 3x20x16 for K=20, N=40, got 2x20x16}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x20xf32>, tensor<2x20x16xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}

// -----

func.func @packed_bad_panel(%a: tensor<4x20xf32>, %w: tensor<3x20x16xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{rhs_panel must be a positive integer, got 0 : i64}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", rhs_panel = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x20xf32>, tensor<3x20x16xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @packed_bias(%a: tensor<4x20xf32>, %w: tensor<3x20x16xf32>, %b: tensor<48xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{bias must be 1-D of size N=40, got 48}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<4x20xf32>, tensor<3x20x16xf32>, tensor<48xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}
