// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-winograd{blocked=false})' | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-winograd{min-blocks=2 block-bytes=2560})' | filecheck %s --check-prefix=BLOCK
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-winograd{enabled=false})' | filecheck %s --check-prefix=OFF
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-winograd{min-channels=32})' | filecheck %s --check-prefix=MINC
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-winograd{tile=4 blocked=false})' | filecheck %s --check-prefix=TILE4

// ember-conv-winograd: a 3x3 stride-1 NHWC conv as F(2x2, 3x3): pad, one generic reading each
// 4x4 input tile (16 views of the input with stride 2, pixel (i, j) of every tile, so all its
// maps are identities) and writing its 16 transformed copies, 16 GEMMs with the
// compile-time transformed filter (`<filter>.winograd2.<i>`, [C, F]), and one generic over the
// tiles [N, TH, TW, F] that applies the output transform to each tile's products once and the
// conv's bias, activation and residual to its 2 x 2 outputs, each written into a strided view
// of the output seen as [N, TH, 2, TW, 2, F] (output (a, b) of every tile; the residual is read
// through the same views) and inserted back; a collapse_shape gives [N, OH, OW, F]. Dynamic
// batch.
// CHECK-DAG: #[[ID4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[BIAS:.*]] = affine_map<(d0, d1, d2, d3) -> (d3)>
// CHECK-LABEL: func.func @block
// CHECK: "ember.weight"() {name = "c.weight.winograd2.0"} : () -> tensor<16x4xf32>
// CHECK: %[[P:.*]] = tensor.pad %arg0 low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK: %[[R:.*]] = tensor.expand_shape %arg1 {{\[\[}}0], [1, 2], [3, 4], [5]] output_shape [%{{.*}}, 3, 2, 4, 2, 4]
// CHECK: %[[T00:.*]] = tensor.extract_slice %[[P]][0, 0, 0, 0] [%{{.*}}, 3, 4, 16] [1, 2, 2, 1] : tensor<?x8x10x16xf32> to tensor<?x3x4x16xf32>
// CHECK-COUNT-14: tensor.extract_slice %[[P]]
// CHECK: %[[T33:.*]] = tensor.extract_slice %[[P]][0, 3, 3, 0] [%{{.*}}, 3, 4, 16] [1, 2, 2, 1]
// CHECK: %[[V:.*]]:16 = linalg.generic {indexing_maps = [#[[ID4]], {{.*}}]{{.*}} ins(%[[T00]], {{.*}}, %[[T33]] : {{.*}}) outs({{.*}}) {
// CHECK: linalg.yield {{.*}} : f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32{{$}}
// CHECK: "ember.gemm"(%[[V]]#0, %{{.*}}) {activation = "none", {{.*}}} : (tensor<?x3x4x16xf32>, tensor<16x4xf32>) -> tensor<?x3x4x4xf32>
// CHECK-COUNT-15: "ember.gemm"
// CHECK: %[[R00:.*]] = tensor.extract_slice %[[R]][0, 0, 0, 0, 0, 0] [%{{.*}}, 3, 1, 4, 1, 4] [1, 1, 1, 1, 1, 1] : tensor<?x3x2x4x2x4xf32> to tensor<?x3x4x4xf32>
// CHECK: %[[R11:.*]] = tensor.extract_slice %[[R]][0, 0, 1, 0, 1, 0]
// CHECK: %[[INIT:.*]] = tensor.extract_slice %[[E:.*]][0, 0, 0, 0, 0, 0] [%{{.*}}, 3, 1, 4, 1, 4] [1, 1, 1, 1, 1, 1] : tensor<?x3x2x4x2x4xf32> to tensor<?x3x4x4xf32>
// CHECK: %[[Y:.*]]:4 = linalg.generic {indexing_maps = [#[[ID4]], {{.*}}, #[[BIAS]], {{.*}}]{{.*}} ins({{.*}}, %[[R00]], {{.*}}, %[[R11]] : {{.*}}) outs(%[[INIT]], {{.*}} : tensor<?x3x4x4xf32>, tensor<?x3x4x4xf32>, tensor<?x3x4x4xf32>, tensor<?x3x4x4xf32>)
// CHECK-COUNT-4: arith.cmpf olt
// CHECK: linalg.yield {{.*}} : f32, f32, f32, f32{{$}}
// CHECK: %[[I0:.*]] = tensor.insert_slice %[[Y]]#0 into %[[E]][0, 0, 0, 0, 0, 0] [%{{.*}}, 3, 1, 4, 1, 4] [1, 1, 1, 1, 1, 1] : tensor<?x3x4x4xf32> into tensor<?x3x2x4x2x4xf32>
// CHECK-COUNT-2: tensor.insert_slice
// CHECK: %[[I3:.*]] = tensor.insert_slice %[[Y]]#3 into %{{.*}}[0, 0, 1, 0, 1, 0]
// CHECK: %[[OUT:.*]] = tensor.collapse_shape %[[I3]] {{\[\[}}0], [1, 2], [3, 4], [5]] : tensor<?x3x2x4x2x4xf32> into tensor<?x6x8x4xf32>
// CHECK: return %[[OUT]] : tensor<?x6x8x4xf32>
// Blocked, with at most 2560 bytes of transformed data per block (here one tile row of one
// image) and at least 2 blocks: an scf.forall over (image, tile row) whose body pads its
// window of the input (the rows it covers, clamped to the image, padded to 4 rows and 10
// columns; the whole input is never padded), transforms, multiplies and transforms back into
// its slice of the output view (the output transform's init is that slice, so it is written
// in place); the residual is sliced the same way.
// BLOCK-LABEL: func.func @block
// BLOCK: %[[N:.*]] = tensor.dim %arg0, %c0
// BLOCK-NOT: tensor.pad
// BLOCK: %[[INIT:.*]] = tensor.empty(%{{.*}}) : tensor<?x3x2x4x2x4xf32>
// BLOCK: %[[Y:.*]] = scf.forall (%[[B:.*]], %[[R:.*]]) in (%[[N]], 3) shared_outs(%[[O:.*]] = %[[INIT]])
// BLOCK: %[[ROW:.*]] = arith.muli %[[R]], %c2
// BLOCK: %[[START:.*]] = arith.subi %[[ROW]], %c1
// BLOCK: %[[END:.*]] = arith.addi %[[START]], %c4
// BLOCK: %[[LO:.*]] = arith.maxsi %[[START]], %c0
// BLOCK: %[[HI:.*]] = arith.minsi %[[END]], %c6
// BLOCK: %[[ROWS:.*]] = arith.subi %[[HI]], %[[LO]]
// BLOCK: %[[IN:.*]] = tensor.extract_slice %arg0[%[[B]], %[[LO]], 0, 0] [1, %[[ROWS]], 8, 16] [1, 1, 1, 1]
// BLOCK: %[[W:.*]] = tensor.pad %[[IN]] low[0, %{{.*}}, 1, 0] high[0, %{{.*}}, 1, 0]
// BLOCK: tensor<1x?x8x16xf32> to tensor<1x4x10x16xf32>
// BLOCK: %[[RS:.*]] = tensor.extract_slice %arg1[%[[B]], %[[ROW]], 0, 0] [1, 2, 8, 4] [1, 1, 1, 1]
// BLOCK: %[[RV:.*]] = tensor.expand_shape %[[RS]] {{.*}} into tensor<1x1x2x4x2x4xf32>
// BLOCK: %[[DEST:.*]] = tensor.extract_slice %[[O]][%[[B]], %[[R]], 0, 0, 0, 0] [1, 1, 2, 4, 2, 4]
// BLOCK: tensor.extract_slice %[[W]][0, 0, 0, 0] [1, 1, 4, 16] [1, 2, 2, 1]
// BLOCK: "ember.gemm"(%{{.*}}, %{{.*}}) {{.*}} : (tensor<1x1x4x16xf32>, tensor<16x4xf32>) -> tensor<1x1x4x4xf32>
// BLOCK-COUNT-15: "ember.gemm"
// BLOCK: tensor.extract_slice %[[RV]][0, 0, 0, 0, 0, 0] [1, 1, 1, 4, 1, 4]
// BLOCK: tensor.extract_slice %[[DEST]][0, 0, 0, 0, 0, 0] [1, 1, 1, 4, 1, 4]
// BLOCK: linalg.generic
// BLOCK: tensor.insert_slice %{{.*}}#0 into %[[DEST]]
// BLOCK-COUNT-2: tensor.insert_slice
// BLOCK: %[[PART:.*]] = tensor.insert_slice %{{.*}}#3 into
// BLOCK: scf.forall.in_parallel
// BLOCK-NEXT: tensor.parallel_insert_slice %[[PART]] into %[[O]][%[[B]], %[[R]], 0, 0, 0, 0] [1, 1, 2, 4, 2, 4]
// BLOCK: tensor.collapse_shape %[[Y]] {{.*}} into tensor<?x6x8x4xf32>
// OFF-LABEL: func.func @block
// OFF: "ember.conv2d"
// MINC-LABEL: func.func @block
// MINC: "ember.conv2d"
func.func @block(%x: tensor<?x6x8x16xf32>, %r: tensor<?x6x8x4xf32>) -> tensor<?x6x8x4xf32> {
  %w = "ember.weight"() {name = "c.weight"} : () -> tensor<3x3x16x4xf32>
  %b = "ember.weight"() {name = "c.bias"} : () -> tensor<4xf32>
  %0 = "ember.conv2d"(%x, %w, %b, %r) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<?x6x8x16xf32>, tensor<3x3x16x4xf32>, tensor<4xf32>, tensor<?x6x8x4xf32>) -> tensor<?x6x8x4xf32>
  return %0 : tensor<?x6x8x4xf32>
}

