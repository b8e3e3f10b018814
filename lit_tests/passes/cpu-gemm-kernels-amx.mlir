// RUN: ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false amx=false},canonicalize)' | filecheck %s --check-prefix=VNNI

// On an AMX-INT8 target the int8 kernel's tiles run on the tile registers: the task calls tile
// functions per row count (32 rows: two A tiles, so each B tile serves both; then the tail
// pieces) and per part of K (K = 24 words: the 16-word steps, then the 8-word tail, whose
// shapes get a function of their own). The first zeroes 2 x NR/16 = 4 accumulator tiles and
// per step loads two A tiles (16 rows x 64 bytes) and, per 16 columns, one B tile used twice;
// the tail function reloads the accumulators and adds the 8-word step (32 bytes of A, 8 rows
// of B). Out of line (noinline), each keeps one tile configuration.
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: call @ember_gemm_0_task_amx32_k0(
// CHECK-NEXT: call @ember_gemm_0_task_amx32_k16(
// CHECK: call @ember_gemm_0_task_amx8_k0(
// CHECK-NEXT: call @ember_gemm_0_task_amx8_k16(
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k0(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) attributes {passthrough = ["noinline"]}
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tilezero.internal"
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c64_i16
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k16(
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c16_i16, %c32_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%c8_i16, %c64_i16
// CHECK: llvm.call_intrinsic "llvm.x86.tdpbusd.internal"(%c16_i16, %c64_i16, %c32_i16
// With amx=false: the vector dot product (vpdpbusd), no tile function.
// VNNI-NOT: tdpbusd
// VNNI: llvm.x86.avx512.vpdpbusd.512
func.func @linear(%x: tensor<40x96xf32>) -> tensor<40x64xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<96x64xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<40x96xf32>, tensor<96x64xi8>, tensor<64xf32>) -> tensor<40x64xf32>
  return %0 : tensor<40x64xf32>
}
