// RUN: ember-opt %s --split-input-file --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-pack-weights{panel=16})' | filecheck %s --check-prefix=VNNI
// RUN: ember-opt %s --split-input-file --target=host:cpu=haswell --pass-pipeline='builtin.module(ember-pack-weights{panel=16})' | filecheck %s --check-prefix=AVX2
// RUN: ember-opt %s --split-input-file --target=aarch64:preset=graviton3 --pass-pipeline='builtin.module(ember-pack-weights{panel=16})' | filecheck %s --check-prefix=SDOT
// RUN: ember-opt %s --split-input-file --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-pack-weights{panel=16},ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=LOWER

// ember-pack-weights packs an int8 qgemm's weight [K, N] into panels of i32 words
// [ceil(N/NR), ceil(K/4), NR] (4 k per word), picks the activation encoding the target's dot
// product reads (vpdpbusd: u8; vpmaddubsw: u7; sdot: s8) and adds the compensation for its
// zero point (128, 64, 0) times the column sums.
// VNNI: %[[W:.*]] = "ember.weight"() {name = "fc.weight.int8.words16"} : () -> tensor<3x5x16xi32>
// VNNI: %[[C:.*]] = "ember.weight"() {name = "fc.weight.int8.zp128_compensation"} : () -> tensor<40xi32>
// VNNI: "ember.qgemm"(%arg0, %[[W]], %{{.*}}, %[[C]], %{{.*}}) {activation = "relu", lhs_encoding = "u8", operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0>, rhs_panel = 16 : i64}
// AVX2: zp64_compensation
// AVX2: lhs_encoding = "u7"
// SDOT: zp0_compensation
// SDOT: lhs_encoding = "s8"

// Lowered: the rows' scales, the codes as bytes (K padded to 20), the kernel call with the int8 spec.
// LOWER-LABEL: func.func @linear
// LOWER-NOT: scf.forall
// LOWER: arith.andi %{{.*}}, %{{.*}} : i32
// LOWER: arith.maxsi
// LOWER: tensor.pad
// LOWER: math.roundeven
// LOWER: arith.trunci {{.*}} : i32 to i8
// LOWER: call @ember_gemm_0({{.*}}) : (tensor<?x20xi8>, tensor<3x5x16xi32>, tensor<?xf32>, tensor<40xf32>, tensor<40xi32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// LOWER-LABEL: func.func private @ember_gemm_0(
// LOWER-SAME: int8 = "u8", k = 5 : i64
// LOWER: arith.extui
// LOWER: arith.sitofp
func.func @linear(%x: tensor<?x18xf32>) -> tensor<?x40xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<18x40xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<40xf32>
  %b = "ember.weight"() {name = "fc.bias"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s, %b) {activation = "relu", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>} : (tensor<?x18xf32>, tensor<18x40xi8>, tensor<40xf32>, tensor<40xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}

// -----

// Static codes (ui8, zero point 3) need all 8 bits: vpdpbusd reads them as they are
// (compensation 3 * column sums); AVX2's vpmaddubsw would saturate, so the kernel reads them
// as s8 (top bit flipped: zero point 3 - 128 = -125) with the portable product; sdot reads s8.
// VNNI-LABEL: func.func @static
// VNNI: {name = "fc.weight.int8.zp3_compensation"}
// VNNI: lhs_encoding = "u8", lhs_scale = 5.000000e-01 : f32, lhs_zero_point = 3 : i64
// AVX2-LABEL: func.func @static
// AVX2: {name = "fc.weight.int8.zp-125_compensation"}
// AVX2: lhs_encoding = "s8"
// SDOT-LABEL: func.func @static
// SDOT: zp-125_compensation
// SDOT: lhs_encoding = "s8"
// The codes go to the kernel uncopied where the kernel reads them unsigned (K is a multiple of 4),
// and their one scale is the kernel's lhs_scale (no row scales operand, nothing filled).
// LOWER-LABEL: func.func @static
// LOWER-NOT: linalg.generic
// LOWER-NOT: linalg.fill
// LOWER: call @ember_gemm_{{[0-9]+}}(%arg0, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}})
// LOWER-SAME: (tensor<?x20xi8>, tensor<3x5x16xi32>, tensor<40xf32>, tensor<40xi32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// LOWER: func.func private @ember_gemm_
// LOWER-SAME: lhs_scale = 5.000000e-01 : f64
func.func @static(%x: tensor<?x20xui8>) -> tensor<?x40xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<20x40xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x20xui8>, tensor<20x40xi8>, tensor<40xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}

// -----

// A qgemm writing codes (result_scale, result_zero_point, result_range): its kernel's C is
// bytes and its spec carries the requantization the kernel applies after the epilogue (the
// ui8 bytes are i8 once lowered).
// LOWER-LABEL: func.func @codes_out
// LOWER: %[[R:.*]] = call @ember_gemm_{{.*}} -> tensor<?x40xi8>
// LOWER-NEXT: return %[[R]]
// LOWER-LABEL: func.func private @ember_gemm_
// LOWER-SAME: out_codes = array<i64: 3, 0, 255>, out_scale = 2.500000e-01 : f64
// LOWER: math.roundeven
// LOWER: arith.trunci {{.*}} : i32 to i8
func.func @codes_out(%x: tensor<?x20xui8>) -> tensor<?x40xui8> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<20x40xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, result_scale = 0.25 : f32, result_zero_point = 3 : i64, result_range = array<i64: 0, 255>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x20xui8>, tensor<20x40xi8>, tensor<40xf32>) -> tensor<?x40xui8>
  return %0 : tensor<?x40xui8>
}

// -----

