// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-cpu-contractions{panel=32})' | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:vector_bits=512 --ember-cpu-contractions=panel=32 --stages=bufferize,kernels,loops,llvm | filecheck %s --check-prefix=LLVM

// ember-cpu-contractions sends matmul-shaped linalg.generic contractions whose rhs is computed
// at run time (attention's Q K^T and P V) to the GEMM micro-kernel: a call of a kernel function
// (batched, rhs_packed = false) instead of the scalar contraction loops.

// Q K^T: B indexed (b, n, k) is transposed to (b, k, n) once, then one batched kernel call
// whose destination is the fill's (the kernel writes every element).
// CHECK-LABEL: func.func @q_kt
// CHECK: %[[INIT:.*]] = tensor.empty() : tensor<4x16x24xf32>
// CHECK: %[[KT:.*]] = linalg.transpose ins(%arg1 : tensor<4x24x8xf32>) outs(%{{.*}} : tensor<4x8x24xf32>) permutation = [0, 2, 1]
// CHECK: %[[S:.*]] = call @ember_gemm_0(%arg0, %[[KT]], %[[INIT]]) : (tensor<4x16x8xf32>, tensor<4x8x24xf32>, tensor<4x16x24xf32>) -> tensor<4x16x24xf32>
// CHECK-NOT: linalg.fill
// CHECK: return %[[S]]
// CHECK: func.func private @ember_gemm_0({{.*}}ember.gemm_kernel = {activation = "none", batch = 4 : i64, bias = false, k = 8 : i64, m = 16 : i64, n = 24 : i64, nr = 32 : i64, residual = false, rhs_packed = false}
// The kernel's own linalg reference body is left alone (no recursive call).
// CHECK-NOT: call @ember_gemm_0
// CHECK: linalg.generic
// After the CPU pipeline: a parallel loop over the batch entries, each a task whose register
// tiles load the row-major B with a mask past column N = 24.
// LLVM-LABEL: llvm.func @ember_gemm_0_task(
// LLVM: llvm.intr.masked.load
// LLVM: llvm.intr.fmuladd
#a = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#bt = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @q_kt(%q: tensor<4x16x8xf32>, %k: tensor<4x24x8xf32>) -> tensor<4x16x24xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16x24xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16x24xf32>) -> tensor<4x16x24xf32>
  %s = linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<4x16x8xf32>, tensor<4x24x8xf32>) outs(%f : tensor<4x16x24xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<4x16x24xf32>
  return %s : tensor<4x16x24xf32>
}

// -----

// P V with the reduction dim in the middle of the iteration space and a dynamic batch and M:
// B is already (b, k, n), so no transpose; the spec records batch = -1 and m = -1.
// CHECK-LABEL: func.func @p_v
// CHECK-NOT: linalg.transpose
// CHECK: call @ember_gemm_0(%arg0, %arg1, %{{.*}}) : (tensor<?x?x12xf32>, tensor<?x12x40xf32>, tensor<?x?x40xf32>) -> tensor<?x?x40xf32>
// CHECK: ember.gemm_kernel = {activation = "none", batch = -1 : i64, bias = false, k = 12 : i64, m = -1 : i64, n = 40 : i64, nr = 32 : i64, residual = false, rhs_packed = false}
#a = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
#b = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
func.func @p_v(%p: tensor<?x?x12xf32>, %v: tensor<?x12x40xf32>) -> tensor<?x?x40xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %nb = tensor.dim %p, %c0 : tensor<?x?x12xf32>
  %m = tensor.dim %p, %c1 : tensor<?x?x12xf32>
  %e = tensor.empty(%nb, %m) : tensor<?x?x40xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x40xf32>) -> tensor<?x?x40xf32>
  %o = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%p, %v : tensor<?x?x12xf32>, tensor<?x12x40xf32>) outs(%f : tensor<?x?x40xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %q = arith.mulf %y, %x : f32
    %r = arith.addf %q, %acc : f32
    linalg.yield %r : f32
  } -> tensor<?x?x40xf32>
  return %o : tensor<?x?x40xf32>
}

// -----

