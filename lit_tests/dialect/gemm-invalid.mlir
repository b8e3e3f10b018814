// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @k_mismatch(%a: tensor<8x16xf32>, %w: tensor<12x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'ember.gemm' op contraction dims differ: lhs 8x16 has K=16, rhs 12x32 has K=12}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<12x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @bias_not_n(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{bias must be 1-D of size N=32, got 16}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A bias of the full result shape is a residual, not a bias.
func.func @bias_2d(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{bias must be 1-D of size N=32, got 8x32}}
  %0 = "ember.gemm"(%a, %w, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @residual_mismatch(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %r: tensor<8x16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{residual shape 8x16 must equal the result shape 8x32}}
  %0 = "ember.gemm"(%a, %w, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<8x16xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// IRDL (irdl.any_of): an unknown activation fails at parse time.
func.func @bad_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'"softplus"' does not satisfy the constraint}}
  %0 = "ember.gemm"(%a, %w) {activation = "softplus", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A unary kind that is not an epilogue activation.
func.func @unary_kind_as_activation(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'"exp"' does not satisfy the constraint}}
  %0 = "ember.gemm"(%a, %w) {activation = "exp", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

func.func @result_shape(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{result shape 8x16 does not match lhs x rhs shape 8x32}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

func.func @lhs_rank_1(%a: tensor<16xf32>, %w: tensor<16x32xf32>) -> tensor<32xf32> {
  // expected-error @+1 {{lhs must have rank >= 2, got 16}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<16xf32>, tensor<16x32xf32>) -> tensor<32xf32>
  return %0 : tensor<32xf32>
}

// -----

func.func @batch_mismatch(%a: tensor<4x8x16xf32>, %w: tensor<2x16x32xf32>) -> tensor<4x8x32xf32> {
  // expected-error @+1 {{batch dims differ: lhs 4x8x16, rhs 2x16x32}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x8x16xf32>, tensor<2x16x32xf32>) -> tensor<4x8x32xf32>
  return %0 : tensor<4x8x32xf32>
}

// -----

func.func @mixed_element_types(%a: tensor<8x16xf16>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{operands and result must share one element type, got ['f16', 'f32']}}
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf16>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// IRDL: lhs and rhs are required; operandSegmentSizes must count the operands given.
func.func @one_operand(%a: tensor<8x16xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{sum of elements in 'operandSegmentSizes' attribute must be equal to the number of operands}}
  %0 = "ember.gemm"(%a) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>) -> tensor<8x32xf32>
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
  %0 = "ember.gemm"(%a, %w) {operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}
