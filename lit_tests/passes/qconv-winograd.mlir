// RUN: ember-opt %s --target=host:cpu=haswell --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd)' | filecheck %s
// RUN: ember-opt %s --target=host:cpu=haswell --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd,ember-pack-weights)' | filecheck %s --check-prefix=PACK
// RUN: ember-opt %s --target=host:cpu=haswell --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd{min-blocks=2 block-bytes=2048})' | filecheck %s --check-prefix=BLOCK
// RUN: ember-opt %s --target=host:cpu=cascadelake --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd)' | filecheck %s --check-prefix=VNNI
// RUN: ember-opt %s --target=host:cpu=cascadelake --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd{always=true})' | filecheck %s --check-prefix=ALWAYS
// RUN: ember-opt %s --target=host:cpu=haswell --split-input-file --pass-pipeline='builtin.module(ember-qconv-winograd{enabled=false})' | filecheck %s --check-prefix=OFF

// ember-qconv-winograd: a static int8 qgemm over the patches of a 3x3 stride-1 conv as integer
// Winograd F(2x2, 3x3) where the int8 dot product is vpmaddubsw (AVX2 without VNNI): the codes
// padded with their zero point, one generic extending each 4x4 tile's codes to i16, minus the
// zero point, and applying B^T . B (adds and subtracts), 16 integer GEMMs (i16 x i16 -> i32)
// with the filter transformed at compile time (`<filter>.winograd2i.<i>`, (2G) g (2G)^T, i16
// [C, F]), and one generic applying A^T . A, the exact shift by 2 and the qgemm's epilogue
// (scales, bias, residual codes dequantized, output activation, requantization).

// CHECK-LABEL: func.func @block
// CHECK-NOT: ember.qgemm
// CHECK-DAG: "ember.weight"() {name = "c2.w.winograd2i.0"} : () -> tensor<16x16xi16>
// CHECK-DAG: "ember.weight"() {name = "c2.w.winograd2i.15"} : () -> tensor<16x16xi16>
// CHECK: tensor.pad
// CHECK: tensor.yield %c0_i8
// CHECK: linalg.generic
// CHECK: arith.extui %{{.*}} : i8 to i16
// CHECK: arith.subi
// CHECK-COUNT-16: "ember.gemm"({{.*}}) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x16xi16>, tensor<16x16xi16>) -> tensor<4x16xi32>
// CHECK: linalg.generic
// CHECK: arith.shrsi %{{.*}}, %c2_i32 : i32
// CHECK: arith.sitofp
// CHECK: arith.cmpf olt
// CHECK: arith.select
// CHECK: return %{{.*}} : tensor<1x4x4x16xf32>
// ember-pack-weights packs each transformed filter in i16 pairs, the words vpmaddwd reads.
// PACK-LABEL: func.func @block
// PACK-COUNT-16: {name = "c2.w.winograd2i.{{[0-9]+}}.pairs16"} : () -> tensor<1x8x16xi32>
// PACK: "ember.gemm"({{.*}}) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>, rhs_pairs = true, rhs_panel = 16 : i64} : (tensor<4x16xi16>, tensor<1x8x16xi32>) -> tensor<4x16xi32>
// Blocked: each iteration of an scf.forall pads its window of two tile rows.
// BLOCK-LABEL: func.func @block
// BLOCK: scf.forall (%{{.*}}, %{{.*}}) in (1, 2)
// BLOCK: tensor.pad
// BLOCK-COUNT-16: "ember.gemm"({{.*}}) {{.*}} : (tensor<2x16xi16>, tensor<16x16xi16>) -> tensor<2x16xi32>
// BLOCK: tensor.parallel_insert_slice
// VNNI-LABEL: func.func @block
// VNNI: "ember.qgemm"
// VNNI-NOT: winograd2i
// ALWAYS-LABEL: func.func @block
// ALWAYS-NOT: ember.qgemm
// ALWAYS: winograd2i
// OFF-LABEL: func.func @block
// OFF: "ember.qgemm"
func.func @block(%x: tensor<1x4x4x16xui8>, %r: tensor<1x4x4x16xui8>) -> tensor<1x4x4x16xf32> {
  %w = "ember.weight"() {name = "c2.w"} : () -> tensor<144x16xi8>
  %s = "ember.weight"() {name = "c2.s"} : () -> tensor<16xf32>
  %b = "ember.weight"() {name = "c2.b"} : () -> tensor<16xf32>
  %y = "ember.qgemm"(%x, %w, %s, %b, %r) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.0035 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>, output_activation = "relu", residual_scale = 0.0107 : f32, residual_zero_point = 0 : i64} : (tensor<1x4x4x16xui8>, tensor<144x16xi8>, tensor<16xf32>, tensor<16xf32>, tensor<1x4x4x16xui8>) -> tensor<1x4x4x16xf32>
  return %y : tensor<1x4x4x16xf32>
}

