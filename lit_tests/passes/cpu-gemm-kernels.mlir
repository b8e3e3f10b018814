// RUN: ember-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ember-cpu-gemm-kernels{lanes=8 mr=2 kc=4 mc=4 unroll=2 chains=4 parallel=false pack-a=true},canonicalize,cse)' | filecheck %s
// RUN: ember-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ember-cpu-gemm-kernels{lanes=8 mr=2 kc=4 mc=4 split-rows=8 pack-a=true},canonicalize,cse)' | filecheck %s --check-prefix=PAR
// RUN: ember-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(ember-cpu-gemm-kernels{lanes=8 mr=2 kc=4 mc=4 pack-a=false parallel=false},canonicalize,cse)' | filecheck %s --check-prefix=NOPACK
// RUN: ember-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{lanes=8 mr=2 parallel=false})' | filecheck %s --check-prefix=INPLACE

// ember-cpu-gemm-kernels replaces the body of each bufferized GEMM kernel function (an
// `ember.gemm_kernel` spec; see ember-lower-to-linalg and pack-weights.mlir) with vector code:
// a task function over rows x panels; per K block (KC) the A block packed into MR-row
// micro-panels; MR x NR register tiles whose accumulators are scf.for iter_args updated by
// vector.fma of a broadcast A element and a panel vector; the epilogue (bias, activation,
// residual) on the accumulators before the only store; masked access in the last panel when
// N is not a multiple of NR; 4/2/1-row tiles for the rows left over. In parallel mode one task
// per OpenMP thread (scf.parallel over a grid read from omp_get_max_threads).

// N = 20 with NR = 16: one full panel, then 4 valid columns in the second (masked).
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: ember.gemm_schedule = {chains = 4 : i64, kc = 4 : i64, lanes = 8 : i64, mc = 4 : i64, mr = 2 : i64, nr = 16 : i64, pack_a = true, parallel = false, split_rows = 64 : i64, unroll = 2 : i64}
// CHECK: %[[M:.*]] = memref.dim %arg0, %c0
// CHECK: call @ember_gemm_0_task(%c0, %[[M]], %c0, %c2, %arg0, %arg1, %arg2, %arg3)
// CHECK-NEXT: return
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: %[[PACKED:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x4x2xf32>
// Two K blocks: pack A's block, then the tiles.
// CHECK: memref.store %{{.*}}, %[[PACKED]]
// The 2 x 16 tile: four vector<8xf32> accumulators, zero at the first K block, else C.
// CHECK: %[[ACC:.*]]:4 = scf.if
// CHECK: vector.load %arg7
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[ACC]]#0, %{{.*}} = %[[ACC]]#1, %{{.*}} = %[[ACC]]#2, %{{.*}} = %[[ACC]]#3) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: vector.load %arg5[{{.*}}] : memref<2x8x16xf32>, vector<8xf32>
// CHECK: vector.load %arg5[{{.*}}] : memref<2x8x16xf32>, vector<8xf32>
// CHECK: memref.load %[[PACKED]]
// CHECK: vector.broadcast %{{.*}} : f32 to vector<8xf32>
// CHECK: vector.fma
// CHECK: vector.fma
// The epilogue only after the last K block: bias add and relu on the accumulators.
// CHECK: scf.if %{{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: vector.load %arg6
// CHECK: arith.addf
// CHECK: arith.cmpf olt
// CHECK: arith.select
// CHECK-COUNT-4: vector.store {{.*}} %arg7
// The leftover row: a 1-row tile.
// CHECK: scf.if
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>)
// The last panel: 4 valid columns, masked.
// CHECK: vector.constant_mask [4] : vector<8xi1>
// CHECK: vector.maskedload %arg6
// CHECK: vector.maskedstore %arg7
// PAR: func.func private @omp_get_max_threads() -> i32
// PAR-LABEL: func.func private @ember_gemm_0(
// PAR: call @omp_get_max_threads()
// PAR: scf.parallel
// PAR: func.call @ember_gemm_0_task(
// PAR: scf.reduce
// PAR-LABEL: func.func private @ember_gemm_0_task(
// PAR: vector.fma
// Without packing, A is read in place. With 8 chains wanted, the 2-row tile (4 accumulators)
// alternates between two sets in the unrolled loop and adds them up after it.
// NOPACK-LABEL: func.func private @ember_gemm_0_task(
// NOPACK-NOT: memref.alloca
// NOPACK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// NOPACK: memref.load %arg4
// NOPACK: vector.fma
// NOPACK: }
// NOPACK-COUNT-4: arith.addf %{{.*}}#{{[0-3]}}, %{{.*}}#{{[4-7]}} : vector<8xf32>
func.func private @ember_gemm_0(%a: memref<?x8xf32>, %b: memref<2x8x16xf32>, %bias: memref<20xf32>, %c: memref<?x20xf32>) attributes {ember.gemm_kernel = {activation = "relu", bias = true, k = 8 : i64, m = -1 : i64, n = 20 : i64, nr = 16 : i64, residual = false}} {
  return
}

