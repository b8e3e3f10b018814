// RUN: ember-opt %s --split-input-file --ember-merge-parallel-gemms | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-merge-parallel-gemms=enabled=false | filecheck %s --check-prefix=OFF

// Q/K/V projections of one input become one GEMM on concatenated weights; slices hand each
// consumer its columns. A missing bias is zero-filled in the merged bias.
// CHECK-LABEL: func.func @qkv
// CHECK: %[[W:.*]] = "ember.weight"() {name = "q.w.merged3"} : () -> tensor<32x72xf32>
// CHECK: %[[B:.*]] = "ember.weight"() {name = "q.b.merged3"} : () -> tensor<72xf32>
// CHECK: %[[G:.*]] = "ember.gemm"(%arg0, %[[W]], %[[B]]) {activation = "none"
// CHECK-SAME: -> tensor<?x16x72xf32>
// CHECK: "ember.slice"(%[[G]]) {axis = 2 : i64, size = 32 : i64, start = 0 : i64}
// CHECK: "ember.slice"(%[[G]]) {axis = 2 : i64, size = 32 : i64, start = 32 : i64}
// CHECK: "ember.slice"(%[[G]]) {axis = 2 : i64, size = 8 : i64, start = 64 : i64}
// CHECK-NOT: "ember.gemm"
// OFF-LABEL: func.func @qkv
// OFF-COUNT-3: "ember.gemm"
// OFF-NOT: ember.slice
func.func @qkv(%x: tensor<?x16x32xf32>) -> (tensor<?x16x32xf32>, tensor<?x16x32xf32>, tensor<?x16x8xf32>) {
  %wq = "ember.weight"() {name = "q.w"} : () -> tensor<32x32xf32>
  %bq = "ember.weight"() {name = "q.b"} : () -> tensor<32xf32>
  %wk = "ember.weight"() {name = "k.w"} : () -> tensor<32x32xf32>
  %wv = "ember.weight"() {name = "v.w"} : () -> tensor<32x8xf32>
  %bv = "ember.weight"() {name = "v.b"} : () -> tensor<8xf32>
  %q = "ember.gemm"(%x, %wq, %bq) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x16x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x16x32xf32>
  %k = "ember.gemm"(%x, %wk) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x16x32xf32>, tensor<32x32xf32>) -> tensor<?x16x32xf32>
  %v = "ember.gemm"(%x, %wv, %bv) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x16x32xf32>, tensor<32x8xf32>, tensor<8xf32>) -> tensor<?x16x8xf32>
  return %q, %k, %v : tensor<?x16x32xf32>, tensor<?x16x32xf32>, tensor<?x16x8xf32>
}

// -----

// Negative: different activations, a residual, or a different input keep GEMMs apart.
// CHECK-LABEL: func.func @not_mergeable
// CHECK-COUNT-4: "ember.gemm"
// CHECK-NOT: ember.slice
func.func @not_mergeable(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>, %r: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %w1 = "ember.weight"() {name = "w1"} : () -> tensor<8x8xf32>
  %w2 = "ember.weight"() {name = "w2"} : () -> tensor<8x8xf32>
  %w3 = "ember.weight"() {name = "w3"} : () -> tensor<8x8xf32>
  %w4 = "ember.weight"() {name = "w4"} : () -> tensor<8x8xf32>
  %0 = "ember.gemm"(%x, %w1) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %1 = "ember.gemm"(%x, %w2) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %2 = "ember.gemm"(%x, %w3, %r) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %3 = "ember.gemm"(%y, %w4) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return %0, %1, %2, %3 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}
