// RUN: ember-opt %s --split-input-file --ember-lower-to-linalg | filecheck %s
// RUN: ember-opt %s --split-input-file --ember-lower-to-linalg | filecheck %s --check-prefix=NOEMBER

// ember-lower-to-linalg turns each ember op (all but ember.weight) into linalg / tensor /
// arith / math on tensors. Dynamic result dims are read from the operands with tensor.dim.
// NOEMBER-NOT: "ember.{{(gemm|layer_norm|softmax|unary|binary|transpose|reshape)}}"

// A plain 2-D gemm is a zero-filled linalg.matmul.
// CHECK-LABEL: func.func @gemm_plain
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[EMPTY:.*]] = tensor.empty() : tensor<8x32xf32>
// CHECK: %[[ACC:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[EMPTY]] : tensor<8x32xf32>)
// CHECK: %[[MM:.*]] = linalg.matmul ins(%arg0, %arg1 : tensor<8x16xf32>, tensor<16x32xf32>) outs(%[[ACC]] : tensor<8x32xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[MM]]
func.func @gemm_plain(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// The epilogue is one elementwise linalg.generic after the matmul, in the order
// residual + act(x @ w + bias); the bias is read along the last dim, M comes from tensor.dim.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[COL:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @gemm_epilogue
// CHECK: %[[M:.*]] = tensor.dim %arg0, %{{.*}} : tensor<?x16xf32>
// CHECK: tensor.empty(%[[M]]) : tensor<?x32xf32>
// CHECK: %[[MM:.*]] = linalg.matmul ins(%arg0, %arg1 : tensor<?x16xf32>, tensor<16x32xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[COL]], #[[ID]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[MM]], %arg2, %arg3 : tensor<?x32xf32>, tensor<32xf32>, tensor<?x32xf32>)
// CHECK-NEXT: ^bb0(%[[Y:.*]]: f32, %[[B:.*]]: f32, %[[R:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[BIASED:.*]] = arith.addf %[[Y]], %[[B]] : f32
// CHECK-NEXT: %[[NEG:.*]] = arith.cmpf olt, %[[BIASED]], %{{.*}} : f32
// CHECK-NEXT: %[[ACT:.*]] = arith.select %[[NEG]], %{{.*}}, %[[BIASED]] : f32
// CHECK-NEXT: %[[OUT:.*]] = arith.addf %[[ACT]], %[[R]] : f32
// CHECK-NEXT: linalg.yield %[[OUT]] : f32
func.func @gemm_epilogue(%a: tensor<?x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>, %r: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %0 = "ember.gemm"(%a, %w, %b, %r) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}

// -----

// GELU uses erf's polynomial (A&S 7.1.28: a power and one division, no exp) on |x|, all in
// f32, as (x + |x| erf(|x| / sqrt 2)) / 2: no sign restored.
// CHECK-LABEL: func.func @gemm_gelu
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: %[[ABS:.*]] = math.absf %[[X:[a-z0-9_]+]]
// CHECK-NOT: math.exp
// CHECK: %[[R:.*]] = arith.divf
// CHECK: %[[ERF:.*]] = arith.subf %{{.*}}, %[[R]]
// CHECK: %[[M:.*]] = arith.mulf %[[ABS]], %[[ERF]]
// CHECK: %[[SUM:.*]] = arith.addf %[[X]], %[[M]]
// CHECK: arith.mulf %[[SUM]], %{{.*}}
// CHECK-NOT: math.copysign
// CHECK-NOT: f64
// CHECK: linalg.yield
func.func @gemm_gelu(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w, %b) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// A batched gemm with a shared rhs is a generic contraction over (b, m, n, k).
// CHECK-DAG: #[[LHS:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[RHS:.*]] = affine_map<(d0, d1, d2, d3) -> (d3, d2)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @gemm_batched
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK: arith.mulf
// CHECK-NEXT: arith.addf
// CHECK-NOT: linalg.matmul
func.func @gemm_batched(%a: tensor<4x8x16xf32>, %w: tensor<16x32xf32>) -> tensor<4x8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
  return %0 : tensor<4x8x32xf32>
}

// -----

// A product with a run-time rhs whose last two dims are swapped (attention's K^T) reads K
// through the transpose: the rhs map is (b, n, k) and no transpose is materialized. A weight
// seen through a transpose, or a transpose of other dims, is left as it is.
// CHECK-DAG: #[[LHS:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[KT:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-LABEL: func.func @gemm_rhs_transposed
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[KT]], #{{.*}}]{{.*}} ins(%arg0, %arg1 : tensor<1x4x2x16xf32>, tensor<1x4x9x16xf32>)
func.func @gemm_rhs_transposed(%q: tensor<1x4x2x16xf32>, %k: tensor<1x4x9x16xf32>) -> tensor<1x4x2x9xf32> {
  %kt = "ember.transpose"(%k) {permutation = array<i64: 0, 1, 3, 2>} : (tensor<1x4x9x16xf32>) -> tensor<1x4x16x9xf32>
  %0 = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x4x2x16xf32>, tensor<1x4x16x9xf32>) -> tensor<1x4x2x9xf32>
  return %0 : tensor<1x4x2x9xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_rhs_other_transpose
