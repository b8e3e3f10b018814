// RUN: ember-opt %s --split-input-file --ember-quantize | filecheck %s --check-prefix=MARK
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{exclude=Attention})' | filecheck %s --check-prefix=KEPT
// RUN: ember-opt %s --split-input-file --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-quantize,ember-pack-weights)' | filecheck %s --check-prefix=FACTS
// RUN: ember-opt %s --split-input-file --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-quantize,ember-pack-weights,ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=LOWER

// ember-quantize marks attention int8 (kind "Attention"); ember-pack-weights gives it the
// target's int8 kernel facts (VNNI: u8 codes, its panel width NR = 32); the lowering then
// runs both products on the int8 kernel for each batch entry (an scf.forall; a leading head
// dim would be looped over): K's rows quantized per key and packed into word panels at run
// time (4 bytes of a row to a word), the scores from the kernel with the mask as its
// residual, the probabilities' codes straight from exp(s - max) (no divide, no f32
// probabilities; zero point 0 and u8's whole range, 255), V's channels quantized and packed
// from four strided row slices (rows 4w + j) without a transpose, and no compensation owed
// by the second product (zeros).
// MARK-LABEL: func.func @attention
// MARK: "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = false, int8 = true,
// KEPT-LABEL: func.func @attention
// KEPT-NOT: int8
// FACTS-LABEL: func.func @attention
// FACTS: "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = false, int8 = true, int8_encoding = "u8", int8_panel = 32 : i64,
// LOWER-LABEL: func.func @attention
// LOWER-DAG: %[[TOP:.*]] = arith.constant 2.550000e+02 : f32
// LOWER-DAG: %[[ZERO:.*]] = arith.constant 0 : i32
// LOWER-NOT: linalg.transpose
// LOWER: scf.forall (%[[B:.*]]) in (2) shared_outs(%[[OUT:.*]] = %{{.*}})
// LOWER: tensor.extract_slice %arg1[%[[B]], 0, 0] [1, 32, 16] [1, 1, 1]
// LOWER: %[[DEST:.*]] = tensor.extract_slice %[[OUT]][%[[B]], 0, 0] [1, 32, 8] [1, 1, 1]
// LOWER: call @ember_gemm_0(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %arg3, %{{.*}}) : (tensor<32x16xi8>, tensor<1x4x32xi32>,
// V's channels' amax: an integer max of the magnitudes' bits (NaN the largest), over the
// rows; its zero start is also (CSE) the second product's owed compensation.
// LOWER: %[[NONE:.*]] = linalg.fill ins(%[[ZERO]] : i32) outs(%{{.*}} : tensor<8xi32>)
// LOWER: linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]{{.*}} outs(%[[NONE]] : tensor<8xi32>)
// LOWER: arith.maxsi
// LOWER: %[[V:.*]] = tensor.pad %{{.*}} low[0, 0] high[0, 24]
// LOWER: tensor.extract_slice %[[V]][0, 0] [8, 32] [4, 1] : tensor<32x32xf32> to tensor<8x32xf32>
// LOWER: tensor.extract_slice %[[V]][3, 0] [8, 32] [4, 1] : tensor<32x32xf32> to tensor<8x32xf32>
// exp(s - max) to 1e-5 relative, enough for 8-bit codes: 2^n from exponent bits times a
// degree-4 polynomial, no math.exp.
// LOWER-NOT: math.exp
// LOWER: math.roundeven
// LOWER: arith.bitcast %{{.*}} : i32 to f32
// LOWER-NEXT: arith.mulf
// LOWER-NEXT: linalg.yield
// LOWER: arith.mulf %{{.*}}, %[[TOP]] : f32
// LOWER-NEXT: math.roundeven
// The second product writes the forall's slice of the result (no buffer of its own).
// LOWER: call @ember_gemm_1(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[NONE]], %[[DEST]]) : (tensor<32x32xi8>, tensor<1x8x32xi32>,
// LOWER-NOT: call @ember_gemm
// LOWER: return
// The scores' kernel: [32 queries] x [32 keys], K = 16 / 4 words, the mask its residual;
// the output's: [32] x [8 channels] over 32 keys (8 words).
// LOWER: func.func private @ember_gemm_0({{.*}}ember.gemm_kernel = {activation = "none", bias = false, int8 = "u8", k = 4 : i64, m = 32 : i64, n = 32 : i64, nr = 32 : i64, residual = true}
// LOWER: func.func private @ember_gemm_1({{.*}}ember.gemm_kernel = {activation = "none", bias = false, int8 = "u8", k = 8 : i64, m = 32 : i64, n = 8 : i64, nr = 32 : i64, residual = false}
func.func @attention(%q: tensor<2x32x16xf32>, %k: tensor<2x32x16xf32>, %v: tensor<2x32x8xf32>, %m: tensor<32x32xf32>) -> tensor<2x32x8xf32> {
  %0 = "ember.attention"(%q, %k, %v, %m) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 0.25 : f32} : (tensor<2x32x16xf32>, tensor<2x32x16xf32>, tensor<2x32x8xf32>, tensor<32x32xf32>) -> tensor<2x32x8xf32>
  return %0 : tensor<2x32x8xf32>
}

