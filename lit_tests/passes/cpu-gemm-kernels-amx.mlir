// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false amx=false},canonicalize)' | filecheck %s --check-prefix=VNNI

// On an AMX-INT8 target the int8 kernel's tiles run on the tile registers: the task calls tile
// functions per row count (32 rows: two A tiles, so each B tile serves both; then the tail
// pieces) and per part of K (K = 24 words: the 16-word steps, then the 8-word tail, whose
// shapes get a function of their own). A call computes a group of row tiles (its count
// argument, all of one panel) into the task's int32 buffer, paying one tile configuration for
// the group; the epilogue then reads each tile from it, four rows (eight vectors) at a time.
// The first zeroes 2 x NR/16 = 4 accumulator tiles and per step loads two A tiles (16 rows x
// 64 bytes) and both B tiles (16 columns each: all eight tile registers busy, so that no load
// waits for a product still reading its register), each used twice; the tail function reloads
// the accumulators and adds the 8-word step (32 bytes of A, 8 rows of B). Out of line
// (noinline), each keeps one tile configuration.
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<16x2x32x16xi32>
// CHECK: call @ember_gemm_0_task_amx32_k0(%{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %[[GROUP:[^,]*]], %[[GROUP]]) :
// CHECK-NEXT: call @ember_gemm_0_task_amx32_k16(%{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %[[GROUP]], %[[GROUP]]) :
// CHECK-NEXT: scf.for %[[SLOT:.*]] = %c0 to %[[GROUP]] step %c1
// CHECK: scf.for %[[ROW:.*]] = %c0 to %c32 step %c4
// CHECK-NEXT: vector.load %{{.*}}[%[[SLOT]], %c0, %[[ROW]], %c0] : memref<16x2x32x16xi32>, vector<16xi32>
// CHECK-NEXT: vector.load %{{.*}}[%[[SLOT]], %c1, %[[ROW]], %c0] : memref<16x2x32x16xi32>, vector<16xi32>
// CHECK: call @ember_gemm_0_task_amx8_k0(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %c1, %c1) :
// CHECK-NEXT: call @ember_gemm_0_task_amx8_k16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %c1, %c1) :
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k0(%{{.*}}: !llvm.ptr, %{{.*}}: index, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: index, %{{.*}}: index) attributes {passthrough = ["noinline"]}
// CHECK: scf.for
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tilezero.internal"
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c64_i16
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k16(
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c32_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c8_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"(%c16_i16, %c64_i16, %c32_i16
// With amx=false: the vector dot product (vpdpbusd), no tile function; a tile of 10 rows
// (gemm_schedule.INT8_ROWS; the registers would hold 14), and a kernel of plain rows steps k 4
// words per loop iteration.
// VNNI-LABEL: func.func @linear(
// VNNI: func.func private @ember_gemm_0(
// VNNI-SAME: ember.gemm_schedule = {{{.*}}mr = 10 : i64{{.*}}unroll = 4 : i64}
// VNNI-NOT: tdpbusd
// VNNI: llvm.x86.avx512.vpdpbusd.512
func.func @linear(%x: tensor<40x96xf32>) -> tensor<40x64xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<96x64xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<40x96xf32>, tensor<96x64xi8>, tensor<64xf32>) -> tensor<40x64xf32>
  return %0 : tensor<40x64xf32>
}

// -----

