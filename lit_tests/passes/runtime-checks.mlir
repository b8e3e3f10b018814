// RUN: ember-opt %s --split-input-file --ember-runtime-checks | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:openmp=off --stages=kernels,loops,llvm | filecheck %s --check-prefix=LLVM

// ember-runtime-checks guards the accesses and integer divisions of public functions that use
// tensor data as an index or a divisor, and adds the fault record (memref<8xi64>) they report
// to as the last argument. An index is checked with one unsigned compare against its dim; the
// access runs only in range, else the first fault claims the record (atomic or) and writes
// kind, value, size, dim, the origin text's address, the indexed and the source argument. A
// zero divisor is reported and replaced by 1 (so is a signed INT_MIN / -1). Indices and
// divisors the compiler computed (loop counters, linalg.index, constants) are left alone.

// A gather as torch-mlir lowers Embedding: its asserts are replaced by the guard; the value
// reported is the element of the index tensor (argument 0) and the tensor indexed argument 1.
// The origin, "aten.embedding at model.py:3" and a NUL, is a private constant global.
// CHECK: memref.global "private" constant @ember_fault_text_0 : memref<29xi8>
// CHECK-LABEL: func.func @embedding(
// CHECK-SAME: %[[IDS:[^:]*]]: memref<2x3xi64>, %[[TABLE:[^:]*]]: memref<11x6xf32>, %{{[^:]*}}: memref<2x3x6xf32>, %[[REC:[^:]*]]: memref<8xi64> {ember.fault_record})
// CHECK: ^bb0(%[[IN:[^:]*]]: i64
// CHECK: %[[I:.*]] = arith.index_cast %[[IN]] : i64 to index
// CHECK-NOT: cf.assert
// CHECK: %[[OK:.*]] = arith.cmpi ult, %[[I]], %{{.*}} : index
// CHECK: %[[V:.*]] = scf.if %[[OK]] -> (f32) {
// CHECK-NEXT: %[[L:.*]] = memref.load %[[TABLE]][%[[I]], %{{.*}}] : memref<11x6xf32>
// CHECK-NEXT: scf.yield %[[L]] : f32
// CHECK-NEXT: } else {
// CHECK: %[[OLD:.*]] = memref.atomic_rmw ori %{{.*}}, %[[REC]][%{{.*}}] : (i64, memref<8xi64>) -> i64
// CHECK: memref.get_global @ember_fault_text_0
// CHECK: memref.store %[[IN]], %[[REC]]
// CHECK: scf.yield %{{.*}} : f32
// CHECK: linalg.yield %[[V]] : f32
// LLVM-LABEL: llvm.func @embedding(
// LLVM: llvm.icmp "ult"
// LLVM: llvm.atomicrmw _or
// LLVM-LABEL: llvm.func @_mlir_ciface_embedding(
// LLVM-SAME: %arg3: !llvm.ptr {ember.fault_record})
#ids = affine_map<(d0, d1, d2) -> (d0, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @embedding(%ids: memref<2x3xi64>, %table: memref<11x6xf32>, %out: memref<2x3x6xf32>) {
  %c11 = arith.constant 11 : index
  %c0_i64 = arith.constant 0 : i64
  linalg.generic {indexing_maps = [#ids, #out], iterator_types = ["parallel", "parallel", "parallel"]} ins(%ids : memref<2x3xi64>) outs(%out : memref<2x3x6xf32>) {
  ^bb0(%in: i64, %o: f32):
    %i = arith.index_cast %in : i64 to index
    %j = linalg.index 2 : index
    %lt = arith.cmpi slt, %i, %c11 : index
    cf.assert %lt, "index must be smaller than dim size"
    %ge = arith.cmpi sge, %in, %c0_i64 : i64
    cf.assert %ge, "index must be larger or equal to 0"
    %v = memref.load %table[%i, %j] : memref<11x6xf32> loc("aten.embedding"("model.py":3:0))
    linalg.yield %v : f32
  }
  return
}

// -----

