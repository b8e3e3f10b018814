// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @k_mismatch(%a: tensor<8x16xf32>, %w: tensor<12x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'ember.gemm' op contraction dims differ: lhs 8x16 has K=16, rhs 12x32 has K=12}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<12x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @bias_not_n(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{bias must be 1-D of size N=32, got 16}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A bias of the full result shape is a residual, not a bias.
func.func @bias_2d(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{bias must be 1-D of size N=32, got 8x32}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @residual_mismatch(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %r: tensor<8x16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{residual shape 8x16 must equal the result shape 8x32}}
  %0 = "ember.gemm"(%a, %w, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// IRDL (irdl.any_of): an unknown activation fails at parse time.
func.func @bad_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'"softplus"' does not satisfy the constraint}}
  %0 = "ember.gemm"(%a, %w) {activation = "softplus", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A unary kind that is not an epilogue activation.
func.func @unary_kind_as_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'"exp"' does not satisfy the constraint}}
  %0 = "ember.gemm"(%a, %w) {activation = "exp", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @result_shape(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{result shape 8x16 does not match lhs x rhs shape 8x32}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

func.func @lhs_rank_1(%a: tensor<16xf32>, %w: tensor<16x32xf32>) -> tensor<32xf32> {
  // expected-error @+1 {{lhs must have rank >= 2, got 16}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<16xf32>, tensor<16x32xf32>) -> tensor<32xf32>
  return %0 : tensor<32xf32>
}

// -----

func.func @batch_mismatch(%a: tensor<4x8x16xf32>, %w: tensor<2x16x32xf32>) -> tensor<4x8x32xf32> {
  // expected-error @+1 {{batch dims differ: lhs 4x8x16, rhs 2x16x32}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<2x16x32xf32>) -> tensor<4x8x32xf32>
  return %0 : tensor<4x8x32xf32>
}

// -----

func.func @mixed_element_types(%a: tensor<8x16xf16>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{operands and result must share one element type, got ['f16', 'f32']}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf16>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// IRDL: lhs and rhs are required; operandSegmentSizes must count the operands given.
func.func @one_operand(%a: tensor<8x16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{sum of elements in 'operandSegmentSizes' attribute must be equal to the number of operands}}
  %0 = "ember.gemm"(%a) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @missing_segments(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'operandSegmentSizes' attribute is expected but not provided}}
  %0 = "ember.gemm"(%a, %w) {activation = "none"} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @missing_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{attribute "activation" is expected but not provided}}
  %0 = "ember.gemm"(%a, %w) {operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// Low-bit rhs: the scales need one row per group, the codes i8 and an f32 lhs, rhs_bits and
// rhs_group belong with rhs_scale, a packed 4-bit rhs needs an even K.
func.func @low_bit_scale_shape(%a: tensor<4x20xf32>, %q: tensor<20x40xi8>, %s: tensor<2x40xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op rhs_scale must be f32 3x40 (one per group of 8 rows and column), got tensor<2x40xf32>}}
  %0 = "ember.gemm"(%a, %q, %s) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 8, rhs_group = 8} : (tensor<4x20xf32>, tensor<20x40xi8>, tensor<2x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @low_bit_float_codes(%a: tensor<4x20xf32>, %q: tensor<20x40xf32>, %s: tensor<3x40xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op a low-bit rhs is i8 codes multiplied by an f32 lhs of rows, got f32 and f32}}
  %0 = "ember.gemm"(%a, %q, %s) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 8, rhs_group = 8} : (tensor<4x20xf32>, tensor<20x40xf32>, tensor<3x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @low_bit_without_scale(%a: tensor<4x20xf32>, %w: tensor<20x40xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op rhs_offset, rhs_bits and rhs_group describe a low-bit rhs: they need rhs_scale}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, rhs_bits = 8} : (tensor<4x20xf32>, tensor<20x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @low_bit_odd_group(%a: tensor<4x20xf32>, %q: tensor<20x40xi8>, %s: tensor<4x40xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op a low-bit rhs needs rhs_bits 8 or 4 and a positive rhs_group (even for 4 bits), got 4 and 7}}
  %0 = "ember.gemm"(%a, %q, %s) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 4, rhs_group = 7} : (tensor<4x20xf32>, tensor<20x40xi8>, tensor<4x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @low_bit_packed_odd_k(%a: tensor<4x21xf32>, %p: tensor<3x10x16xi8>, %s: tensor<3x3x16xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op a packed 4-bit rhs holds pairs of k: K must be even, got 21}}
  %0 = "ember.gemm"(%a, %p, %s) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 4, rhs_group = 8, rhs_panel = 16} : (tensor<4x21xf32>, tensor<3x10x16xi8>, tensor<3x3x16xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @codes_without_scale(%a: tensor<4x20xf32>, %w: tensor<20x40xf32>) -> tensor<4x40xui8> {
  // expected-error @+1 {{'ember.gemm' op result must be f32 (or codes with result_scale), got ui8}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x20xf32>, tensor<20x40xf32>) -> tensor<4x40xui8>
  return %0 : tensor<4x40xui8>
}

// -----

func.func @codes_of_f16(%a: tensor<4x20xf16>, %w: tensor<20x40xf16>) -> tensor<4x40xi8> {
  // expected-error @+1 {{'ember.gemm' op a GEMM writing codes computes in f32, got a f16 lhs}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, result_range = array<i64: -128, 127>, result_scale = 0.5 : f32, result_zero_point = 0 : i64} : (tensor<4x20xf16>, tensor<20x40xf16>) -> tensor<4x40xi8>
  return %0 : tensor<4x40xi8>
}

// -----

func.func @codes_scale_on_floats(%a: tensor<4x20xf32>, %w: tensor<20x40xf32>) -> tensor<4x40xf32> {
  // expected-error @+1 {{'ember.gemm' op a quantized result must be ui8 or i8, got f32}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, result_range = array<i64: 0, 255>, result_scale = 0.5 : f32, result_zero_point = 0 : i64} : (tensor<4x20xf32>, tensor<20x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

func.func @integer_with_bias(%a: tensor<8x16xi16>, %w: tensor<16x40xi16>, %b: tensor<40xf32>) -> tensor<8x40xi32> {
  // expected-error @+1 {{'ember.gemm' op an integer GEMM (i16 operands) has no epilogue, patches or scales}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xi16>, tensor<16x40xi16>, tensor<40xf32>) -> tensor<8x40xi32>
  return %0 : tensor<8x40xi32>
}

// -----

func.func @integer_into_i16(%a: tensor<8x16xi16>, %w: tensor<16x40xi16>) -> tensor<8x40xi16> {
  // expected-error @+1 {{'ember.gemm' op an integer GEMM multiplies an i16 matrix into i32, got 8x16 i16 -> i16}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xi16>, tensor<16x40xi16>) -> tensor<8x40xi16>
  return %0 : tensor<8x40xi16>
}

// -----

func.func @integer_packed_without_pairs(%a: tensor<8x16xi16>, %p: tensor<3x16x16xi16>) -> tensor<8x40xi32> {
  // expected-error @+1 {{'ember.gemm' op a packed integer GEMM needs its rhs in pairs (rhs_pairs) and an even K}}
  %0 = "ember.gemm"(%a, %p) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, rhs_panel = 16 : i64} : (tensor<8x16xi16>, tensor<3x16x16xi16>) -> tensor<8x40xi32>
  return %0 : tensor<8x40xi32>
}

// -----

func.func @integer_wrong_rhs(%a: tensor<8x16xi16>, %w: tensor<12x40xi16>) -> tensor<8x40xi32> {
  // expected-error @+1 {{'ember.gemm' op integer GEMM: rhs must be 16x40 i16 and the result [M, N] for lhs 8x16, got rhs 12x40 i16, result 8x40}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xi16>, tensor<12x40xi16>) -> tensor<8x40xi32>
  return %0 : tensor<8x40xi32>
}
