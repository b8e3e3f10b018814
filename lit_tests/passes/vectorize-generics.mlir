// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-vectorize-generics{lanes=16})' | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:openmp=off,vector_bits=512 --stages=bufferize,kernels,loops,llvm | filecheck %s --check-prefix=LLVM
// RUN: ember-opt %s --split-input-file --target=host:openmp=off --stages=bufferize,kernels,loops,llvm --disable-passes=ember-vectorize-generics | filecheck %s --check-prefix=SCALAR

// ember-vectorize-generics turns elementwise linalg ops on memrefs into vector code along
// their contiguous last dim: tiled by 1 on the outer loops and by the vector width on the
// last, each tile one vector.load per operand, vector arithmetic and one vector.store (masked
// where the width does not divide the dim). The CPU targets' `kernels` stage runs it with the
// target's vector width (and then the loads and stores are plain vector accesses in the LLVM
// dialect); with the pass disabled the loops stay scalar.

// The bias + ReLU of a conv output: channels (32) are the last, contiguous dim; two 16-lane
// vectors per row, the bias broadcast along the other dims.
// CHECK-LABEL: func.func @bias_relu(
// CHECK: scf.for %{{.*}} = %c0 to %c8 step %c1
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1
// CHECK: scf.for %{{.*}} = %c0 to %c32 step %c16
// CHECK: %[[X:.*]] = vector.load %{{.*}} : memref<16xf32, {{.*}}>, vector<16xf32>
// CHECK: %[[B:.*]] = vector.load %{{.*}} : memref<16xf32, {{.*}}>, vector<16xf32>
// CHECK: %[[S:.*]] = arith.addf %[[X]], %[[B]] : vector<16xf32>
// CHECK: %[[R:.*]] = arith.maximumf %[[S]], %{{.*}} : vector<16xf32>
// CHECK: vector.store %[[R]]
// CHECK-NOT: linalg.generic
// LLVM-LABEL: llvm.func @bias_relu(
// LLVM: llvm.load %{{.*}} {alignment = 4 : i64} : !llvm.ptr -> vector<16xf32>
// LLVM: llvm.intr.maximum(%{{.*}}) : (vector<16xf32>, vector<16xf32>) -> vector<16xf32>
// LLVM: llvm.store %{{.*}} : vector<16xf32>, !llvm.ptr
// SCALAR-LABEL: llvm.func @bias_relu(
// SCALAR-NOT: vector<16xf32>
// SCALAR: llvm.return
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#ch = affine_map<(d0, d1, d2) -> (d2)>
func.func @bias_relu(%x: memref<8x64x32xf32>, %b: memref<32xf32>, %out: memref<8x64x32xf32>) {
  linalg.generic {indexing_maps = [#id3, #ch, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %b : memref<8x64x32xf32>, memref<32xf32>) outs(%out : memref<8x64x32xf32>) {
  ^bb0(%in: f32, %bias: f32, %o: f32):
    %0 = arith.addf %in, %bias : f32
    %c = arith.constant 0.0 : f32
    %1 = arith.maximumf %0, %c : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// A last dim of 10: 8-lane vectors (narrower than a 16-lane register, not below 4), masked
// for the tail of 2.
// CHECK-LABEL: func.func @tail(
// CHECK: scf.for %[[J:.*]] = %c0 to %c10 step %c8
// CHECK: %[[N:.*]] = affine.min #{{.*}}(%[[J]])
// CHECK: %[[MASK:.*]] = vector.create_mask %[[N]] : vector<8xi1>
// CHECK: vector.maskedload %{{.*}}[%c0], %[[MASK]]
// CHECK: arith.mulf %{{.*}} : vector<8xf32>
// CHECK: vector.maskedstore
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @tail(%x: memref<4x10xf32>, %out: memref<4x10xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<4x10xf32>) outs(%out : memref<4x10xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Dynamic sizes: masked 16-lane vectors up to the run-time size.
// CHECK-LABEL: func.func @dynamic(
// CHECK: %[[D:.*]] = memref.dim %arg0, %c1
// CHECK: scf.for %[[J:.*]] = %c0 to %[[D]] step %c16
// CHECK: vector.create_mask %{{.*}} : vector<16xi1>
// CHECK: vector.maskedload
// CHECK: math.exp %{{.*}} : vector<16xf32>
// CHECK: vector.maskedstore
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @dynamic(%x: memref<?x?xf32>, %out: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<?x?xf32>) outs(%out : memref<?x?xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Left alone: a transpose (the last loop is not the input's contiguous dim) ...
// CHECK-LABEL: func.func @transpose(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
func.func @transpose(%x: memref<64x64xf32>, %out: memref<64x64xf32>) {
  linalg.generic {indexing_maps = [#tr, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<64x64xf32>) outs(%out : memref<64x64xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  }
  return
}

// -----

// A reduction over the last dim (a softmax's row sum, reassociation allowed by
// ember-reassociate-reductions): each row one vector of up to 8 x 16 lanes, reduced in
// registers and combined with the accumulator once, the sum still reassociable.
// CHECK-LABEL: func.func @row_sum(
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1
// CHECK: %[[X:.*]] = vector.load %{{.*}} : memref<64xf32, {{.*}}>, vector<64xf32>
// CHECK: vector.reduction <add>, %[[X]], %{{.*}} fastmath<reassoc,contract> : vector<64xf32> into f32
// CHECK-NOT: linalg.generic
// LLVM-LABEL: llvm.func @row_sum(
// LLVM: "llvm.intr.vector.reduce.fadd"(%{{.*}}, %{{.*}}) <{fastmathFlags = #llvm.fastmath<contract, reassoc>}> : (f32, vector<64xf32>) -> f32
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @row_sum(%x: memref<64x64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%x : memref<64x64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.addf %in, %o fastmath<reassoc,contract> : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A row's largest magnitude (dynamic quantization's amax) over 300 values: chunks of 128,
// the last one masked; max is exact in any order.
// CHECK-LABEL: func.func @row_amax(
// CHECK: scf.for %{{.*}} = %c0 to %c300 step %c128
// CHECK: vector.maskedload
// CHECK: math.absf %{{.*}} : vector<128xf32>
// CHECK: vector.mask %{{.*}} { vector.reduction <maximumf>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @row_amax(%x: memref<8x300xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%x : memref<8x300xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %a = math.absf %in : f32
    %0 = arith.maximumf %o, %a : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Not taken: a float sum whose order is not to be changed (no reassoc), ...
// CHECK-LABEL: func.func @ordered_sum(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @ordered_sum(%x: memref<64x64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%x : memref<64x64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.addf %in, %o : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// ... a reassociable sum with a tail (masked, it would reach LLVM as an ordered
// vp.reduce.fadd), ...
// CHECK-LABEL: func.func @sum_with_tail(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @sum_with_tail(%x: memref<64x100xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%x : memref<64x100xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.addf %in, %o fastmath<reassoc,contract> : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// ... an argmax (two results, the accumulators read together) ...
// CHECK-LABEL: func.func @argmax(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @argmax(%x: memref<64x64xf32>, %best: memref<64xf32>, %at: memref<64xi64>) {
  linalg.generic {indexing_maps = [#id2, #row, #row], iterator_types = ["parallel", "reduction"]} ins(%x : memref<64x64xf32>) outs(%best, %at : memref<64xf32>, memref<64xi64>) {
  ^bb0(%in: f32, %b: f32, %i: i64):
    %j = linalg.index 1 : index
    %jj = arith.index_cast %j : index to i64
    %gt = arith.cmpf ogt, %in, %b : f32
    %nb = arith.select %gt, %in, %b : f32
    %ni = arith.select %gt, %jj, %i : i64
    linalg.yield %nb, %ni : f32, i64
  }
  return
}

// -----

// A reduction over the rows (leading loops; the contiguous last dim parallel) steps through
// the rows, each one vector of the row combined into the accumulators' vector: the scalar
// loop's order in every lane, so a sum needs no reassociation, and a tail is masked.
// CHECK-LABEL: func.func @column_sum(
// CHECK-NOT: linalg.generic
// CHECK: scf.for %[[R:.*]] = %c0 to %c64 step %c1
// CHECK: scf.for %[[C:.*]] = %c0 to %c64 step %c16
// CHECK: %[[X:.*]] = vector.load %{{.*}} : memref<16xf32, {{.*}}>, vector<16xf32>
// CHECK: %[[ACC:.*]] = vector.load %{{.*}} : memref<16xf32, {{.*}}>, vector<16xf32>
// CHECK: %[[SUM:.*]] = arith.addf %[[ACC]], %[[X]] : vector<16xf32>
// CHECK: vector.store %[[SUM]]
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
func.func @column_sum(%x: memref<64x64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id2, #col], iterator_types = ["reduction", "parallel"]} ins(%x : memref<64x64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.addf %o, %in : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// CHECK-LABEL: func.func @column_max_with_tail(
// CHECK-NOT: linalg.generic
// CHECK: vector.maskedload
// CHECK: arith.maximumf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: vector.maskedstore
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#chan = affine_map<(d0, d1, d2) -> (d2)>
func.func @column_max_with_tail(%x: memref<4x8x40xf32>, %out: memref<40xf32>) {
  linalg.generic {indexing_maps = [#id3, #chan], iterator_types = ["reduction", "reduction", "parallel"]} ins(%x : memref<4x8x40xf32>) outs(%out : memref<40xf32>) {
  ^bb0(%in: f32, %o: f32):
    %a = math.absf %in : f32
    %0 = arith.maximumf %o, %a : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A reduction over both a leading loop and the last stays scalar ...
// CHECK-LABEL: func.func @total(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>
func.func @total(%x: memref<64x64xf32>, %out: memref<f32>) {
  linalg.generic {indexing_maps = [#id2, #all], iterator_types = ["reduction", "reduction"]} ins(%x : memref<64x64xf32>) outs(%out : memref<f32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.addf %o, %in fastmath<reassoc,contract> : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// ... and an operand whose last dim has stride 2.
// CHECK-LABEL: func.func @strided(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @strided(%x: memref<8x64xf32, strided<[128, 2]>>, %out: memref<8x64xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<8x64xf32, strided<[128, 2]>>) outs(%out : memref<8x64xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  }
  return
}

// -----

// ... and an integer remainder (fmod's lowering: divide, multiply, subtract), even where the
// width divides the dim: no target has a vector integer divide, and in a masked tail the
// padded lanes of the divisor are zeros (a SIGFPE on lengths 7, 12 or 100).
// CHECK-LABEL: func.func @integer_fmod(
// CHECK: linalg.generic
// CHECK: arith.divsi %{{.*}} : i64
// CHECK-NOT: vector.
// SCALAR-LABEL: llvm.func @integer_fmod(
// SCALAR: llvm.sdiv %{{.*}} : i64
#id1 = affine_map<(d0) -> (d0)>
func.func @integer_fmod(%a: memref<12xi64>, %b: memref<12xi64>, %out: memref<12xi64>) {
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]} ins(%a, %b : memref<12xi64>, memref<12xi64>) outs(%out : memref<12xi64>) {
  ^bb0(%x: i64, %y: i64, %o: i64):
    %q = arith.divsi %x, %y : i64
    %p = arith.muli %q, %y : i64
    %r = arith.subi %x, %p : i64
    linalg.yield %r : i64
  }
  return
}

// -----

// ... and a static last dim of 5 (one 4-lane vector and a masked tail of 1): LLVM unrolls such
// loops into huge blocks of masked accesses that compile in quadratic time.
// CHECK-LABEL: func.func @short_row(
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @short_row(%x: memref<30x5xf32>, %out: memref<30x5xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<30x5xf32>) outs(%out : memref<30x5xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// ... and complex numbers (no vector<...xcomplex<f32>> exists): a broadcast of a complex64
// row stays a loop, which the CPU stages lower to loads of two-float structs.
// CHECK-LABEL: func.func @complex_broadcast(
// CHECK: linalg.generic
// CHECK-NOT: vector.
// LLVM-LABEL: llvm.func @complex_broadcast(
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> !llvm.struct<(f32, f32)>
// LLVM: llvm.store %{{.*}} : !llvm.struct<(f32, f32)>, !llvm.ptr
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @complex_broadcast(%x: memref<16xcomplex<f32>>, %out: memref<4x16xcomplex<f32>>) {
  linalg.generic {indexing_maps = [#row, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : memref<16xcomplex<f32>>) outs(%out : memref<4x16xcomplex<f32>>) {
  ^bb0(%in: complex<f32>, %o: complex<f32>):
    linalg.yield %in : complex<f32>
  }
  return
}
