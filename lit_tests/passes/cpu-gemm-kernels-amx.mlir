// RUN: ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false amx=false},canonicalize)' | filecheck %s --check-prefix=VNNI

// On an AMX-INT8 target the int8 kernel's tiles run on the tile registers: the task calls one
// tile function per row count (16 rows, then the tail pieces), which zeroes NR/16 = 2
// accumulator tiles, multiplies an A tile (rows x 64 bytes) by two B tiles per K step (K = 24
// words: one full step of 16, then the tail's 8 words, 32 bytes), and stores the tiles for the
// task's epilogue. Kept out of line (noinline) so that each has one tile configuration.
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: call @ember_gemm_0_task_amx16(
// CHECK: call @ember_gemm_0_task_amx8(
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx16(%{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) attributes {passthrough = ["noinline"]}
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tilezero.internal"
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%{{.*}}, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%{{.*}}, %c32_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c8_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"(%{{.*}}, %c64_i16, %c32_i16
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx8(
// With amx=false: the vector dot product (vpdpbusd), no tile function.
// VNNI-NOT: tdpbusd
// VNNI: llvm.x86.avx512.vpdpbusd.512
func.func @linear(%x: tensor<40x96xf32>) -> tensor<40x64xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<96x64xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<40x96xf32>, tensor<96x64xi8>, tensor<64xf32>) -> tensor<40x64xf32>
  return %0 : tensor<40x64xf32>
}
