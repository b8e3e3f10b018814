// RUN: ember-opt %s --split-input-file --ember-quantize | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{filter=layer\.0\.})' | filecheck %s --check-prefix=FILTER
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{exclude=Linear})' | filecheck %s --check-prefix=NONE
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{mode=static})' | filecheck %s --check-prefix=STATIC
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{exclude=Embedding})' | filecheck %s --check-prefix=TABLES-KEPT
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-quantize{mode=weights})' 2>&1 | filecheck %s --check-prefix=MODE

// ember-quantize turns a GEMM on a constant f32 weight [K, N] into ember.qgemm on the int8
// weight `<name>.int8` and its per-channel scales `<name>.int8_scale` (new weights-table
// entries), keeping bias, residual and activation. `filter` and `exclude` match the kind
// ("Linear") or the module path (the weight's name up to ".weight").
// MODE: error: ember-quantize: mode must be 'dynamic', 'static' or 'weight-only', got 'weights'
// In static mode the model's own quantize/dequantize ops carry its GEMMs: they stay.
// STATIC-LABEL: func.func @two_layers
// STATIC-NOT: ember.qgemm

// CHECK-LABEL: func.func @two_layers
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "layer.0.fc.bias"} : () -> tensor<40xf32>
// CHECK-DAG: %[[Q:.*]] = "ember.weight"() {name = "layer.0.fc.weight.int8"} : () -> tensor<20x40xi8>
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "layer.0.fc.weight.int8_scale"} : () -> tensor<40xf32>
// CHECK: %[[H:.*]] = "ember.qgemm"(%arg0, %[[Q]], %[[S]], %[[B]], %arg1) {activation = "gelu", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>} : (tensor<?x20xf32>, tensor<20x40xi8>, tensor<40xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// CHECK: "ember.qgemm"(%[[H]], {{.*}}) {activation = "none"
// CHECK-SAME: (tensor<?x40xf32>, tensor<40x8xi8>, tensor<8xf32>) -> tensor<?x8xf32>
// FILTER-LABEL: func.func @two_layers
// FILTER: "ember.qgemm"
// FILTER: "ember.gemm"
// NONE-LABEL: func.func @two_layers
// NONE-NOT: ember.qgemm
func.func @two_layers(%x: tensor<?x20xf32>, %r: tensor<?x40xf32>) -> tensor<?x8xf32> {
  %w = "ember.weight"() {name = "layer.0.fc.weight"} : () -> tensor<20x40xf32>
  %b = "ember.weight"() {name = "layer.0.fc.bias"} : () -> tensor<40xf32>
  %0 = "ember.gemm"(%x, %w, %b, %r) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x20xf32>, tensor<20x40xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  %w2 = "ember.weight"() {name = "layer.1.fc.weight"} : () -> tensor<40x8xf32>
  %1 = "ember.gemm"(%0, %w2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x40xf32>, tensor<40x8xf32>) -> tensor<?x8xf32>
  return %1 : tensor<?x8xf32>
}

// -----

// Left alone: a run-time rhs, a batched weight, an f16 weight, an empty K, a packed rhs, a
// mutable weight.
// CHECK-LABEL: func.func @not_quantized
// CHECK-NOT: ember.qgemm
// CHECK-NOT: int8
// CHECK: return
func.func @not_quantized(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %bx: tensor<2x4x8xf32>, %hx: tensor<4x8xf16>, %ex: tensor<4x0xf32>) -> (tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf16>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %bw = "ember.weight"() {name = "bw"} : () -> tensor<2x8x16xf32>
  %1 = "ember.gemm"(%bx, %bw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x4x8xf32>, tensor<2x8x16xf32>) -> tensor<2x4x16xf32>
  %hw = "ember.weight"() {name = "hw"} : () -> tensor<8x16xf16>
  %2 = "ember.gemm"(%hx, %hw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf16>, tensor<8x16xf16>) -> tensor<4x16xf16>
  %ew = "ember.weight"() {name = "ew"} : () -> tensor<0x16xf32>
  %3 = "ember.gemm"(%ex, %ew) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x0xf32>, tensor<0x16xf32>) -> tensor<4x16xf32>
  %pw = "ember.weight"() {name = "pw"} : () -> tensor<1x8x16xf32>
  %4 = "ember.gemm"(%x, %pw) {activation = "none", rhs_panel = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<1x8x16xf32>) -> tensor<4x16xf32>
  %mw = "ember.weight"() {name = "mw", mutable = true} : () -> tensor<8x16xf32>
  %5 = "ember.gemm"(%x, %mw) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %0, %1, %2, %3, %4, %5 : tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf16>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// An embedding table (Embedding, EmbeddingBag) becomes an int8 table with one scale per row
// (`<name>.int8_rows`, `<name>.int8_rows_scale`), in both modes; rows are dequantized as they
// are looked up. `exclude=Embedding` (the kind) keeps tables in f32.
// CHECK-LABEL: func.func @table
// CHECK-DAG: %[[Q:.*]] = "ember.weight"() {name = "emb.weight.int8_rows"} : () -> tensor<100x16xi8>
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "emb.weight.int8_rows_scale"} : () -> tensor<100xf32>
// CHECK: "ember.embedding"(%[[Q]], %arg0, %[[S]]) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x16xi8>, tensor<4x7xi64>, tensor<100xf32>) -> tensor<4x7x16xf32>
// STATIC-LABEL: func.func @table
// STATIC: "ember.embedding"(%{{.*}}, %arg0, %{{.*}}) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<100x16xi8>
// TABLES-KEPT-LABEL: func.func @table
// TABLES-KEPT: "ember.embedding"(%{{.*}}, %arg0) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>
func.func @table(%i: tensor<4x7xi64>) -> tensor<4x7x16xf32> {
  %t = "ember.weight"() {name = "emb.weight"} : () -> tensor<100x16xf32>
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>, tensor<4x7xi64>) -> tensor<4x7x16xf32>
  return %0 : tensor<4x7x16xf32>
}

// -----

// Left alone: a run-time table, a mutable one, an f16 one.
// CHECK-LABEL: func.func @tables_not_quantized
// CHECK-NOT: int8
// CHECK: return
func.func @tables_not_quantized(%t: tensor<100x16xf32>, %i: tensor<4xi64>) -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf16>) {
  %0 = "ember.embedding"(%t, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>, tensor<4xi64>) -> tensor<4x16xf32>
  %m = "ember.weight"() {name = "m.weight", mutable = true} : () -> tensor<100x16xf32>
  %1 = "ember.embedding"(%m, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf32>, tensor<4xi64>) -> tensor<4x16xf32>
  %h = "ember.weight"() {name = "h.weight"} : () -> tensor<100x16xf16>
  %2 = "ember.embedding"(%h, %i) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<100x16xf16>, tensor<4xi64>) -> tensor<4x16xf16>
  return %0, %1, %2 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf16>
}
