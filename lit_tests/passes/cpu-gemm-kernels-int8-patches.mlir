// RUN: ember-opt %s --split-input-file --target=host:cpu=znver4 --pass-pipeline='builtin.module(ember-cpu-gemm-kernels{mr=3 parallel=false},canonicalize,cse)' | filecheck %s

// A static int8 convolution (3x3, stride 1, 8 channels: 2 words a tap) reading its patches in
// place and writing codes. Its tiles stay within one output row (OW = 4): the rows of the
// block are walked output row by output row, each row's run in 3-row tiles and then smaller
// ones, so a tile's rows are one input pixel and the next two (same image, same input row,
// columns + 1 and + 2) and the three word loads share their leading indices. The spec's
// lhs_scale is A's one scale: there is no row-scale argument, and the column scales are
// multiplied by it once per tile. The ReLU before the quantization is left out: its codes
// (zero point 0, lowest code 0) are clamped at 0 anyway, and no 0.0 zero point is added.
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK-SAME: %arg4: memref<2x6x6x8xi8>, %arg5: memref<1x18x16xi32>, %arg6: memref<16xf32>, %arg7: memref<16xi32>, %arg8: memref<16xf32>, %arg9: memref<32x16xi8>)
// CHECK: %[[FIRST:.*]] = arith.divui %{{.*}}, %c4 : index
// CHECK: %[[LAST:.*]] = arith.ceildivui %{{.*}}, %c4 : index
// CHECK: scf.for %{{.*}} = %[[FIRST]] to %[[LAST]] step %c1
// CHECK: %[[COL:.*]] = arith.remui %{{.*}}, %c4 : index
// CHECK: %[[COL1:.*]] = arith.addi %[[COL]], %c1 : index
// CHECK: %[[COL2:.*]] = arith.addi %[[COL]], %c2 : index
// CHECK: scf.for {{.*}} -> (vector<16xi32>, vector<16xi32>, vector<16xi32>)
// CHECK: arith.addi %[[COL]], %{{.*}} : index
// CHECK: arith.addi %[[COL1]], %{{.*}} : index
// CHECK: arith.addi %[[COL2]], %{{.*}} : index
// CHECK: vector.load %arg4[%[[IMG:.*]], %[[ROW:.*]], %{{.*}}, %{{.*}}] : memref<2x6x6x8xi8>, vector<4xi8>
// CHECK: llvm.x86.avx512.vpdpbusd.512
// CHECK: vector.load %arg4[%[[IMG]], %[[ROW]], %{{.*}}, %{{.*}}] : memref<2x6x6x8xi8>, vector<4xi8>
// CHECK: llvm.x86.avx512.vpdpbusd.512
// CHECK: vector.load %arg4[%[[IMG]], %[[ROW]], %{{.*}}, %{{.*}}] : memref<2x6x6x8xi8>, vector<4xi8>
// CHECK: llvm.x86.avx512.vpdpbusd.512
// CHECK: %[[COLS:.*]] = vector.load %arg6
// CHECK-NEXT: %[[BOTH:.*]] = arith.mulf %[[COLS]], %{{.*}} : vector<16xf32>
// CHECK-NOT: memref.load
// CHECK: arith.mulf %{{.*}}, %[[BOTH]]
// CHECK: vector.load %arg8
// CHECK-NOT: arith.cmpf
// CHECK: %[[Q:.*]] = arith.mulf
// CHECK-NEXT: arith.cmpf olt, %[[Q]]
// CHECK: llvm.intr.lrint
// CHECK-NOT: arith.addi
// CHECK: arith.minui
// The tail tiles: the run's last row in a 1-row tile.
// CHECK: scf.if
func.func private @ember_gemm_0(%a: memref<2x6x6x8xi8>, %b: memref<1x18x16xi32>, %bs: memref<16xf32>, %comp: memref<16xi32>, %bias: memref<16xf32>, %c: memref<32x16xi8>) attributes {ember.gemm_kernel = {activation = "relu", bias = true, int8 = "u8", k = 18 : i64, m = 32 : i64, n = 16 : i64, nr = 16 : i64, lhs_scale = 5.000000e-01 : f64, out_scale = 2.500000e-01 : f64, out_codes = array<i64: 0, 0, 255>, patches = array<i64: 6, 6, 8, 3, 3, 1, 1, 1, 1>, residual = false}} {
  return
}

// -----

// Codes with zero point 3 and lowest code 0: a negative value's code can be below the zero
// point, so the ReLU stays before the quantization, and the zero point is added (to the
// rounded integers).
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: vector.load %arg8
// CHECK: arith.cmpf olt
// CHECK: arith.select
// CHECK: llvm.intr.lrint
// CHECK-NEXT: arith.addi
// CHECK-NEXT: arith.minui
func.func private @ember_gemm_0(%a: memref<2x6x6x8xi8>, %b: memref<1x18x16xi32>, %bs: memref<16xf32>, %comp: memref<16xi32>, %bias: memref<16xf32>, %c: memref<32x16xi8>) attributes {ember.gemm_kernel = {activation = "relu", bias = true, int8 = "u8", k = 18 : i64, m = 32 : i64, n = 16 : i64, nr = 16 : i64, lhs_scale = 5.000000e-01 : f64, out_scale = 2.500000e-01 : f64, out_codes = array<i64: 3, 0, 255>, patches = array<i64: 6, 6, 8, 3, 3, 1, 1, 1, 1>, residual = false}} {
  return
}