// A 3x3 int8 convolution (C = 32, stride 1) on AMX whose output rows (8 pixels) are no whole
// 16-row A tiles: the kernel packs each block of its patch rows into a row-major byte buffer
// (rows x 9 * 32 bytes), a filter row's three taps as one 96-byte run of the padded input
// viewed as [N, Hp, Wp * C] (64 + 32 bytes), and the tile functions read their A tiles from it
// (K = 72 words: 64 in 16-word steps, an 8-word tail).
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<128x288xi8>
// CHECK: memref.collapse_shape %{{.*}} {{\[\[}}0], [1], [2, 3]] : memref<2x10x10x32xi8> into memref<2x10x320xi8>
// CHECK: vector.load {{.*}} : memref<2x10x320xi8>, vector<64xi8>
// CHECK-NEXT: vector.store {{.*}}[%{{.*}}, %c0] : memref<128x288xi8>, vector<64xi8>
// CHECK: vector.load {{.*}} : memref<2x10x320xi8>, vector<32xi8>
// CHECK-NEXT: vector.store {{.*}}[%{{.*}}, %c64] : memref<128x288xi8>, vector<32xi8>
// CHECK-COUNT-4: vector.store {{.*}} : memref<128x288xi8>
// CHECK-NOT: vector.store {{.*}} : memref<128x288xi8>
// CHECK: memref.extract_aligned_pointer_as_index %{{.*}} : memref<128x288xi8>
// CHECK: call @ember_gemm_0_task_amx32_k0(
// CHECK-NEXT: call @ember_gemm_0_task_amx32_k64(
// With amx=false, one word per step: each of the tile's rows reads its own pixel, and 4
// steps spilled the broadcasts LLVM hoisted (gemm_schedule.PATCH_INT8_UNROLL); 8 rows, the
// output row's width (gemm_schedule.OUTPUT_ROW_SHARE).
// VNNI-LABEL: func.func @conv(
// VNNI: func.func private @ember_gemm_0(
// VNNI-SAME: ember.gemm_schedule = {{{.*}}mr = 8 : i64{{.*}}unroll = 1 : i64}
// VNNI-NOT: memref<128x288xi8>
// VNNI: llvm.x86.avx512.vpdpbusd.512
func.func @conv(%x: tensor<2x8x8x32xui8>) -> tensor<2x8x8x32xf32> {
  %w = "ember.weight"() {name = "conv.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<2x8x8x32xui8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<2x8x8x32xf32>
  return %0 : tensor<2x8x8x32xf32>
}

// -----

// The same convolution on 16-pixel output rows: each 16-row A tile lies in one output row, so
// the tile functions read it in place from the padded input (rows 32 bytes apart, SW * C), a
// filter row's 96-byte run in two 12-word steps (48 bytes of A, 12 rows of B); the next filter
// row's steps are one padded input row (18 * 32 bytes) further. No gathered buffer, one tile
// function (the steps divide K = 72 words), which therefore finishes its tiles itself: once
// tile u's products are issued, tile u - 1's epilogue runs from the other slot (the vector
// units busy while the tile unit multiplies), then tile u's products are stored to slot u % 2;
// the last tile's epilogue after the loop. It takes the kernel's operands (input, weight,
// scales, compensation, C) for that, and one call covers the full tiles of all the panels (its
// count: tiles x panels; then per_panel, the tiles of each).
// CHECK-LABEL: func.func @conv_in_place(
// CHECK: func.func private @ember_gemm_0_task(
// CHECK-NOT: memref<128x288xi8>
// CHECK-NOT: collapse_shape
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<2x2x32x16xi32>
// CHECK: memref.extract_aligned_pointer_as_index %{{.*}} : memref<2x18x18x32xi8>
// CHECK: call @ember_gemm_0_task_amx32_k0({{.*}}) : (!llvm.ptr, index, !llvm.ptr, !llvm.ptr, index, index, index, index, memref<2x2x32x16xi32>, memref<2x18x18x32xi8>, memref<1x72x32xi32>, memref<32xf32>, memref<32xi32>, memref<512x32xf32>) -> ()
// CHECK-NOT: call @ember_gemm_0_task_amx32_k
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k0(
// CHECK: %[[ROWS:.*]] = arith.constant 32 : i64
// CHECK: arith.divui %{{.*}}, %c256 : index
// CHECK: %[[A0:.*]] = llvm.getelementptr %arg0[
// CHECK: %[[A1:.*]] = llvm.getelementptr %arg0[
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c48_i16, %[[A0]], %[[ROWS]])
// CHECK-NEXT: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c48_i16, %[[A1]], %[[ROWS]])
// CHECK-NEXT: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c12_i16, %c64_i16
// CHECK: llvm.getelementptr %[[A0]][48] : (!llvm.ptr) -> !llvm.ptr, i8
// CHECK: llvm.getelementptr %[[A0]][576] : (!llvm.ptr) -> !llvm.ptr, i8
// CHECK: llvm.getelementptr %[[A0]][624] : (!llvm.ptr) -> !llvm.ptr, i8
// CHECK: llvm.getelementptr %[[A0]][1152] : (!llvm.ptr) -> !llvm.ptr, i8
// CHECK: llvm.getelementptr %[[A0]][1200] : (!llvm.ptr) -> !llvm.ptr, i8
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"
// CHECK-NOT: tilestored64
// CHECK: %[[LATER:.*]] = arith.cmpi ugt, %[[U:.*]], %c0 : index
// CHECK-NEXT: scf.if %[[LATER]] {
// CHECK-NEXT: %[[BEFORE:.*]] = arith.subi %[[U]], %c1 : index
// CHECK: %[[SLOT:.*]] = arith.remui %[[BEFORE]], %c2 : index
// CHECK: scf.for %[[ROW:.*]] = %c0 to %c32 step %c4
// CHECK-NEXT: vector.load %{{.*}}[%[[SLOT]], %c0, %[[ROW]], %c0] : memref<2x2x32x16xi32>
// CHECK: vector.store %{{.*}} : memref<512x32xf32>, vector<16xf32>
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// CHECK: %[[LAST:.*]] = arith.subi %{{.*}}, %c1 : index
// CHECK: arith.remui %[[LAST]], %c2 : index
// CHECK: vector.store %{{.*}} : memref<512x32xf32>, vector<16xf32>
// CHECK: return
func.func @conv_in_place(%x: tensor<2x16x16x32xui8>) -> tensor<2x16x16x32xf32> {
  %w = "ember.weight"() {name = "conv.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<2x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>) -> tensor<2x16x16x32xf32>
  return %0 : tensor<2x16x16x32xf32>
}

// -----

// A residual block's second conv: its residual is the codes its shortcut wrote (ui8, zero
// point 3), which each tile reads a vector of bytes at a time and dequantizes in registers
// ((float(code) - 3) * 0.125) before the addition and the closing ReLU; the result is codes.
// CHECK-LABEL: func.func @conv_residual_codes(
// CHECK: func.func private @ember_gemm_0_task(
// CHECK: vector.load %{{.*}} : memref<128x32xi8>, vector<16xi8>
// CHECK-NEXT: arith.uitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK-NEXT: arith.subf %{{.*}}, %[[ZP:.*]] : vector<16xf32>
// CHECK-NEXT: arith.mulf %{{.*}}, %[[SCALE:.*]] : vector<16xf32>
// VNNI-LABEL: func.func @conv_residual_codes(
// VNNI: func.func private @ember_gemm_0_task(
// VNNI: llvm.x86.avx512.vpdpbusd.512
// VNNI: vector.load %{{.*}} : memref<128x32xi8>, vector<16xi8>
// VNNI-NEXT: arith.uitofp %{{.*}} : vector<16xi8> to vector<16xf32>
func.func @conv_residual_codes(%x: tensor<2x8x8x32xui8>, %r: tensor<2x8x8x32xui8>) -> tensor<2x8x8x32xui8> {
  %w = "ember.weight"() {name = "conv.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "conv.scale"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w, %s, %r) {activation = "none", output_activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, residual_scale = 0.125 : f32, residual_zero_point = 3 : i64, result_scale = 0.25 : f32, result_zero_point = 0 : i64, result_range = array<i64: 0, 255>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<2x8x8x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<2x8x8x32xui8>) -> tensor<2x8x8x32xui8>
  return %0 : tensor<2x8x8x32xui8>
}
