// RUN: ember-opt %s --ember-widen-bool-memrefs | filecheck %s
// RUN: ember-opt %s --ember-widen-bool-memrefs --finalize-memref-to-llvm --convert-scf-to-cf --convert-arith-to-llvm --convert-cf-to-llvm --convert-func-to-llvm --reconcile-unrealized-casts | filecheck %s --check-prefix=LLVM

// ember-widen-bool-memrefs stores booleans as bytes: every memref<...xi1> becomes
// memref<...xi8> (arguments, results, allocations, views, globals); loads are truncated back
// to i1 and stores extended from it. MLIR 22's memref-to-LLVM lowering aborts on i1 memrefs,
// so without this pass the LLVM run line would crash.

// CHECK-LABEL: func.func @select(
// CHECK-SAME: %[[M:[^:]*]]: memref<4xi8>, %{{.*}}: memref<4xf32>, %{{.*}}: memref<4xf32>, %[[OUT:[^:]*]]: memref<4xi8>)
// CHECK: %[[BYTE:.*]] = memref.load %[[M]][%{{.*}}] : memref<4xi8>
// CHECK: %[[BIT:.*]] = arith.trunci %[[BYTE]] : i8 to i1
// CHECK: arith.select %[[BIT]]
// CHECK: %[[NOT:.*]] = arith.xori %[[BIT]]
// CHECK: %[[WIDE:.*]] = arith.extui %[[NOT]] : i1 to i8
// CHECK: memref.store %[[WIDE]], %[[OUT]][%{{.*}}] : memref<4xi8>
// LLVM-LABEL: llvm.func @select(
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> i8
// LLVM: llvm.trunc %{{.*}} : i8 to i1
// LLVM: llvm.zext %{{.*}} : i1 to i8
// LLVM: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
func.func @select(%m: memref<4xi1>, %x: memref<4xf32>, %y: memref<4xf32>, %out: memref<4xi1>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %true = arith.constant true
  scf.for %i = %c0 to %c4 step %c1 {
    %b = memref.load %m[%i] : memref<4xi1>
    %a = memref.load %x[%i] : memref<4xf32>
    %c = memref.load %y[%i] : memref<4xf32>
    %s = arith.select %b, %a, %c : f32
    memref.store %s, %y[%i] : memref<4xf32>
    %n = arith.xori %b, %true : i1
    memref.store %n, %out[%i] : memref<4xi1>
  }
  return
}

// Allocations, views and constant globals change type too; float memrefs do not.
// CHECK: memref.global "private" constant @mask : memref<2x2xi8> = dense<{{\[\[}}1, 0], [0, 1]]>
// CHECK-LABEL: func.func @views(
// CHECK-SAME: -> memref<4xi8>
// CHECK: memref.get_global @mask : memref<2x2xi8>
// CHECK: memref.collapse_shape %{{.*}} {{\[\[}}0, 1]] : memref<2x2xi8> into memref<4xi8>
// CHECK: memref.alloc() : memref<4xi8>
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<4xi8> to memref<4xi8>
// CHECK: memref.alloc() : memref<3xf32>
// CHECK-NOT: xi1>
memref.global "private" constant @mask : memref<2x2xi1> = dense<[[true, false], [false, true]]>
func.func @views() -> memref<4xi1> {
  %g = memref.get_global @mask : memref<2x2xi1>
  %flat = memref.collapse_shape %g [[0, 1]] : memref<2x2xi1> into memref<4xi1>
  %copy = memref.alloc() : memref<4xi1>
  memref.copy %flat, %copy : memref<4xi1> to memref<4xi1>
  %f = memref.alloc() : memref<3xf32>
  memref.dealloc %f : memref<3xf32>
  return %copy : memref<4xi1>
}
