// RUN: ember-opt %s --split-input-file --linalg-generalize-named-ops --ember-parallelize-loops | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(linalg-generalize-named-ops),ember-parallelize-loops{min-elements=16 min-chunks=2})' | filecheck %s --check-prefix=SMALL
// RUN: ember-opt %s --split-input-file --target=host:openmp=on --stages=bufferize,kernels,loops,llvm --disable-passes=ember-cpu-gemm-kernels | filecheck %s --check-prefix=OMP
// RUN: ember-opt %s --split-input-file --target=host:openmp=on --stages=bufferize,kernels,loops,llvm --disable-passes=ember-cpu-gemm-kernels,ember-parallelize-loops | filecheck %s --check-prefix=SERIAL

// ember-parallelize-loops splits the big linalg ops and memref.copy ops outside GEMM kernels
// (bufferized code) into an scf.forall over slices of their outermost parallel dims, which
// the CPU targets' `loops` stage then runs as OpenMP work-sharing loops (OMP; with the pass
// disabled the same ops stay serial: SERIAL). Outer dims are split until there are min-chunks (8)
// slices; the last loop dim and reduction dims are never split, so each slice keeps whole
// inner rows. Ops below min-elements (32768) iteration points stay serial (SMALL lowers it).

// A LayerNorm-style row reduction: the batch dim is split, the rows and the reduced dim stay
// whole in each slice.
// CHECK-LABEL: func.func @row_sums(
// CHECK: scf.forall (%[[B:.*]]) in (8) {
// CHECK: memref.subview %{{.*}}[%[[B]], 0, 0] [1, 128, 256] [1, 1, 1]
// CHECK: memref.subview %{{.*}}[%[[B]], 0] [1, 128] [1, 1]
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-SAME: memref<1x128x256xf32
// OMP-LABEL: llvm.func @row_sums(
// OMP: omp.parallel
// OMP: omp.wsloop
// SERIAL-LABEL: llvm.func @row_sums(
// SERIAL-NOT: omp.
// SERIAL: llvm.return
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#rows = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @row_sums(%x: memref<8x128x256xf32>, %out: memref<8x128xf32>) {
  linalg.generic {indexing_maps = [#id3, #rows], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x : memref<8x128x256xf32>) outs(%out : memref<8x128xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %0 = arith.addf %in, %acc : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Attention's head split: with a batch of 2, the batch and head dims are both split (8 slices
// of 128x64); the named op is generalized first.
// CHECK-LABEL: func.func @head_split(
// CHECK: scf.forall (%[[B:.*]], %[[H:.*]]) in (2, 4) {
// CHECK: memref.subview %{{.*}}[%[[B]], 0, %[[H]], 0] [1, 128, 1, 64]
// CHECK: memref.subview %{{.*}}[%[[B]], %[[H]], 0, 0] [1, 1, 128, 64]
// CHECK: linalg.generic
// CHECK-NOT: linalg.transpose
func.func @head_split(%x: memref<2x128x4x64xf32>, %out: memref<2x4x128x64xf32>) {
  linalg.transpose ins(%x : memref<2x128x4x64xf32>) outs(%out : memref<2x4x128x64xf32>) permutation = [0, 2, 1, 3]
  return
}

// -----

// tensor.pad after bufferization: the fill of the padded buffer and the copy of the interior
// are both split; each slice of the copy is still a memref.copy (a memcpy per run).
// CHECK-LABEL: func.func @pad(
// CHECK: scf.forall (%[[B:.*]]) in (8) {
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<1x66x66x32xf32
// CHECK: %[[INTERIOR:.*]] = memref.subview %{{.*}}[0, 1, 1, 0] [8, 64, 64, 32]
// CHECK: scf.forall (%[[C:.*]]) in (8) {
// CHECK: %[[FROM:.*]] = memref.subview %{{.*}}[%[[C]], 0, 0, 0] [1, 64, 64, 32]
// CHECK: %[[TO:.*]] = memref.subview %[[INTERIOR]][%[[C]], 0, 0, 0] [1, 64, 64, 32]
// CHECK: memref.copy %[[FROM]], %[[TO]]
// CHECK-NOT: linalg.copy
// OMP-LABEL: llvm.func @pad(
// OMP-COUNT-2: omp.wsloop
func.func @pad(%x: memref<8x64x64x32xf32>, %out: memref<8x66x66x32xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<8x66x66x32xf32>)
  %interior = memref.subview %out[0, 1, 1, 0] [8, 64, 64, 32] [1, 1, 1, 1] : memref<8x66x66x32xf32> to memref<8x64x64x32xf32, strided<[139392, 2112, 32, 1], offset: 2144>>
  memref.copy %x, %interior : memref<8x64x64x32xf32> to memref<8x64x64x32xf32, strided<[139392, 2112, 32, 1], offset: 2144>>
  return
}

// -----

// A dynamic batch: the size is known only at run time, so the op is split under an scf.if on
// its iteration points, with the serial op in the else branch.
// CHECK-LABEL: func.func @dynamic_rows(
// CHECK: %[[N:.*]] = memref.dim %{{.*}}, %c0
// CHECK: %[[POINTS:.*]] = arith.muli %c512, %[[N]]
// CHECK: %[[BIG:.*]] = arith.cmpi uge, %[[POINTS]], %c32768
// CHECK: scf.if %[[BIG]] {
// CHECK: scf.forall (%{{.*}}) in (%{{.*}}) {
// CHECK: math.tanh
// CHECK: } else {
// CHECK-NOT: scf.forall
// CHECK: math.tanh
func.func @dynamic_rows(%x: memref<?x512xf32>, %out: memref<?x512xf32>) {
  linalg.map { math.tanh } ins(%x : memref<?x512xf32>) outs(%out : memref<?x512xf32>)
  return
}

// -----

// Left serial: ops below min-elements (SMALL splits them), an op whose outer dim is a
// reduction (a column sum), a 1-d op (its only dim is the innermost) and an op inside an
// existing scf.forall (attention's body: no nested parallel loops).
// CHECK-LABEL: func.func @left_alone(
// CHECK-NOT: scf.forall (%{{.*}}) in (4)
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel"]
// CHECK-SAME: ins(%{{.*}} : memref<4x8xf32>)
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<4x8xf32> to memref<4x8xf32>
// CHECK-NEXT: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK-SAME: ins(%{{.*}} : memref<1024x256xf32>)
// CHECK-NEXT: ^bb0
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : memref<65536xf32>)
// CHECK: scf.forall (%[[I:.*]]) in (8) {
// CHECK-NEXT: memref.subview %{{.*}}[%[[I]], 0, 0]
// CHECK-NEXT: linalg.generic {{.*}} ins(%{{.*}} : memref<128x256xf32
// CHECK-NOT: scf.forall
// CHECK: return
// SMALL-LABEL: func.func @left_alone(
// SMALL: scf.forall (%{{.*}}) in (4) {
// SMALL: linalg.generic {{.*}} ins(%{{.*}} : memref<1x8xf32
// SMALL: scf.forall (%{{.*}}) in (4) {
// SMALL: memref.copy %{{.*}}, %{{.*}} : memref<1x8xf32
// SMALL-NOT: linalg.copy
// SMALL: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// SMALL-SAME: ins(%{{.*}} : memref<1024x256xf32>)
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
func.func @left_alone(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %c: memref<4x8xf32>,
                      %m: memref<1024x256xf32>, %sums: memref<256xf32>,
                      %v: memref<65536xf32>, %w: memref<65536xf32>, %t: memref<8x128x256xf32>) {
  linalg.map { math.exp } ins(%a : memref<4x8xf32>) outs(%b : memref<4x8xf32>)
  memref.copy %b, %c : memref<4x8xf32> to memref<4x8xf32>
  linalg.generic {indexing_maps = [#id2, #cols], iterator_types = ["reduction", "parallel"]} ins(%m : memref<1024x256xf32>) outs(%sums : memref<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %0 = arith.addf %in, %acc : f32
    linalg.yield %0 : f32
  }
  linalg.map { math.exp } ins(%v : memref<65536xf32>) outs(%w : memref<65536xf32>)
  scf.forall (%i) in (8) {
    %s = memref.subview %t[%i, 0, 0] [1, 128, 256] [1, 1, 1] : memref<8x128x256xf32> to memref<128x256xf32, strided<[256, 1], offset: ?>>
    linalg.map { math.exp } ins(%s : memref<128x256xf32, strided<[256, 1], offset: ?>>) outs(%s : memref<128x256xf32, strided<[256, 1], offset: ?>>)
  }
  return
}

// -----

// GEMM kernel functions and the functions they call (their task functions) already run in
// parallel: nothing in them is split, whatever its size.
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-NOT: scf.forall
// CHECK: call @ember_gemm_0_task(
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
// CHECK-NOT: scf.forall
// CHECK: return
func.func private @ember_gemm_0(%x: memref<256x256xf32>, %out: memref<256x256xf32>) attributes {ember.gemm_kernel = {m = 256 : i64}} {
  linalg.map { math.exp } ins(%x : memref<256x256xf32>) outs(%out : memref<256x256xf32>)
  %c0 = arith.constant 0 : index
  func.call @ember_gemm_0_task(%c0, %x, %out) : (index, memref<256x256xf32>, memref<256x256xf32>) -> ()
  return
}
func.func private @ember_gemm_0_task(%i: index, %x: memref<256x256xf32>, %out: memref<256x256xf32>) {
  linalg.map { math.exp } ins(%x : memref<256x256xf32>) outs(%out : memref<256x256xf32>)
  return
}