// -----

// Writing codes with a zero point of 67 (signed i8 input codes, padded with their zero point
// and sign-extended): the epilogue requantizes.
// CHECK-LABEL: func.func @codes
// CHECK: tensor.yield %c67_i8
// CHECK: arith.extsi %{{.*}} : i8 to i16
// CHECK: arith.subi %{{.*}}, %c67_i16 : i16
// CHECK: arith.shrsi
// CHECK: arith.fptosi
// CHECK: return %{{.*}} : tensor<2x6x8x32xi8>
func.func @codes(%x: tensor<2x6x8x32xi8>) -> tensor<2x6x8x32xi8> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<32xf32>
  %y = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "s8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.04 : f32, lhs_zero_point = 67 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>, result_range = array<i64: -128, 127>, result_scale = 0.01 : f32, result_zero_point = -3 : i64} : (tensor<2x6x8x32xi8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<2x6x8x32xi8>
  return %y : tensor<2x6x8x32xi8>
}

// -----

// Left to the direct kernel: stride 2, an odd output size, fewer than 16 channels, an odd C.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-4: "ember.qgemm"
// CHECK-NOT: winograd2i
func.func @kept(%x: tensor<1x8x8x16xui8>, %odd: tensor<1x5x5x16xui8>, %thin: tensor<1x8x8x8xui8>, %oddc: tensor<1x8x8x17xui8>) -> (tensor<1x4x4x16xf32>, tensor<1x5x5x16xf32>, tensor<1x8x8x16xf32>, tensor<1x8x8x16xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<144x16xi8>
  %w8 = "ember.weight"() {name = "w8"} : () -> tensor<72x16xi8>
  %w17 = "ember.weight"() {name = "w17"} : () -> tensor<153x16xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<16xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 2, 2, 1, 1, 1, 1>, lhs_scale = 0.01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x8x8x16xui8>, tensor<144x16xi8>, tensor<16xf32>) -> tensor<1x4x4x16xf32>
  %1 = "ember.qgemm"(%odd, %w, %s) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x5x5x16xui8>, tensor<144x16xi8>, tensor<16xf32>) -> tensor<1x5x5x16xf32>
  %2 = "ember.qgemm"(%thin, %w8, %s) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x8x8x8xui8>, tensor<72x16xi8>, tensor<16xf32>) -> tensor<1x8x8x16xf32>
  %3 = "ember.qgemm"(%oddc, %w17, %s) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x8x8x17xui8>, tensor<153x16xi8>, tensor<16xf32>) -> tensor<1x8x8x16xf32>
  return %0, %1, %2, %3 : tensor<1x4x4x16xf32>, tensor<1x5x5x16xf32>, tensor<1x8x8x16xf32>, tensor<1x8x8x16xf32>
}

// -----

// A dynamic batch, whole (too few blocks to split): the GEMMs' rows are dynamic.
// CHECK-LABEL: func.func @dynamic_batch
// CHECK-COUNT-16: "ember.gemm"({{.*}}) {{.*}} : (tensor<?x16xi16>, tensor<16x16xi16>) -> tensor<?x16xi32>
// CHECK: return %{{.*}} : tensor<?x4x4x16xf32>
func.func @dynamic_batch(%x: tensor<?x4x4x16xui8>) -> tensor<?x4x4x16xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<144x16xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<16xf32>
  %y = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u7", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.01 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x4x4x16xui8>, tensor<144x16xi8>, tensor<16xf32>) -> tensor<?x4x4x16xf32>
  return %y : tensor<?x4x4x16xf32>
}
