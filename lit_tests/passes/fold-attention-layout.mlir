// RUN: ember-opt %s --split-input-file --ember-fold-attention-layout | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-fold-attention-layout,ember-lower-to-linalg)' | filecheck %s --check-prefix=LOWER

// ember-fold-attention-layout: a BERT layer's heads. q, k and v are the projections' outputs
// split into heads ([B, S, H, D]) and transposed to [B, H, S, D]; the key also through its
// k^T and ember-fuse-attention's transpose back (a chain of three). The attention takes the
// untransposed tensors in layout "bshd" and its result is merged back without a transpose:
// no transpose is left. Lowered in f32, each batch entry (cache-sized) is transposed inside the
// scf.forall into the heads-major layout the GEMM kernels recognize, and back; the int8
// lowering reads the heads in place (int8-attention.mlir).
// CHECK-LABEL: func.func @encoder_heads
// CHECK-NOT: ember.transpose
// CHECK: %[[A:.*]] = "ember.attention"(%arg0, %arg1, %arg2, %arg3) {causal = false, layout = "bshd", {{.*}}scale = 1.250000e-01 : f32} : (tensor<2x16x4x8xf32>, tensor<2x16x4x8xf32>, tensor<2x16x4x8xf32>, tensor<2x1x1x16xf32>) -> tensor<2x16x4x8xf32>
// CHECK-NOT: ember.transpose
// CHECK: %[[M:.*]] = "ember.reshape"(%[[A]]) : (tensor<2x16x4x8xf32>) -> tensor<2x16x32xf32>
// CHECK: return %[[M]]
// LOWER-LABEL: func.func @encoder_heads
// LOWER-NOT: linalg.transpose
// LOWER: scf.forall
// LOWER: %[[Q:.*]] = linalg.transpose ins(%{{.*}} : tensor<16x4x8xf32>) outs(%{{.*}} : tensor<4x16x8xf32>) permutation = [1, 0, 2]
// LOWER: %[[K:.*]] = linalg.transpose ins(%{{.*}} : tensor<16x4x8xf32>) outs(%{{.*}} : tensor<4x16x8xf32>) permutation = [1, 0, 2]
// LOWER: linalg.generic {{.*}} ins(%[[Q]], %[[K]] : tensor<4x16x8xf32>, tensor<4x16x8xf32>) outs(%{{.*}} : tensor<4x16x16xf32>)
// LOWER: linalg.transpose ins(%{{.*}} : tensor<4x16x8xf32>) outs(%{{.*}} : tensor<16x4x8xf32>) permutation = [1, 0, 2]
// LOWER: scf.forall.in_parallel
func.func @encoder_heads(%q: tensor<2x16x4x8xf32>, %k: tensor<2x16x4x8xf32>, %v: tensor<2x16x4x8xf32>, %m: tensor<2x1x1x16xf32>) -> tensor<2x16x32xf32> {
  %qh = "ember.transpose"(%q) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
  %kt = "ember.transpose"(%k) {permutation = array<i64: 0, 2, 3, 1>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x8x16xf32>
  %kh = "ember.transpose"(%kt) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %vh = "ember.transpose"(%v) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
  %a = "ember.attention"(%qh, %kh, %vh, %m) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 0.125 : f32} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x1x1x16xf32>) -> tensor<2x4x16x8xf32>
  %o = "ember.transpose"(%a) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x4x16x8xf32>) -> tensor<2x16x4x8xf32>
  %r = "ember.reshape"(%o) : (tensor<2x16x4x8xf32>) -> tensor<2x16x32xf32>
  return %r : tensor<2x16x32xf32>
}

// -----

// A result read in PyTorch's layout (here by a reduction) gets one transpose of the folded
// attention (three transposes saved, one kept); a causal attention folds the same way (its
// mask is on the scores, which are [.., H, Sq, Sk] in both layouts).
// CHECK-LABEL: func.func @result_kept_in_heads_layout
// CHECK: %[[A:.*]] = "ember.attention"(%arg0, %arg1, %arg2) {causal = true, layout = "bshd", {{.*}}} : (tensor<16x4x8xf32>, tensor<16x4x8xf32>, tensor<16x4x8xf32>) -> tensor<16x4x8xf32>
// CHECK: %[[T:.*]] = "ember.transpose"(%[[A]]) {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x8xf32>) -> tensor<4x16x8xf32>
// CHECK: "ember.reduce"(%[[T]])
func.func @result_kept_in_heads_layout(%q: tensor<16x4x8xf32>, %k: tensor<16x4x8xf32>, %v: tensor<16x4x8xf32>) -> tensor<4x16xf32> {
  %qh = "ember.transpose"(%q) {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x8xf32>) -> tensor<4x16x8xf32>
  %kh = "ember.transpose"(%k) {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x8xf32>) -> tensor<4x16x8xf32>
  %vh = "ember.transpose"(%v) {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x8xf32>) -> tensor<4x16x8xf32>
  %a = "ember.attention"(%qh, %kh, %vh) {causal = true, operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 0.125 : f32} : (tensor<4x16x8xf32>, tensor<4x16x8xf32>, tensor<4x16x8xf32>) -> tensor<4x16x8xf32>
  %r = "ember.reduce"(%a) {kind = "sum", axes = array<i64: 2>, keepdim = false} : (tensor<4x16x8xf32>) -> tensor<4x16xf32>
  return %r : tensor<4x16xf32>
}

// -----

// Not folded: the value is not a transpose of the heads (its layout is already [B, H, S, D]),
// and a transpose of other dims (here of the last two) is not a split into heads.
// CHECK-LABEL: func.func @value_in_heads_layout
// CHECK: "ember.attention"(%{{.*}}, %{{.*}}, %arg2) {causal = false, operandSegmentSizes
// CHECK-LABEL: func.func @other_transpose
// CHECK: "ember.attention"(%{{.*}}, %{{.*}}, %{{.*}}) {causal = false, operandSegmentSizes
func.func @value_in_heads_layout(%q: tensor<2x16x4x8xf32>, %k: tensor<2x16x4x8xf32>, %v: tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32> {
  %qh = "ember.transpose"(%q) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
  %kh = "ember.transpose"(%k) {permutation = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
  %a = "ember.attention"(%qh, %kh, %v) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 0.125 : f32} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %a : tensor<2x4x16x8xf32>
}

func.func @other_transpose(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32> {
  %qh = "ember.transpose"(%q) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %kh = "ember.transpose"(%k) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %vh = "ember.transpose"(%v) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %a = "ember.attention"(%qh, %kh, %vh) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 0.125 : f32} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return %a : tensor<2x4x16x16xf32>
}