// A scatter's store at loaded positions is guarded too (and only the store: the loads of the
// index and the value use the loop counter).
// CHECK-LABEL: func.func @scatter(
// CHECK-SAME: %[[REC:[^:]*]]: memref<8xi64> {ember.fault_record})
// CHECK: scf.for %[[K:.*]] =
// CHECK: %[[P:.*]] = memref.load %{{.*}}[%[[K]]] : memref<4xi64>
// CHECK: %[[I:.*]] = arith.index_cast %[[P]]
// CHECK: %[[OK:.*]] = arith.cmpi ult, %[[I]]
// CHECK: scf.if %[[OK]] {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[I]]] : memref<?xf32>
// CHECK-NEXT: } else {
// CHECK: memref.atomic_rmw ori
func.func @scatter(%pos: memref<4xi64>, %vals: memref<4xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %k = %c0 to %c4 step %c1 {
    %p = memref.load %pos[%k] : memref<4xi64>
    %i = arith.index_cast %p : i64 to index
    %v = memref.load %vals[%k] : memref<4xf32>
    memref.store %v, %out[%i] : memref<?xf32>
  }
  return
}

// -----

// A scatter-add as the frontend lowers TMTensor's scatter (tm_tensor_to_loops.py), bufferized:
// a negative index wrapped by a select, then a read-modify-write at that position. The load
// and the store are both guarded, and the value reported is the index as the tensor holds it
// (before the wrap).
// CHECK-LABEL: func.func @scatter_add(
// CHECK-SAME: %[[REC:[^:]*]]: memref<8xi64> {ember.fault_record})
// CHECK: %[[P:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<4xi64>
// CHECK: %[[W:.*]] = arith.select
// CHECK: %[[OK:.*]] = arith.cmpi ult, %[[W]]
// CHECK: %[[OLD:.*]] = scf.if %[[OK]] -> (f32) {
// CHECK-NEXT: memref.load %{{.*}}[%[[W]]] : memref<?xf32>
// CHECK: } else {
// CHECK: memref.atomic_rmw ori
// CHECK: memref.store %[[P]], %[[REC]]
// CHECK: arith.addf %{{.*}}, %[[OLD]]
// CHECK: %[[OK2:.*]] = arith.cmpi ult, %[[W]]
// CHECK: scf.if %[[OK2]] {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[W]]] : memref<?xf32>
// CHECK-NEXT: } else {
// CHECK: memref.atomic_rmw ori
func.func @scatter_add(%pos: memref<4xi64>, %vals: memref<4xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %n = memref.dim %out, %c0 : memref<?xf32>
  scf.for %k = %c0 to %c4 step %c1 {
    %p = memref.load %pos[%k] : memref<4xi64>
    %i = arith.index_cast %p : i64 to index
    %neg = arith.cmpi slt, %i, %c0 : index
    %wrapped = arith.addi %i, %n : index
    %w = arith.select %neg, %wrapped, %i : index
    %v = memref.load %vals[%k] : memref<4xf32>
    %old = memref.load %out[%w] : memref<?xf32>
    %sum = arith.addf %v, %old : f32
    memref.store %sum, %out[%w] : memref<?xf32>
  }
  return
}

// -----