// -----

// Left alone: stride 2, an odd output size (7 rows), fewer than 16 input channels, a 5x5
// window, a filter that is not a weight, NCHW.
// CHECK-LABEL: func.func @not_rewritten
// CHECK-NOT: ember.gemm
// CHECK-COUNT-6: "ember.conv2d"
// CHECK-NOT: ember.gemm
func.func @not_rewritten(%x: tensor<1x8x8x16xf32>, %x7: tensor<1x7x8x16xf32>, %x8: tensor<1x8x8x8xf32>, %wf: tensor<3x3x16x4xf32>, %xc: tensor<1x16x8x8xf32>) -> (tensor<1x4x4x4xf32>, tensor<1x7x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x4x8x8xf32>) {
  %w = "ember.weight"() {name = "w"} : () -> tensor<3x3x16x4xf32>
  %w8 = "ember.weight"() {name = "w8"} : () -> tensor<3x3x8x4xf32>
  %w5 = "ember.weight"() {name = "w5"} : () -> tensor<5x5x16x4xf32>
  %wc = "ember.weight"() {name = "wc"} : () -> tensor<4x16x3x3xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x16xf32>, tensor<3x3x16x4xf32>) -> tensor<1x4x4x4xf32>
  %1 = "ember.conv2d"(%x7, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x7x8x16xf32>, tensor<3x3x16x4xf32>) -> tensor<1x7x8x4xf32>
  %2 = "ember.conv2d"(%x8, %w8) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<3x3x8x4xf32>) -> tensor<1x8x8x4xf32>
  %3 = "ember.conv2d"(%x, %w5) {strides = array<i64: 1, 1>, padding = array<i64: 2, 2>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x16xf32>, tensor<5x5x16x4xf32>) -> tensor<1x8x8x4xf32>
  %4 = "ember.conv2d"(%x, %wf) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x16xf32>, tensor<3x3x16x4xf32>) -> tensor<1x8x8x4xf32>
  %5 = "ember.conv2d"(%xc, %wc) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x16x8x8xf32>, tensor<4x16x3x3xf32>) -> tensor<1x4x8x8xf32>
  return %0, %1, %2, %3, %4, %5 : tensor<1x4x4x4xf32>, tensor<1x7x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x8x8x4xf32>, tensor<1x4x8x8xf32>
}