// CHECK: linalg.transpose
// CHECK-SAME: permutation = [1, 0, 2]
// CHECK: linalg.generic
func.func @gemm_rhs_other_transpose(%q: tensor<4x2x16xf32>, %k: tensor<16x4x9xf32>) -> tensor<4x2x9xf32> {
  %kt = "ember.transpose"(%k) {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x9xf32>) -> tensor<4x16x9xf32>
  %0 = "ember.gemm"(%q, %kt) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x2x16xf32>, tensor<4x16x9xf32>) -> tensor<4x2x9xf32>
  return %0 : tensor<4x2x9xf32>
}

// -----

// layer_norm: a sum reduction, the mean, a reduction of squared deviations, rsqrt(var + eps),
// then one parallel generic that normalizes and applies weight and bias.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[COL:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @layer_norm
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]]], iterator_types = ["parallel", "reduction"]} ins(%arg0 : tensor<?x64xf32>)
// CHECK: %[[MEAN:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<?xf32>)
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: %[[SQ:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]]], iterator_types = ["parallel", "reduction"]} ins(%arg0, %[[MEAN]] : tensor<?x64xf32>, tensor<?xf32>)
// CHECK: arith.subf
// CHECK: %[[RSTD:.*]] = linalg.generic {{.*}} ins(%[[SQ]] : tensor<?xf32>)
// CHECK: math.rsqrt
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]], #[[COL]], #[[COL]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%arg0, %[[MEAN]], %[[RSTD]], %arg1, %arg2 : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>, tensor<64xf32>, tensor<64xf32>)
// CHECK-NOT: f64
// CHECK: return
func.func @layer_norm(%x: tensor<?x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<?x64xf32> {
  %0 = "ember.layer_norm"(%x, %g, %b) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// -----

// Without weight and bias the final generic reads only x, the mean and rstd.
// CHECK-LABEL: func.func @layer_norm_plain
// CHECK: linalg.generic {{.*}} ins(%arg0, %{{.*}}, %{{.*}} : tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>) outs(%{{.*}} : tensor<8x64xf32>)
func.func @layer_norm_plain(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %0 = "ember.layer_norm"(%x) {epsilon = 1.0e-5 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

// softmax over a middle axis: a max reduction, a sum of exp(x - max), then exp(x - max) / sum.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[RED:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @softmax
// CHECK: %[[MAX:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[RED]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%arg0 : tensor<2x8x16xf32>) outs(%{{.*}} : tensor<2x16xf32>)
// CHECK: arith.maximumf
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[RED]], #[[RED]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%arg0, %[[MAX]] : tensor<2x8x16xf32>, tensor<2x16xf32>)
// CHECK: math.exp
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[RED]], #[[RED]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0, %[[MAX]], %[[SUM]] : tensor<2x8x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>)
// CHECK: math.exp
// CHECK: arith.divf
func.func @softmax(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = "ember.softmax"(%x) {axis = 1} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %0 : tensor<2x8x16xf32>
}

// -----

// A unary op is one parallel generic; its dynamic dim comes from tensor.dim.
// CHECK-LABEL: func.func @unary_dynamic
// CHECK: %[[C1:.*]] = arith.constant 1 : index
// CHECK: %[[D:.*]] = tensor.dim %arg0, %[[C1]] : tensor<4x?xf32>
// CHECK: %[[E:.*]] = tensor.empty(%[[D]]) : tensor<4x?xf32>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%arg0 : tensor<4x?xf32>) outs(%[[E]] : tensor<4x?xf32>)
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: arith.divf
func.func @unary_dynamic(%x: tensor<4x?xf32>) -> tensor<4x?xf32> {
  %0 = "ember.unary"(%x) {kind = "sigmoid"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  return %0 : tensor<4x?xf32>
}

// -----

// Broadcasting: a stretched dim of 1 is read at index 0, a missing leading dim is dropped.
// CHECK-DAG: #[[A:.*]] = affine_map<(d0, d1, d2) -> (d0, 0, d2)>
// CHECK-DAG: #[[B:.*]] = affine_map<(d0, d1, d2) -> (d1, 0)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @binary_broadcast
// CHECK: %[[D:.*]] = tensor.dim %arg0, %{{.*}} : tensor<?x1x8xf32>
// CHECK: tensor.empty(%[[D]]) : tensor<?x4x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[OUT]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0, %arg1 : tensor<?x1x8xf32>, tensor<4x1xf32>)
// CHECK: arith.mulf
func.func @binary_broadcast(%a: tensor<?x1x8xf32>, %b: tensor<4x1xf32>) -> tensor<?x4x8xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "mul"} : (tensor<?x1x8xf32>, tensor<4x1xf32>) -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Each binary kind maps to its arith / math op.
// CHECK-LABEL: func.func @binary_kinds
// CHECK: arith.subf
// CHECK: arith.divf
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: math.powf
func.func @binary_kinds(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.binary"(%a, %b) {kind = "sub"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = "ember.binary"(%0, %b) {kind = "div"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = "ember.binary"(%1, %b) {kind = "max"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = "ember.binary"(%2, %b) {kind = "min"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = "ember.binary"(%3, %b) {kind = "pow"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %4 : tensor<4xf32>
}

// -----

// transpose -> linalg.transpose; result dim 1 is input dim 0, read with tensor.dim.
// CHECK-LABEL: func.func @transpose
// CHECK: %[[D:.*]] = tensor.dim %arg0, %{{.*}} : tensor<?x16x8xf32>
// CHECK: %[[E:.*]] = tensor.empty(%[[D]]) : tensor<8x?x16xf32>
// CHECK: %[[T:.*]] = linalg.transpose ins(%arg0 : tensor<?x16x8xf32>) outs(%[[E]] : tensor<8x?x16xf32>) permutation = [2, 0, 1]
// CHECK: return %[[T]]
func.func @transpose(%x: tensor<?x16x8xf32>) -> tensor<8x?x16xf32> {
  %0 = "ember.transpose"(%x) {permutation = array<i64: 2, 0, 1>} : (tensor<?x16x8xf32>) -> tensor<8x?x16xf32>
  return %0 : tensor<8x?x16xf32>
}

// -----

// broadcast: a copy that reads index 0 of each repeated dim; a dynamic dim kept from the input
// is read from it.
// CHECK-DAG: #[[SRC:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>
// CHECK-DAG: #[[DST:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @broadcast
// CHECK: %[[N:.*]] = tensor.dim %arg0, %c2
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<2x4x?x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[SRC]], #[[DST]]], {{.*}}} ins(%arg0 : tensor<2x1x?x8xf32>) outs(%[[E]] : tensor<2x4x?x8xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]]
func.func @broadcast(%x: tensor<2x1x?x8xf32>) -> tensor<2x4x?x8xf32> {
  %0 = "ember.broadcast"(%x) : (tensor<2x1x?x8xf32>) -> tensor<2x4x?x8xf32>
  return %0 : tensor<2x4x?x8xf32>
}

// -----

// reshape -> tensor.reshape with a constant shape operand.
// CHECK-LABEL: func.func @reshape
// CHECK: %[[S:.*]] = arith.constant dense<[4, 8, 64]> : tensor<3xindex>
// CHECK: %[[R:.*]] = tensor.reshape %arg0(%[[S]]) : (tensor<4x512xf32>, tensor<3xindex>) -> tensor<4x8x64xf32>
// CHECK: return %[[R]]
func.func @reshape(%x: tensor<4x512xf32>) -> tensor<4x8x64xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x512xf32>) -> tensor<4x8x64xf32>
  return %0 : tensor<4x8x64xf32>
}