// The compiler's own indices are not checked: a transpose through linalg.index, a loop.
// CHECK-LABEL: func.func @own_indices(
// CHECK-SAME: memref<8xi64> {ember.fault_record})
// CHECK-NOT: scf.if
// CHECK-NOT: memref.atomic_rmw
// CHECK: return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @own_indices(%x: memref<4x4xf32>, %out: memref<4x4xf32>) {
  linalg.generic {indexing_maps = [#id2], iterator_types = ["parallel", "parallel"]} outs(%out : memref<4x4xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %v = memref.load %x[%j, %i] : memref<4x4xf32>
    linalg.yield %v : f32
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %k = %c0 to %c4 step %c1 {
    %v = memref.load %x[%k, %k] : memref<4x4xf32>
    memref.store %v, %out[%k, %k] : memref<4x4xf32>
  }
  return
}

// -----

// A remainder by a tensor element: a zero divisor is reported (kind 2) and replaced by 1, as
// is -1 under INT_MIN. A division by a constant is left alone.
// CHECK-LABEL: func.func @remainder(
// CHECK: ^bb0(%[[A:[^:]*]]: i64, %[[B:[^:]*]]: i64
// CHECK: %[[ZERO:.*]] = arith.cmpi eq, %[[B]], %{{.*}} : i64
// CHECK: %[[MIN:.*]] = arith.cmpi eq, %[[A]], %{{.*}} : i64
// CHECK: %[[NEG1:.*]] = arith.cmpi eq, %[[B]], %{{.*}} : i64
// CHECK: %[[OVER:.*]] = arith.andi %[[MIN]], %[[NEG1]] : i1
// CHECK: %[[BAD:.*]] = arith.ori %[[ZERO]], %[[OVER]] : i1
// CHECK: scf.if %[[ZERO]] {
// CHECK: memref.atomic_rmw ori
// CHECK: %[[SAFE:.*]] = arith.select %[[BAD]], %{{.*}}, %[[B]] : i64
// CHECK: arith.remsi %[[A]], %[[SAFE]] : i64
// CHECK: arith.divsi %{{.*}}, %c7_i64 : i64
// LLVM-LABEL: llvm.func @remainder(
// LLVM: llvm.srem
#id1 = affine_map<(d0) -> (d0)>
func.func @remainder(%a: memref<12xi64>, %b: memref<12xi64>, %out: memref<12xi64>) {
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]} ins(%a, %b : memref<12xi64>, memref<12xi64>) outs(%out : memref<12xi64>) {
  ^bb0(%x: i64, %y: i64, %o: i64):
    %r = arith.remsi %x, %y : i64
    %c7 = arith.constant 7 : i64
    %q = arith.divsi %r, %c7 : i64
    linalg.yield %q : i64
  }
  return
}

// -----

// torch-mlir's integer floor division runs in f64; its divisor is checked as an integer.
// CHECK-LABEL: func.func @floor_divide(
// CHECK: ^bb0(%{{[^:]*}}: i64, %[[B:[^:]*]]: i64
// CHECK: %[[ZERO:.*]] = arith.cmpi eq, %[[B]], %{{.*}} : i64
// CHECK: scf.if %[[ZERO]] {
// CHECK: %[[SAFE:.*]] = arith.select %[[ZERO]], %{{.*}}, %[[B]] : i64
// CHECK: %[[F:.*]] = arith.sitofp %[[SAFE]] : i64 to f64
// CHECK: arith.divf %{{.*}}, %[[F]] : f64
#id1 = affine_map<(d0) -> (d0)>
func.func @floor_divide(%a: memref<4xi64>, %b: memref<4xi64>, %out: memref<4xi64>) {
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]} ins(%a, %b : memref<4xi64>, memref<4xi64>) outs(%out : memref<4xi64>) {
  ^bb0(%x: i64, %y: i64, %o: i64):
    %fx = arith.sitofp %x : i64 to f64
    %fy = arith.sitofp %y : i64 to f64
    %d = arith.divf %fx, %fy : f64
    %f = math.floor %d : f64
    %q = arith.fptosi %f : f64 to i64
    linalg.yield %q : i64
  }
  return
}

// -----

// A float division by a float is not an integer division; private functions (kernels) are
// neither checked nor given a record.
// CHECK-LABEL: func.func private @kernel(
// CHECK-SAME: %{{[^:]*}}: memref<4xi64>, %{{[^:]*}}: memref<4xf32>)
// CHECK-NOT: scf.if
// CHECK-LABEL: func.func @ratio(
// CHECK-NOT: scf.if
// CHECK: arith.divf
func.func private @kernel(%pos: memref<4xi64>, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %p = memref.load %pos[%c0] : memref<4xi64>
  %i = arith.index_cast %p : i64 to index
  %z = arith.constant 0.0 : f32
  memref.store %z, %out[%i] : memref<4xf32>
  return
}
func.func @ratio(%a: memref<4xf32>, %b: memref<4xf32>, %out: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%a, %b : memref<4xf32>, memref<4xf32>) outs(%out : memref<4xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.divf %x, %y : f32
    linalg.yield %d : f32
  }
  return
}

// -----