// Attention's batch and heads (two batch dims) are collapsed into the kernel's one batch dim
// and the result expanded back; a decode step's query (M = 2 <= 4 rows) against 40 keys is
// computed transposed, C^T = K Q^T: K [b, n, k] is the kernel's A, read in place (no copy of
// the keys), only Q and the 40 x 2 result are transposed, and the tile is one vector wide.
// CHECK-LABEL: func.func @decode_q_kt
// CHECK: %[[Q:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2], [3]] : tensor<1x4x2x8xf32> into tensor<4x2x8xf32>
// CHECK: %[[K:.*]] = tensor.collapse_shape %arg1 {{\[\[}}0, 1], [2], [3]] : tensor<1x4x40x8xf32> into tensor<4x40x8xf32>
// CHECK: %[[QT:.*]] = linalg.transpose ins(%[[Q]] : tensor<4x2x8xf32>) outs(%{{.*}} : tensor<4x8x2xf32>) permutation = [0, 2, 1]
// CHECK: %[[ST:.*]] = call @ember_gemm_0(%[[K]], %[[QT]], %{{.*}}) : (tensor<4x40x8xf32>, tensor<4x8x2xf32>, tensor<4x40x2xf32>) -> tensor<4x40x2xf32>
// CHECK: %[[S:.*]] = linalg.transpose ins(%[[ST]] : tensor<4x40x2xf32>) outs(%{{.*}} : tensor<4x2x40xf32>) permutation = [0, 2, 1]
// CHECK: %[[R:.*]] = tensor.expand_shape %[[S]] {{\[\[}}0, 1], [2], [3]] output_shape [1, 4, 2, 40] : tensor<4x2x40xf32> into tensor<1x4x2x40xf32>
// CHECK: return %[[R]]
// CHECK: ember.gemm_kernel = {activation = "none", batch = 4 : i64, bias = false, k = 8 : i64, m = 40 : i64, n = 2 : i64, nr = 16 : i64, residual = false, rhs_packed = false}
#a = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
#bt = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#c = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
func.func @decode_q_kt(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x40x8xf32>) -> tensor<1x4x2x40xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x2x40xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4x2x40xf32>) -> tensor<1x4x2x40xf32>
  %s = linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<1x4x2x8xf32>, tensor<1x4x40x8xf32>) outs(%f : tensor<1x4x2x40xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x4x2x40xf32>
  return %s : tensor<1x4x2x40xf32>
}

// -----

// A growing cache: the keys' count N is dynamic, which the transposed product takes as the
// kernel's (dynamic) M.
// CHECK-LABEL: func.func @decode_dynamic_keys
// CHECK: call @ember_gemm_0(%arg1, %{{.*}}, %{{.*}}) : (tensor<4x?x8xf32>, tensor<4x8x1xf32>, tensor<4x?x1xf32>) -> tensor<4x?x1xf32>
// CHECK: ember.gemm_kernel = {activation = "none", batch = 4 : i64, bias = false, k = 8 : i64, m = -1 : i64, n = 1 : i64, nr = 16 : i64, residual = false, rhs_packed = false}
#a = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#bt = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @decode_dynamic_keys(%q: tensor<4x1x8xf32>, %k: tensor<4x?x8xf32>) -> tensor<4x1x?xf32> {
  %zero = arith.constant 0.0 : f32
  %c1 = arith.constant 1 : index
  %n = tensor.dim %k, %c1 : tensor<4x?x8xf32>
  %e = tensor.empty(%n) : tensor<4x1x?xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x1x?xf32>) -> tensor<4x1x?xf32>
  %s = linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<4x1x8xf32>, tensor<4x?x8xf32>) outs(%f : tensor<4x1x?xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<4x1x?xf32>
  return %s : tensor<4x1x?xf32>
}

// -----

// Dynamic batch and keys, computed transposed: the expansion reads the batch from Q and the
// keys' count from the (transposed back) result.
// CHECK-LABEL: func.func @decode_dynamic_batch_and_keys
// CHECK: %[[ST:.*]] = call @ember_gemm_0({{.*}}) : (tensor<?x?x8xf32>, tensor<?x8x1xf32>, tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
// CHECK: %[[S:.*]] = linalg.transpose ins(%[[ST]] : tensor<?x?x1xf32>)
// CHECK: %[[B:.*]] = tensor.dim %arg0, %c0 : tensor<?x4x1x8xf32>
// CHECK: %[[N:.*]] = tensor.dim %[[S]], %c2 : tensor<?x1x?xf32>
// CHECK: tensor.expand_shape %[[S]] {{\[\[}}0, 1], [2], [3]] output_shape [%[[B]], 4, 1, %[[N]]] : tensor<?x1x?xf32> into tensor<?x4x1x?xf32>
#a = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
#bt = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#c = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
func.func @decode_dynamic_batch_and_keys(%q: tensor<?x4x1x8xf32>, %k: tensor<?x4x?x8xf32>) -> tensor<?x4x1x?xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %nb = tensor.dim %q, %c0 : tensor<?x4x1x8xf32>
  %n = tensor.dim %k, %c2 : tensor<?x4x?x8xf32>
  %e = tensor.empty(%nb, %n) : tensor<?x4x1x?xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x4x1x?xf32>) -> tensor<?x4x1x?xf32>
  %s = linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<?x4x1x8xf32>, tensor<?x4x?x8xf32>) outs(%f : tensor<?x4x1x?xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<?x4x1x?xf32>
  return %s : tensor<?x4x1x?xf32>
}

// -----