// A residual of codes goes to the kernel as its bytes ([M, N] i8; the spec carries their scale
// and (zero point, storage range)), dequantized in the reference body as in the kernel's
// epilogue; without a packed kernel (the reference product) it is dequantized first.
// LOWER-LABEL: func.func @residual_codes
// LOWER: call @ember_gemm_{{.*}} : (tensor<?x20xi8>, tensor<3x5x16xi32>, tensor<40xf32>, tensor<40xi32>, tensor<?x40xi8>, tensor<?x40xf32>) -> tensor<?x40xf32>
// LOWER-LABEL: func.func private @ember_gemm_
// LOWER-SAME: residual = true, residual_codes = array<i64: 3, 0, 255>, residual_scale = 1.250000e-01 : f64
// LOWER: arith.uitofp {{.*}} : i8 to f32
func.func @residual_codes(%x: tensor<?x20xui8>, %r: tensor<?x40xui8>) -> tensor<?x40xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<20x40xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, residual_scale = 0.125 : f32, residual_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<?x20xui8>, tensor<20x40xi8>, tensor<40xf32>, tensor<?x40xui8>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}

// -----

// A quantized conv of an RGB image (3x3 taps of C = 3, K = 27): each tap's channels become
// one whole word (the 4th byte 0), K words = 9 (not ceil(27/4) = 7), and the lowering pads
// the codes' channels to 4 (with the spatial zero-point border) so that the kernel reads the
// patches in place instead of a materialized im2col copy. With i8mm (Graviton 3), whose smmla
// multiplies 2 words of a tap at a time, one word a tap would run on sdot: the weight keeps
// its 7 words over K, the lowering materializes the patches.
// SDOT-LABEL: func.func @rgb_conv
// SDOT: {name = "stem.weight.int8.words16"} : () -> tensor<2x7x16xi32>
// VNNI-LABEL: func.func @rgb_conv
// VNNI: {name = "stem.weight.int8.words16_tap_words"} : () -> tensor<2x9x16xi32>
// VNNI: lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>
// VNNI-SAME: rhs_panel = 16 : i64
// LOWER-LABEL: func.func @rgb_conv
// LOWER: tensor.pad %{{.*}} low[0, 1, 1, 0] high[0, 1, 1, 1]
// LOWER: call @ember_gemm_{{.*}} : (tensor<2x10x10x4xi8>, tensor<2x9x16xi32>,
// LOWER-LABEL: func.func private @ember_gemm_
// LOWER-SAME: k = 9 : i64
// LOWER-SAME: patches = array<i64: 10, 10, 4, 3, 3, 1, 1, 1, 1>
func.func @rgb_conv(%x: tensor<2x8x8x3xui8>) -> tensor<2x8x8x32xf32> {
  %w = "ember.weight"() {name = "stem.weight.int8"} : () -> tensor<27x32xi8>
  %s = "ember.weight"() {name = "stem.weight.int8_scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<2x8x8x3xui8>, tensor<27x32xi8>, tensor<32xf32>) -> tensor<2x8x8x32xf32>
  return %0 : tensor<2x8x8x32xf32>
}

// -----

// A big static lhs (32768 f32 or more) is quantized in chunks of rows (32 rows of 128 here: 16
// KiB), the iterations of one scf.forall: each chunk's amax (an integer max of the
// magnitudes' bits) reduced, its codes written into its slice of the codes and its scales into
// its slice of the scales.
// LOWER-LABEL: func.func @chunked
// LOWER: %[[Q:.*]]:2 = scf.forall (%[[I:.*]]) in (8) shared_outs(%[[CODES:.*]] = %{{.*}}, %[[SCALES:.*]] = %{{.*}}) -> (tensor<256x128xi8>, tensor<256xf32>)
// LOWER: %[[ROW:.*]] = arith.muli %[[I]], %c32 : index
// LOWER-DAG: tensor.extract_slice %[[CODES]][%[[ROW]], 0] [32, 128] [1, 1]
// LOWER-DAG: tensor.extract_slice %[[SCALES]][%[[ROW]]] [32] [1]
// LOWER-DAG: tensor.extract_slice %arg0[%[[ROW]], 0] [32, 128] [1, 1]
// LOWER: linalg.fill
// LOWER: arith.andi %{{.*}}, %{{.*}} : i32
// LOWER: arith.maxsi
// LOWER: math.roundeven
// LOWER: arith.trunci {{.*}} : i32 to i8
// LOWER: scf.forall.in_parallel
// LOWER-DAG: tensor.parallel_insert_slice %{{.*}} into %[[CODES]][%[[ROW]], 0] [32, 128] [1, 1]
// LOWER-DAG: tensor.parallel_insert_slice %{{.*}} into %[[SCALES]][%[[ROW]]] [32] [1]
// LOWER: call @ember_gemm_{{[0-9]+}}(%[[Q]]#0, %{{.*}}, %[[Q]]#1,
func.func @chunked(%x: tensor<256x128xf32>) -> tensor<256x16xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<128x16xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<16xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<256x128xf32>, tensor<128x16xi8>, tensor<16xf32>) -> tensor<256x16xf32>
  return %0 : tensor<256x16xf32>
}

// -----

// Below 32768 elements the rows are quantized whole (a fork would cost more than it saves).
// LOWER-LABEL: func.func @small
// LOWER-NOT: scf.forall
// LOWER: call @ember_gemm_
func.func @small(%x: tensor<16x128xf32>) -> tensor<16x16xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<128x16xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<16xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<16x128xf32>, tensor<128x16xi8>, tensor<16xf32>) -> tensor<16x16xf32>
  return %0 : tensor<16x16xf32>
}