// An assert no guard subsumes (torch-mlir's integer reciprocal refuses zeros) becomes a fault
// of kind 3 whose value is the address of its message: lowered as it was, cf.assert calls
// abort() and kills the caller's process.
// CHECK-DAG: memref.global "private" constant @ember_fault_text_0 : memref<40xi8> = dense<[117, 110,
// CHECK-DAG: memref.global "private" constant @ember_fault_text_1 : memref<30xi8>
// CHECK-LABEL: func.func @integer_reciprocal(
// CHECK-NOT: cf.assert
// CHECK: %[[NZ:.*]] = arith.cmpi ne, %[[IN:.*]], %{{.*}} : i64
// CHECK: %[[FAILED:.*]] = arith.xori %[[NZ]], %true : i1
// CHECK: scf.if %[[FAILED]] {
// CHECK: %[[TEXT:.*]] = memref.get_global @ember_fault_text_0
// CHECK: %[[PTR:.*]] = memref.extract_aligned_pointer_as_index %[[TEXT]]
// CHECK: %[[MESSAGE:.*]] = arith.index_cast %[[PTR]] : index to i64
// CHECK: memref.atomic_rmw ori
// CHECK: memref.store %[[MESSAGE]], %{{.*}}[%c2] : memref<8xi64>
// CHECK: arith.divf
// LLVM-LABEL: llvm.func @integer_reciprocal(
// LLVM-NOT: llvm.call @abort
// LLVM: llvm.return
func.func @integer_reciprocal(%x: memref<20xi64>, %out: memref<20xf32>) {
  %one = arith.constant 1.0 : f32
  %c0_i64 = arith.constant 0 : i64
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x : memref<20xi64>) outs(%out : memref<20xf32>) {
  ^bb0(%in: i64, %o: f32):
    %f = arith.sitofp %in : i64 to f32
    %nz = arith.cmpi ne, %in, %c0_i64 : i64
    cf.assert %nz, "unimplemented: tensor with zero element" loc("aten.reciprocal"("model.py":5:0))
    %r = arith.divf %one, %f : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Asserts in the function's own block (torch-mlir's size checks before a reshape, which the
// code after them relies on) return at once when they fail, each splitting the block: the
// code after a failed check never runs on the sizes it refused.
// CHECK-LABEL: func.func @checked_reshape(
// CHECK: %[[OK:.*]] = arith.cmpi eq, %{{.*}}, %c25_i64 : i64
// CHECK: cf.cond_br %[[OK]], ^[[REST:bb[0-9]+]], ^[[FAILED:bb[0-9]+]]
// CHECK: ^[[REST]]:
// CHECK: %[[OK2:.*]] = arith.cmpi sgt, %{{.*}}, %c0_i64 : i64
// CHECK: cf.cond_br %[[OK2]], ^[[REST2:bb[0-9]+]], ^[[FAILED2:bb[0-9]+]]
// CHECK: ^[[REST2]]:
// CHECK: memref.copy
// CHECK-NEXT: return
// CHECK: ^[[FAILED2]]:
// CHECK: memref.atomic_rmw ori
// CHECK: return
// CHECK: ^[[FAILED]]:
// CHECK: memref.atomic_rmw ori
// CHECK: return
// LLVM-LABEL: llvm.func @checked_reshape(
// LLVM-NOT: llvm.call @abort
// LLVM: llvm.return
func.func @checked_reshape(%x: memref<?x?xf32>, %out: memref<25x?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c25_i64 = arith.constant 25 : i64
  %c0_i64 = arith.constant 0 : i64
  %d0 = memref.dim %x, %c0 : memref<?x?xf32>
  %n0 = arith.index_cast %d0 : index to i64
  %ok = arith.cmpi eq, %n0, %c25_i64 : i64
  cf.assert %ok, "mismatching contracting dimension"
  %d1 = memref.dim %x, %c1 : memref<?x?xf32>
  %n1 = arith.index_cast %d1 : index to i64
  %ok2 = arith.cmpi sgt, %n1, %c0_i64 : i64
  cf.assert %ok2, "expected a non-empty row"
  %cast = memref.cast %x : memref<?x?xf32> to memref<25x?xf32>
  memref.copy %cast, %out : memref<25x?xf32> to memref<25x?xf32>
  return
}