// -----

// ember.weight is left for ember-bind-weights; its users are lowered.
// CHECK-LABEL: func.func @weight_stays
// CHECK: %[[W:.*]] = "ember.weight"() {name = "w"} : () -> tensor<4xf32>
// CHECK: linalg.generic {{.*}} ins(%arg0, %[[W]] : tensor<4xf32>, tensor<4xf32>)
func.func @weight_stays(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<4xf32>
  %0 = "ember.binary"(%x, %w) {kind = "add"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A slice whose result type leaves its known size dynamic (torch-mlir types roll's slices so):
// extract_slice states the size, a cast gives the declared type.
// CHECK-LABEL: func.func @slice_declared_dynamic
// CHECK: %[[S:.*]] = tensor.extract_slice %arg0[3, 0] [1, 4] [1, 1] : tensor<4x4xf32> to tensor<1x4xf32>
// CHECK: %[[C:.*]] = tensor.cast %[[S]] : tensor<1x4xf32> to tensor<?x4xf32>
// CHECK: return %[[C]]
func.func @slice_declared_dynamic(%x: tensor<4x4xf32>) -> tensor<?x4xf32> {
  %0 = "ember.slice"(%x) {axis = 0, start = 3, size = 1} : (tensor<4x4xf32>) -> tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}

// -----

// A slice of an empty tensor (a batch of 0; adaptive pooling selects from one): an empty
// tensor of the result's shape, dynamic dims read from the input (extract_slice's verifier
// refuses any offset into a dim of size 0).
// CHECK-LABEL: func.func @slice_of_empty
// CHECK: %[[D:.*]] = tensor.dim %arg0, %c2
// CHECK: %[[E:.*]] = tensor.empty(%[[D]]) : tensor<0x1x?xf32>
// CHECK-NOT: tensor.extract_slice
// CHECK: return %[[E]]
func.func @slice_of_empty(%x: tensor<0x8x?xf32>) -> tensor<0x1x?xf32> {
  %0 = "ember.slice"(%x) {axis = 1, start = 0, size = 1} : (tensor<0x8x?xf32>) -> tensor<0x1x?xf32>
  return %0 : tensor<0x1x?xf32>
}