// -----

// SiLU and a residual: sigmoid's exp is expanded into a polynomial (no libm call per lane).
// CHECK-LABEL: func.func private @ember_gemm_1_task(
// CHECK-NOT: vector.mask
// CHECK: vector.fma
// CHECK: arith.bitcast %{{.*}} : vector<8xi32> to vector<8xf32>
// CHECK: vector.load %arg6
// CHECK: vector.store
// CHECK-NOT: math.exp
// CHECK: return
func.func private @ember_gemm_1(%a: memref<5x3xf32>, %b: memref<1x3x16xf32>, %r: memref<5x16xf32>, %c: memref<5x16xf32>) attributes {ember.gemm_kernel = {activation = "silu", bias = false, k = 3 : i64, m = 5 : i64, n = 16 : i64, nr = 16 : i64, residual = true}} {
  return
}

// -----

// In destination-passing style the kernel bufferizes in place: it returns nothing and the
// caller's buffer is its `out` argument; then it gets its generated body.
// INPLACE-LABEL: func.func @main
// INPLACE: %[[ALLOC:.*]] = memref.alloc(
// INPLACE: call @ember_gemm_2(%arg0, %arg1, %[[ALLOC]]) : (memref<?x8xf32>, memref<1x8x16xf32>, memref<?x16xf32>) -> ()
// INPLACE: func.func private @ember_gemm_2(
// INPLACE-SAME: ember.gemm_schedule
// INPLACE: call @ember_gemm_2_task
// INPLACE: func.func private @ember_gemm_2_task(
// INPLACE: vector.fma
// INPLACE-NOT: linalg.
#lhs = affine_map<(m, n, k) -> (m, k)>
#panel = affine_map<(m, n, k) -> (n floordiv 16, k, n mod 16)>
#out = affine_map<(m, n, k) -> (m, n)>
module {
  func.func @main(%a: tensor<?x8xf32> {bufferization.writable = false}, %w: tensor<1x8x16xf32> {bufferization.writable = false}) -> tensor<?x16xf32> {
    %c0 = arith.constant 0 : index
    %m = tensor.dim %a, %c0 : tensor<?x8xf32>
    %init = tensor.empty(%m) : tensor<?x16xf32>
    %0 = call @ember_gemm_2(%a, %w, %init) : (tensor<?x8xf32>, tensor<1x8x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    return %0 : tensor<?x16xf32>
  }
  func.func private @ember_gemm_2(%a: tensor<?x8xf32>, %w: tensor<1x8x16xf32>, %init: tensor<?x16xf32>) -> tensor<?x16xf32> attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 8 : i64, m = -1 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
    %zero = arith.constant 0.0 : f32
    %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<?x16xf32>) -> tensor<?x16xf32>
    %0 = linalg.generic {indexing_maps = [#lhs, #panel, #out], iterator_types = ["parallel", "parallel", "reduction"]} ins(%a, %w : tensor<?x8xf32>, tensor<1x8x16xf32>) outs(%acc : tensor<?x16xf32>) {
    ^bb0(%x: f32, %y: f32, %s: f32):
      %p = arith.mulf %x, %y : f32
      %q = arith.addf %s, %p : f32
      linalg.yield %q : f32
    } -> tensor<?x16xf32>
    return %0 : tensor<?x16xf32>
  }
}