// -----

// An 8x8 output with tile=4: F(4x4, 3x3): 6x6 input tiles read at stride 4, 36 GEMMs, the
// output seen as [N, 2, 4, 2, 4, F]. By default, F(2x2): 16 GEMMs.
// TILE4-LABEL: func.func @f4
// TILE4: "ember.weight"() {name = "w.winograd4.0"} : () -> tensor<16x8xf32>
// TILE4: tensor.extract_slice %{{.*}}[0, 5, 5, 0] [2, 2, 2, 16] [1, 4, 4, 1]
// TILE4: linalg.generic
// TILE4-COUNT-36: "ember.gemm"
// TILE4-NOT: "ember.gemm"
// TILE4: tensor.collapse_shape {{.*}} : tensor<2x2x4x2x4x8xf32> into tensor<2x8x8x8xf32>
// CHECK-LABEL: func.func @f4
// CHECK: "ember.weight"() {name = "w.winograd2.0"}
// CHECK-COUNT-16: "ember.gemm"
// CHECK-NOT: "ember.gemm"
func.func @f4(%x: tensor<2x8x8x16xf32>) -> tensor<2x8x8x8xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<3x3x16x8xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<2x8x8x16xf32>, tensor<3x3x16x8xf32>) -> tensor<2x8x8x8xf32>
  return %0 : tensor<2x8x8x8xf32>
}
