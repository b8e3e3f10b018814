// RUN: ember-opt %s --split-input-file --ember-fold-grouped-heads | filecheck %s

// ember-fold-grouped-heads: Hugging Face's repeat_kv (unsqueeze a size-1 dim -3, broadcast it
// to G = 4, reshape into the heads) feeding attention's two products. Each product runs on the
// unrepeated keys or values, with the 4 query heads of a kv head as 4 x M rows (a view of q /
// p), and its result is viewed back as the heads; the repeat is left without users.
// CHECK-LABEL: func.func @decode_step
// CHECK-DAG: %[[Q:.*]] = "ember.reshape"(%arg0) : (tensor<1x8x1x16xf32>) -> tensor<1x2x4x16xf32>
// CHECK-DAG: %[[KT:.*]] = "ember.transpose"(%arg1) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<1x2x9x16xf32>) -> tensor<1x2x16x9xf32>
// CHECK: %[[S:.*]] = "ember.gemm"(%[[Q]], %[[KT]]) {{.*}} : (tensor<1x2x4x16xf32>, tensor<1x2x16x9xf32>) -> tensor<1x2x4x9xf32>
// CHECK: %[[SH:.*]] = "ember.reshape"(%[[S]]) : (tensor<1x2x4x9xf32>) -> tensor<1x8x1x9xf32>
// CHECK: %[[P:.*]] = "ember.reshape"(%[[SH]]) : (tensor<1x8x1x9xf32>) -> tensor<1x2x4x9xf32>
// CHECK: %[[O:.*]] = "ember.gemm"(%[[P]], %arg2) {{.*}} : (tensor<1x2x4x9xf32>, tensor<1x2x9x16xf32>) -> tensor<1x2x4x16xf32>
// CHECK: %[[OH:.*]] = "ember.reshape"(%[[O]]) : (tensor<1x2x4x16xf32>) -> tensor<1x8x1x16xf32>
// CHECK: return %[[OH]]
func.func @decode_step(%q: tensor<1x8x1x16xf32>, %k: tensor<1x2x9x16xf32>, %v: tensor<1x2x9x16xf32>) -> tensor<1x8x1x16xf32> {
  %k1 = "ember.reshape"(%k) : (tensor<1x2x9x16xf32>) -> tensor<1x2x1x9x16xf32>
  %kr = "ember.broadcast"(%k1) : (tensor<1x2x1x9x16xf32>) -> tensor<1x2x4x9x16xf32>
  %kh = "ember.reshape"(%kr) : (tensor<1x2x4x9x16xf32>) -> tensor<1x8x9x16xf32>
  %kt = "ember.transpose"(%kh) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<1x8x9x16xf32>) -> tensor<1x8x16x9xf32>
  %s = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x8x1x16xf32>, tensor<1x8x16x9xf32>) -> tensor<1x8x1x9xf32>
  %v1 = "ember.reshape"(%v) : (tensor<1x2x9x16xf32>) -> tensor<1x2x1x9x16xf32>
  %vr = "ember.broadcast"(%v1) : (tensor<1x2x1x9x16xf32>) -> tensor<1x2x4x9x16xf32>
  %vh = "ember.reshape"(%vr) : (tensor<1x2x4x9x16xf32>) -> tensor<1x8x9x16xf32>
  %o = "ember.gemm"(%s, %vh) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x8x1x9xf32>, tensor<1x8x9x16xf32>) -> tensor<1x8x1x16xf32>
  return %o : tensor<1x8x1x16xf32>
}

// -----

// Left alone: the heads repeated the other way (broadcast along dim -4: head h uses kv head
// h % Hkv), a gemm with a bias, and a dynamic number of query rows.
// CHECK-LABEL: func.func @not_folded
// CHECK-COUNT-3: "ember.gemm"(%arg{{[0-9]}}, %{{.*}}) {{.*}} -> tensor<1x8x{{1|\?}}x16xf32>
// CHECK-NOT: "ember.gemm"
func.func @not_folded(%p: tensor<1x8x1x9xf32>, %v: tensor<1x2x9x16xf32>, %b: tensor<16xf32>, %pd: tensor<1x8x?x9xf32>) -> (tensor<1x8x1x16xf32>, tensor<1x8x1x16xf32>, tensor<1x8x?x16xf32>) {
  %vo1 = "ember.reshape"(%v) : (tensor<1x2x9x16xf32>) -> tensor<1x1x2x9x16xf32>
  %vo = "ember.broadcast"(%vo1) : (tensor<1x1x2x9x16xf32>) -> tensor<1x4x2x9x16xf32>
  %voh = "ember.reshape"(%vo) : (tensor<1x4x2x9x16xf32>) -> tensor<1x8x9x16xf32>
  %0 = "ember.gemm"(%p, %voh) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x8x1x9xf32>, tensor<1x8x9x16xf32>) -> tensor<1x8x1x16xf32>
  %v1 = "ember.reshape"(%v) : (tensor<1x2x9x16xf32>) -> tensor<1x2x1x9x16xf32>
  %vr = "ember.broadcast"(%v1) : (tensor<1x2x1x9x16xf32>) -> tensor<1x2x4x9x16xf32>
  %vh = "ember.reshape"(%vr) : (tensor<1x2x4x9x16xf32>) -> tensor<1x8x9x16xf32>
  %1 = "ember.gemm"(%p, %vh, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x8x1x9xf32>, tensor<1x8x9x16xf32>, tensor<16xf32>) -> tensor<1x8x1x16xf32>
  %2 = "ember.gemm"(%pd, %vh) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x8x?x9xf32>, tensor<1x8x9x16xf32>) -> tensor<1x8x?x16xf32>
  return %0, %1, %2 : tensor<1x8x1x16xf32>, tensor<1x8x1x16xf32>, tensor<1x8x?x16xf32>
}

