// RUN: ember-opt %s --split-input-file --ember-plan-buffers | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:openmp=off --stages=bufferize,kernels,loops,llvm | filecheck %s --check-prefix=LLVM
// RUN: ember-opt %s --split-input-file --target=host:openmp=off --stages=bufferize,kernels,loops,llvm --disable-passes=ember-plan-buffers | filecheck %s --check-prefix=NOPLAN

// ember-plan-buffers gives a function's static intermediate buffers offsets in one 64-byte
// aligned arena (memref.alloc of i8 at the function's start), each buffer a memref.view of it;
// buffers whose live ranges (alloc to last use, through views) are disjoint share bytes.
// The CPU targets' `bufferize` stage runs it between bufferization and deallocation: one malloc
// and one free per call instead of one per buffer (without the pass, one per buffer).

// %a (1 KiB) dies at the second generic, so %c, allocated after it, takes its bytes: the
// arena is 2 KiB for 3 KiB of buffers. Uses through a view (the collapse_shape) count.
// CHECK-LABEL: func.func @chain(
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2048xi8>
// CHECK-NOT: memref.alloc
// CHECK: %[[A:.*]] = memref.view %[[ARENA]][%c0][] : memref<2048xi8> to memref<256xf32>
// CHECK: outs(%[[A]] : memref<256xf32>)
// CHECK: %[[B:.*]] = memref.view %[[ARENA]][%c1024][] : memref<2048xi8> to memref<256xf32>
// CHECK: ins(%[[A]] : memref<256xf32>) outs(%[[B]] : memref<256xf32>)
// CHECK: %[[C:.*]] = memref.view %[[ARENA]][%{{.*}}][] : memref<2048xi8> to memref<16x16xf32>
// CHECK: %[[FLAT:.*]] = memref.collapse_shape %[[C]]
// CHECK: ins(%[[B]] : memref<256xf32>) outs(%[[FLAT]] : memref<256xf32>)
// CHECK: memref.copy %[[FLAT]], %arg1
// LLVM-LABEL: llvm.func @chain(
// LLVM-COUNT-1: llvm.call @_mlir_memref_to_llvm_alloc
// LLVM-NOT: llvm.call @_mlir_memref_to_llvm_alloc
// LLVM: llvm.call @_mlir_memref_to_llvm_free
// LLVM-NOT: llvm.call @_mlir_memref_to_llvm_free
// LLVM: llvm.return
// NOPLAN-LABEL: llvm.func @chain(
// NOPLAN-COUNT-3: llvm.call @_mlir_memref_to_llvm_alloc
#id = affine_map<(d0) -> (d0)>
func.func @chain(%x: memref<256xf32>, %out: memref<256xf32>) {
  %a = memref.alloc() {alignment = 64 : i64} : memref<256xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%x : memref<256xf32>) outs(%a : memref<256xf32>) {
  ^bb0(%i: f32, %o: f32):
    %0 = arith.mulf %i, %i : f32
    linalg.yield %0 : f32
  }
  %b = memref.alloc() {alignment = 64 : i64} : memref<256xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%a : memref<256xf32>) outs(%b : memref<256xf32>) {
  ^bb0(%i: f32, %o: f32):
    %0 = arith.addf %i, %i : f32
    linalg.yield %0 : f32
  }
  %c = memref.alloc() {alignment = 64 : i64} : memref<16x16xf32>
  %flat = memref.collapse_shape %c [[0, 1]] : memref<16x16xf32> into memref<256xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%b : memref<256xf32>) outs(%flat : memref<256xf32>) {
  ^bb0(%i: f32, %o: f32):
    %0 = arith.negf %i : f32
    linalg.yield %0 : f32
  }
  memref.copy %flat, %out : memref<256xf32> to memref<256xf32>
  return
}

// -----

// Left to the allocator: a dynamically sized buffer, a returned one and an i1 one; the two
// static f32 buffers live at once, so they get separate (aligned) offsets.
// CHECK-LABEL: func.func @left_alone(
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<80xi8>
// CHECK: memref.alloc(%arg0) : memref<?xf32>
// CHECK: %[[R:.*]] = memref.alloc() : memref<8xf32>
// CHECK: memref.alloc() : memref<4xi1>
// CHECK: memref.view %[[ARENA]][%c0][] : memref<80xi8> to memref<4xf32>
// CHECK: memref.view %[[ARENA]][%c64][] : memref<80xi8> to memref<4xf32>
// CHECK: return %[[R]]
func.func @left_alone(%n: index, %out: memref<4xf32>) -> memref<8xf32> {
  %d = memref.alloc(%n) : memref<?xf32>
  %r = memref.alloc() : memref<8xf32>
  %m = memref.alloc() : memref<4xi1>
  %s = memref.alloc() : memref<4xf32>
  %t = memref.alloc() : memref<4xf32>
  memref.copy %s, %out : memref<4xf32> to memref<4xf32>
  memref.copy %t, %out : memref<4xf32> to memref<4xf32>
  return %r : memref<8xf32>
}
