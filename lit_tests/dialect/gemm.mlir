// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.gemm: every combination of the optional bias and residual operands,
// every epilogue activation, and batched forms (shared and batched rhs, dynamic dims).

// CHECK-LABEL: func.func @gemm_plain
// CHECK: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
func.func @gemm_plain(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_bias
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
func.func @gemm_bias(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_residual
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
func.func @gemm_residual(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %r: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_bias_residual
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2, %arg3) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
func.func @gemm_bias_residual(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>, %r: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w, %b, %r) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_activations
// CHECK: activation = "none"
// CHECK: activation = "relu"
// CHECK: activation = "gelu"
// CHECK: activation = "gelu_tanh"
// CHECK: activation = "silu"
// CHECK: activation = "sigmoid"
// CHECK: activation = "tanh"
func.func @gemm_activations(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.gemm"(%a, %w) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %2 = "ember.gemm"(%a, %w) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %3 = "ember.gemm"(%a, %w) {activation = "gelu_tanh", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %4 = "ember.gemm"(%a, %w) {activation = "silu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %5 = "ember.gemm"(%a, %w) {activation = "sigmoid", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %6 = "ember.gemm"(%a, %w) {activation = "tanh", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return
}

// -----

// A batched lhs with one rhs shared by every batch, and a batched rhs.
// CHECK-LABEL: func.func @gemm_batched
// CHECK: "ember.gemm"(%arg0, %arg1) {{.*}} : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
// CHECK: "ember.gemm"(%arg0, %arg2) {{.*}} : (tensor<4x8x16xf32>, tensor<4x16x32xf32>) -> tensor<4x8x32xf32>
func.func @gemm_batched(%a: tensor<4x8x16xf32>, %w: tensor<16x32xf32>, %bw: tensor<4x16x32xf32>) -> (tensor<4x8x32xf32>, tensor<4x8x32xf32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
  %1 = "ember.gemm"(%a, %bw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<4x16x32xf32>) -> tensor<4x8x32xf32>
  return %0, %1 : tensor<4x8x32xf32>, tensor<4x8x32xf32>
}

// -----

// Dynamic dims are allowed anywhere.
// CHECK-LABEL: func.func @gemm_dynamic
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2, %arg3) {{.*}} : (tensor<?x?xf32>, tensor<?x32xf32>, tensor<32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
func.func @gemm_dynamic(%a: tensor<?x?xf32>, %w: tensor<?x32xf32>, %b: tensor<32xf32>, %r: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %0 = "ember.gemm"(%a, %w, %b, %r) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x?xf32>, tensor<?x32xf32>, tensor<32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}

// -----

// A low-bit rhs (weight-only quantization): i8 codes [K, N] with f32 group scales and offsets
// [ceil(K/G), N] (K = 20, G = 8: 3 groups); packed, 4-bit codes two per byte [ceil(N/NR), K/2,
// NR] and the scales in the same panels.
// CHECK-LABEL: func.func @gemm_low_bit
// CHECK: "ember.gemm"(%arg0, %arg1, %arg2, %arg3) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 1>, rhs_bits = 4 : i64, rhs_group = 8 : i64}
// CHECK: "ember.gemm"(%arg0, %arg4, %arg5) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 4 : i64, rhs_group = 8 : i64, rhs_panel = 16 : i64}
func.func @gemm_low_bit(%a: tensor<?x20xf32>, %q: tensor<20x40xi8>, %s: tensor<3x40xf32>, %o: tensor<3x40xf32>, %p: tensor<3x10x16xi8>, %ps: tensor<3x3x16xf32>) -> (tensor<?x40xf32>, tensor<?x40xf32>) {
  %0 = "ember.gemm"(%a, %q, %s, %o) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 1>, rhs_bits = 4, rhs_group = 8} : (tensor<?x20xf32>, tensor<20x40xi8>, tensor<3x40xf32>, tensor<3x40xf32>) -> tensor<?x40xf32>
  %1 = "ember.gemm"(%a, %p, %ps) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 4, rhs_group = 8, rhs_panel = 16} : (tensor<?x20xf32>, tensor<3x10x16xi8>, tensor<3x3x16xf32>) -> tensor<?x40xf32>
  return %0, %1 : tensor<?x40xf32>, tensor<?x40xf32>
}

// -----

// An f32 GEMM writing codes (a float layer before an int8 one, ember-fold-quantized-ops).
// CHECK-LABEL: func.func @gemm_codes
// CHECK: "ember.gemm"(%arg0, %arg1) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, result_range = array<i64: 0, 255>, result_scale = 2.500000e-01 : f32, result_zero_point = 3 : i64} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xui8>
func.func @gemm_codes(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xui8> {
  %0 = "ember.gemm"(%a, %w) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, result_range = array<i64: 0, 255>, result_scale = 0.25 : f32, result_zero_point = 3 : i64} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xui8>
  return %0 : tensor<8x32xui8>
}

// -----

// An integer GEMM (i16 x i16 -> i32, no epilogue: ember-qconv-winograd's products), and its
// rhs packed in pairs of k (ember-pack-weights).
// CHECK-LABEL: func.func @gemm_integer
// CHECK: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xi16>, tensor<16x40xi16>) -> tensor<8x40xi32>
// CHECK: "ember.gemm"(%arg0, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, rhs_pairs = true, rhs_panel = 16 : i64} : (tensor<8x16xi16>, tensor<3x8x16xi32>) -> tensor<8x40xi32>
func.func @gemm_integer(%a: tensor<8x16xi16>, %w: tensor<16x40xi16>, %p: tensor<3x8x16xi32>) -> (tensor<8x40xi32>, tensor<8x40xi32>) {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xi16>, tensor<16x40xi16>) -> tensor<8x40xi32>
  %1 = "ember.gemm"(%a, %p) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, rhs_pairs = true, rhs_panel = 16 : i64} : (tensor<8x16xi16>, tensor<3x8x16xi32>) -> tensor<8x40xi32>
  return %0, %1 : tensor<8x40xi32>, tensor<8x40xi32>
}