// Dynamic batch dims collapse into a dynamic batch, read back from A for the expansion; with
// more query rows than 4 the keys are transposed as before.
// CHECK-LABEL: func.func @prefill_q_kt
// CHECK: tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2], [3]] : tensor<?x4x6x8xf32> into tensor<?x6x8xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<?x40x8xf32>)
// CHECK: call @ember_gemm_0({{.*}}) : (tensor<?x6x8xf32>, tensor<?x8x40xf32>, tensor<?x6x40xf32>) -> tensor<?x6x40xf32>
// CHECK: %[[B:.*]] = tensor.dim %arg0, %c0
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2], [3]] output_shape [%[[B]], 4, 6, 40] : tensor<?x6x40xf32> into tensor<?x4x6x40xf32>
// CHECK: ember.gemm_kernel = {activation = "none", batch = -1 : i64, bias = false, k = 8 : i64, m = 6 : i64, n = 40 : i64, nr = 32 : i64, residual = false, rhs_packed = false}
#a = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
#bt = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#c = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
func.func @prefill_q_kt(%q: tensor<?x4x6x8xf32>, %k: tensor<?x4x40x8xf32>) -> tensor<?x4x6x40xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %nb = tensor.dim %q, %c0 : tensor<?x4x6x8xf32>
  %e = tensor.empty(%nb) : tensor<?x4x6x40xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x4x6x40xf32>) -> tensor<?x4x6x40xf32>
  %s = linalg.generic {indexing_maps = [#a, #bt, #c], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<?x4x6x8xf32>, tensor<?x4x40x8xf32>) outs(%f : tensor<?x4x6x40xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<?x4x6x40xf32>
  return %s : tensor<?x4x6x40xf32>
}

// -----

// Left alone: an accumulator that is not zero-filled, a max-reduction, A not contiguous in k
// (its map is (b, k, m)), and f64.
// CHECK-LABEL: func.func @not_rewritten
// CHECK-NOT: call @ember_gemm
// CHECK-COUNT-4: linalg.generic
// CHECK-NOT: call @ember_gemm
#a = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#at = affine_map<(d0, d1, d2, d3) -> (d0, d3, d1)>
#b = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @not_rewritten(%x: tensor<2x4x8xf32>, %y: tensor<2x8x4xf32>, %acc: tensor<2x4x4xf32>, %xt: tensor<2x8x4xf32>, %xd: tensor<2x4x8xf64>, %yd: tensor<2x8x4xf64>) -> (tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf64>) {
  %0 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %y : tensor<2x4x8xf32>, tensor<2x8x4xf32>) outs(%acc : tensor<2x4x4xf32>) {
  ^bb0(%u: f32, %v: f32, %w: f32):
    %p = arith.mulf %u, %v : f32
    %r = arith.addf %w, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x4x4xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %1 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %y : tensor<2x4x8xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x4x4xf32>) {
  ^bb0(%u: f32, %v: f32, %w: f32):
    %p = arith.mulf %u, %v : f32
    %r = arith.maximumf %w, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x4x4xf32>
  %2 = linalg.generic {indexing_maps = [#at, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%xt, %y : tensor<2x8x4xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x4x4xf32>) {
  ^bb0(%u: f32, %v: f32, %w: f32):
    %p = arith.mulf %u, %v : f32
    %r = arith.addf %w, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x4x4xf32>
  %zd = arith.constant 0.0 : f64
  %ed = tensor.empty() : tensor<2x4x4xf64>
  %fd = linalg.fill ins(%zd : f64) outs(%ed : tensor<2x4x4xf64>) -> tensor<2x4x4xf64>
  %3 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%xd, %yd : tensor<2x4x8xf64>, tensor<2x8x4xf64>) outs(%fd : tensor<2x4x4xf64>) {
  ^bb0(%u: f64, %v: f64, %w: f64):
    %p = arith.mulf %u, %v : f64
    %r = arith.addf %w, %p : f64
    linalg.yield %r : f64
  } -> tensor<2x4x4xf64>
  return %0, %1, %2, %3 : tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf64>
}

// -----

// A 2-D linalg.matmul of two run-time tensors: an unbatched kernel call.
// CHECK-LABEL: func.func @matmul
// CHECK: call @ember_gemm_0(%arg0, %arg1, %{{.*}}) : (tensor<?x20xf32>, tensor<20x9xf32>, tensor<?x9xf32>) -> tensor<?x9xf32>
// CHECK: ember.gemm_kernel = {activation = "none", bias = false, k = 20 : i64, m = -1 : i64, n = 9 : i64, nr = 32 : i64, residual = false, rhs_packed = false}
func.func @matmul(%a: tensor<?x20xf32>, %b: tensor<20x9xf32>) -> tensor<?x9xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %m = tensor.dim %a, %c0 : tensor<?x20xf32>
  %e = tensor.empty(%m) : tensor<?x9xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x9xf32>) -> tensor<?x9xf32>
  %p = linalg.matmul ins(%a, %b : tensor<?x20xf32>, tensor<20x9xf32>) outs(%f : tensor<?x9xf32>) -> tensor<?x9xf32>
  return %p : tensor<?x9xf32>
}