// -----

// A dynamic sequence length keeps the f32 products (the int8 kernel needs static N and K).
// LOWER-LABEL: func.func @dynamic_length
// LOWER-NOT: ember_gemm_{{[0-9]+}}({{.*}}xi8>
// LOWER: math.exp
func.func @dynamic_length(%q: tensor<?x16xf32>, %k: tensor<?x16xf32>, %v: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = "ember.attention"(%q, %k, %v) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 0.25 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Heads inside the sequence (layout "bshd", [B, S, H, D]): each head is a strided slice
// x[b, :, h, :] read in place, its output copied (a vectorizable linalg.copy) into [:, h, :] of
// the forall's slice of the result; a padding mask shared by all
// queries ([B, 1, 1, Sk]) is the scores' kernel's bias, not a [Sq, Sk] residual.
// LOWER-LABEL: func.func @heads_inside
// LOWER-NOT: linalg.transpose
// LOWER: scf.forall (%[[B:.*]]) in (2) shared_outs(%[[OUT:.*]] = %{{.*}})
// LOWER: %[[DEST:.*]] = tensor.extract_slice %[[OUT]][%[[B]], 0, 0, 0] [1, 32, 2, 8]
// LOWER: %[[HEAD:.*]] = tensor.extract_slice %[[DEST]][0, 0, 0] [32, 1, 8] [1, 1, 1]
// LOWER: %[[COPY:.*]] = linalg.copy {{.*}}ins(%{{.*}} : tensor<32x8xf32>) outs(%[[HEAD]] : tensor<32x8xf32>)
// LOWER: tensor.insert_slice %[[COPY]] into %[[DEST]][0, 0, 0] [32, 1, 8] [1, 1, 1]
// LOWER: tensor.extract_slice %{{.*}}[0, 1, 0] [32, 1, 16] [1, 1, 1] : tensor<32x2x16xf32> to tensor<32x16xf32>
// LOWER: call @ember_gemm_[[SCORES:[0-9]+]](%{{.*}}) : (tensor<32x16xi8>, tensor<1x4x32xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32xi32>, tensor<32xf32>, tensor<32x32xf32>) -> tensor<32x32xf32>
// LOWER: tensor.insert_slice %{{.*}} into %{{.*}}[0, 1, 0] [32, 1, 8] [1, 1, 1] : tensor<32x8xf32> into tensor<32x2x8xf32>
// LOWER: func.func private @ember_gemm_[[SCORES]]({{.*}}ember.gemm_kernel = {activation = "none", bias = true, int8 = "u8", k = 4 : i64, m = 32 : i64, n = 32 : i64, nr = 32 : i64, residual = false}
func.func @heads_inside(%q: tensor<2x32x2x16xf32>, %k: tensor<2x32x2x16xf32>, %v: tensor<2x32x2x8xf32>, %m: tensor<2x1x1x32xf32>) -> tensor<2x32x2x8xf32> {
  %0 = "ember.attention"(%q, %k, %v, %m) {causal = false, layout = "bshd", operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 0.25 : f32} : (tensor<2x32x2x16xf32>, tensor<2x32x2x16xf32>, tensor<2x32x2x8xf32>, tensor<2x1x1x32xf32>) -> tensor<2x32x2x8xf32>
  return %0 : tensor<2x32x2x8xf32>
}