// -----

// A fused attention over repeated keys and values with a mask every head and row shares (a
// decode step): the query's 4 heads per kv head become rows, the mask stays as it is.
// CHECK-LABEL: func.func @attention_decode
// CHECK: %[[Q:.*]] = "ember.reshape"(%arg0) : (tensor<1x8x1x16xf32>) -> tensor<1x2x4x16xf32>
// CHECK: %[[A:.*]] = "ember.attention"(%[[Q]], %arg1, %arg1, %arg2) {causal = false, {{.*}}scale = 2.500000e-01 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x9x16xf32>, tensor<1x2x9x16xf32>, tensor<1x1x1x9xf32>) -> tensor<1x2x4x16xf32>
// CHECK: %[[R:.*]] = "ember.reshape"(%[[A]]) : (tensor<1x2x4x16xf32>) -> tensor<1x8x1x16xf32>
// CHECK: return %[[R]]
func.func @attention_decode(%q: tensor<1x8x1x16xf32>, %kv: tensor<1x2x9x16xf32>, %mask: tensor<1x1x1x9xf32>) -> tensor<1x8x1x16xf32> {
  %r1 = "ember.reshape"(%kv) : (tensor<1x2x9x16xf32>) -> tensor<1x2x1x9x16xf32>
  %r = "ember.broadcast"(%r1) : (tensor<1x2x1x9x16xf32>) -> tensor<1x2x4x9x16xf32>
  %h = "ember.reshape"(%r) : (tensor<1x2x4x9x16xf32>) -> tensor<1x8x9x16xf32>
  %a = "ember.attention"(%q, %h, %h, %mask) {causal = false, scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<1x8x1x16xf32>, tensor<1x8x9x16xf32>, tensor<1x8x9x16xf32>, tensor<1x1x1x9xf32>) -> tensor<1x8x1x16xf32>
  return %a : tensor<1x8x1x16xf32>
}

// -----

// A cache of dynamic length (the views are tensor.expand_shape / collapse_shape): the
// attention reads the unrepeated cache of ? keys.
// CHECK-LABEL: func.func @attention_dynamic_cache
// CHECK: %[[Q:.*]] = "ember.reshape"(%arg0) : (tensor<1x8x1x16xf32>) -> tensor<1x2x4x16xf32>
// CHECK: "ember.attention"(%[[Q]], %arg1, %arg1, %arg2) {{.*}} : (tensor<1x2x4x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x1x1x?xf32>) -> tensor<1x2x4x16xf32>
func.func @attention_dynamic_cache(%q: tensor<1x8x1x16xf32>, %kv: tensor<1x2x?x16xf32>, %mask: tensor<1x1x1x?xf32>) -> tensor<1x8x1x16xf32> {
  %c2 = arith.constant 2 : index
  %n = tensor.dim %kv, %c2 : tensor<1x2x?x16xf32>
  %r1 = tensor.expand_shape %kv [[0], [1], [2, 3], [4]] output_shape [1, 2, 1, %n, 16] : tensor<1x2x?x16xf32> into tensor<1x2x1x?x16xf32>
  %r = "ember.broadcast"(%r1) : (tensor<1x2x1x?x16xf32>) -> tensor<1x2x4x?x16xf32>
  %h = tensor.collapse_shape %r [[0], [1, 2], [3], [4]] : tensor<1x2x4x?x16xf32> into tensor<1x8x?x16xf32>
  %a = "ember.attention"(%q, %h, %h, %mask) {causal = false, scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<1x8x1x16xf32>, tensor<1x8x?x16xf32>, tensor<1x8x?x16xf32>, tensor<1x1x1x?xf32>) -> tensor<1x8x1x16xf32>
  return %a : tensor<1x8x1x16xf32>
}

// -----

// Left alone: a causal attention (grouping moves the rows' positions) and a mask given per row
// but shared by the heads (its rows would have to be repeated).
// CHECK-LABEL: func.func @attention_not_folded
// CHECK-NOT: "ember.reshape"(%arg0)
// CHECK-COUNT-2: "ember.attention"(%arg0, %{{.*}}) {{.*}} -> tensor<1x8x3x16xf32>
func.func @attention_not_folded(%q: tensor<1x8x3x16xf32>, %kv: tensor<1x2x9x16xf32>, %mask: tensor<1x1x3x9xf32>) -> (tensor<1x8x3x16xf32>, tensor<1x8x3x16xf32>) {
  %r1 = "ember.reshape"(%kv) : (tensor<1x2x9x16xf32>) -> tensor<1x2x1x9x16xf32>
  %r = "ember.broadcast"(%r1) : (tensor<1x2x1x9x16xf32>) -> tensor<1x2x4x9x16xf32>
  %h = "ember.reshape"(%r) : (tensor<1x2x4x9x16xf32>) -> tensor<1x8x9x16xf32>
  %a = "ember.attention"(%q, %h, %h) {causal = true, scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x8x3x16xf32>, tensor<1x8x9x16xf32>, tensor<1x8x9x16xf32>) -> tensor<1x8x3x16xf32>
  %b = "ember.attention"(%q, %h, %h, %mask) {causal = false, scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<1x8x3x16xf32>, tensor<1x8x9x16xf32>, tensor<1x8x9x16xf32>, tensor<1x1x3x9xf32>) -> tensor<1x8x3x16xf32>
  return %a, %b : tensor<1x8x3x16xf32>, tensor<1x8x3x16xf32>
}