// -----

// A kernel that still returns its result (not bufferized in place) is an error.
// expected-error @+1 {{kernel @ember_gemm_3: kernel function still returns a value: bufferization did not write its result in place of the `out` argument}}
func.func private @ember_gemm_3(%a: memref<4x8xf32>, %b: memref<1x8x16xf32>, %c: memref<4x16xf32>) -> memref<4x16xf32> attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
  %copy = memref.alloc() : memref<4x16xf32>
  return %copy : memref<4x16xf32>
}

// -----

// Arguments must match the spec: here the bias the spec announces is missing.
// expected-error @+1 {{kernel @ember_gemm_4: kernel function has 3 arguments, its spec expects 4 (lhs, rhs, bias, out)}}
func.func private @ember_gemm_4(%a: memref<4x8xf32>, %b: memref<1x8x16xf32>, %c: memref<4x16xf32>) attributes {ember.gemm_kernel = {activation = "none", bias = true, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
  return
}

// -----

// The packed operand must have the spec's panel layout.
// expected-error @+1 {{kernel argument 'rhs' has type memref<8x16xf32>, expected memref<1x8x16xf32>}}
func.func private @ember_gemm_5(%a: memref<4x8xf32>, %b: memref<8x16xf32>, %c: memref<4x16xf32>) attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
  return
}

// -----

// A bf16 kernel (a model in bf16): the panel's bf16 vectors and A's elements are widened to
// f32 in registers (A as it is packed), the products summed in f32 over all of K in one
// block (kc=4 is overridden: C could not hold rounded partial sums), the bias widened, and
// the result rounded to bf16 once, at the store.
// CHECK-LABEL: func.func private @ember_gemm_6_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<{{.*}}x8x2xf32>
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: %[[B:.*]] = vector.load %{{.*}} : memref<1x8x16xbf16>, vector<8xbf16>
// CHECK: arith.extf %[[B]] : vector<8xbf16> to vector<8xf32>
// CHECK: vector.fma %{{.*}} : vector<8xf32>
// CHECK: arith.truncf %{{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.store %{{.*}} : memref<4x16xbf16>, vector<8xbf16>
func.func private @ember_gemm_6(%a: memref<4x8xbf16>, %b: memref<1x8x16xbf16>, %bias: memref<16xbf16>, %c: memref<4x16xbf16>) attributes {ember.gemm_kernel = {activation = "none", bias = true, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
  return
}

// -----

// f16 operands summed into an f32 C (`operands`: a half model's attention product, B
// row-major): widened as they are read, C stored as it is.
// CHECK-LABEL: func.func private @ember_gemm_7_task(
// CHECK: arith.extf %{{.*}} : vector<8xf16> to vector<8xf32>
// CHECK: vector.fma
// CHECK-NOT: arith.truncf
// CHECK: return
func.func private @ember_gemm_7(%a: memref<4x8xf16>, %b: memref<8x16xf16>, %c: memref<4x16xf32>) attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false, rhs_packed = false, operands = "f16"}} {
  return
}

// -----

// Other element types get no generated body.
// expected-error @+1 {{only f32, f16 and bf16 kernels (int8 ones: f32) are generated, got f64}}
func.func private @ember_gemm_8(%a: memref<4x8xf64>, %b: memref<1x8x16xf64>, %c: memref<4x16xf64>) attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 8 : i64, m = 4 : i64, n = 16 : i64, nr = 16 : i64, residual = false}} {
  return
}
