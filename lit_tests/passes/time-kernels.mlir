// RUN: ember-opt %s --split-input-file --ember-time-kernels | filecheck %s

// ember-time-kernels calls ember_profile_enter(step, slots) before the first op doing work
// (a call, a loop, a copy) of each run of one labelled step's ops, and with step -1 before the
// return; slots is the largest step + 2 (the last slot: work after the last step's). Work that
// lost its label belongs to the step that follows it. Constants, views and allocations,
// wherever canonicalization and bufferization left them, start nothing.

// CHECK: func.func private @ember_profile_enter(i32, i32)
// CHECK-LABEL: func.func @main
// CHECK: memref.alloc
// CHECK: %[[S0:.*]] = arith.constant 0 : i32
// CHECK: %[[N0:.*]] = arith.constant 4 : i32
// CHECK: call @ember_profile_enter(%[[S0]], %[[N0]])
// CHECK-NEXT: call @kernel(
// CHECK-NEXT: memref.subview
// CHECK-NEXT: memref.copy
// CHECK: %[[S2:.*]] = arith.constant 2 : i32
// CHECK: call @ember_profile_enter(%[[S2]], %{{.*}})
// CHECK-NEXT: vector.store
// CHECK-NEXT: scf.for
// CHECK: %[[S3:.*]] = arith.constant 3 : i32
// CHECK: call @ember_profile_enter(%[[S3]], %{{.*}})
// CHECK-NEXT: memref.copy
// CHECK: %[[STOP:.*]] = arith.constant -1 : i32
// CHECK: call @ember_profile_enter(%[[STOP]], %{{.*}})
// CHECK-NEXT: return
func.func private @kernel(memref<4xf32>, memref<4xf32>)
func.func @main(%x: memref<4xf32>, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index loc("ember.kernel.2"("model.py":3:1))
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %a = memref.alloc() : memref<4xf32> loc("ember.kernel.0"("model.py":1:1))
  call @kernel(%x, %a) : (memref<4xf32>, memref<4xf32>) -> () loc("ember.kernel.0"("model.py":1:1))
  %v = memref.subview %a[0] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1]>> loc("ember.kernel.1"("model.py":2:1))
  memref.copy %a, %out : memref<4xf32> to memref<4xf32> loc("ember.kernel.0"("model.py":1:1))
  %zero = arith.constant dense<0.0> : vector<4xf32>
  vector.store %zero, %out[%c0] : memref<4xf32>, vector<4xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    %e = memref.load %a[%i] : memref<4xf32>
    memref.store %e, %out[%i] : memref<4xf32>
  } loc("ember.kernel.2"("model.py":3:1))
  memref.copy %a, %out : memref<4xf32> to memref<4xf32> loc("model.py":4:1)
  return
}

// -----

// Without labels (not a profile build) nothing changes.
// CHECK-LABEL: func.func @unlabelled
// CHECK-NOT: ember_profile_enter
func.func private @kernel(memref<4xf32>, memref<4xf32>)
func.func @unlabelled(%x: memref<4xf32>, %out: memref<4xf32>) {
  call @kernel(%x, %out) : (memref<4xf32>, memref<4xf32>) -> ()
  return
}
