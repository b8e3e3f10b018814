// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false amx=false},canonicalize)' | filecheck %s --check-prefix=VDP
// RUN: ember-opt %s --split-input-file --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-pack-weights)' | filecheck %s --check-prefix=NOPAIRS
// RUN: ember-opt %s --split-input-file --target=aarch64:features=+neon+bf16 --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s --check-prefix=BFDOT
// RUN: ember-opt %s --split-input-file --target=aarch64 --pass-pipeline='builtin.module(ember-pack-weights)' | filecheck %s --check-prefix=NOPAIRS-NEON
// RUN: not ember-opt %s --split-input-file --target=host:cpu=haswell --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' 2>&1 | filecheck %s --check-prefix=NOBF16
// A bf16 Linear on an AMX-BF16 target: ember-pack-weights stores the weight as i32 words of
// two consecutive k (K = 64: 32 words), the kernel's tiles multiply them with tdpbf16ps into
// f32 (the task's product buffer is f32), A's bf16 rows read in place a pair per word (128
// bytes a row), and the epilogue rounds to bf16 at the store: in the tile function itself (K is
// one part), which finishes each tile after the next one's products (two f32 product slots).
// With amx=false the vector kernel multiplies the same pairs with vdpbf16ps (AVX512_BF16), A's
// words packed per block.
// CHECK-LABEL: func.func @bf16_linear(
// CHECK-SAME: memref<1x32x32xi32> {ember.weight = "fc.weight.pairs32"}
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<2x2x32x16xf32>
// CHECK: call @ember_gemm_0_task_amx32_k0(
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k0(
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tdpbf16ps.internal"
// CHECK: vector.load %{{.*}} : memref<2x2x32x16xf32>, vector<16xf32>
// CHECK: arith.truncf %{{.*}} : vector<16xf32> to vector<16xbf16>
// VDP-LABEL: func.func private @ember_gemm_0_task(
// VDP: memref.alloca() {alignment = 64 : i64} : memref<{{.*}}x32x{{.*}}xi32>
// VDP: vector.load %{{.*}} : memref<40x64xbf16>, vector<2xbf16>
// VDP: llvm.call_intrinsic "llvm.x86.avx512bf16.dpbf16ps.512"
// VDP-NOT: tdpbf16ps
// AArch64 with +bf16: the pairs in 8-column panels (NR a multiple of BFDOT's 4 lanes), each
// k step one `bfdot v.4s, v.8h, v.8h` per 4 columns; plain NEON keeps 16-bit panels.
// BFDOT-LABEL: func.func @bf16_linear(
// BFDOT-SAME: memref<4x32x8xi32> {ember.weight = "fc.weight.pairs8"}
// BFDOT-LABEL: func.func private @ember_gemm_0_task(
// BFDOT: llvm.call_intrinsic "llvm.aarch64.neon.bfdot.v4f32.v8bf16"
// NOPAIRS-NEON: "ember.weight"() {name = "fc.weight.packed8"} : () -> tensor<4x64x8xbf16>
// Without AMX-BF16 (cascadelake) the bf16 weight keeps its plain 16-bit panels.
// NOPAIRS: "ember.weight"() {name = "fc.weight.packed32"} : () -> tensor<1x64x32xbf16>
// NOPAIRS-NOT: rhs_pairs
func.func @bf16_linear(%x: tensor<40x64xbf16>) -> tensor<40x32xbf16> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<64x32xbf16>
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<40x64xbf16>, tensor<64x32xbf16>) -> tensor<40x32xbf16>
  return %0 : tensor<40x32xbf16>
}

// -----

// A kernel of bf16 pairs on a target with neither AMX-BF16 nor AVX512_BF16 (haswell) has no
// dot product to run on: an error naming what it needs.
// NOBF16: error: {{.*}}a kernel of bf16 pairs needs AMX-BF16, AVX512_BF16 or AArch64 BF16 (pack with the same target)
func.func private @ember_gemm_9(%a: memref<32x64xbf16>, %b: memref<1x32x32xi32>, %c: memref<32x32xbf16>) attributes {ember.gemm_kernel = {activation = "none", bias = false, k = 32 : i64, m = 32 : i64, n = 32 : i64, nr = 32 : i64, residual = false, pairs = true}} {
  return
}

// -----

// A bf16 3x3 convolution (C = 32) on AMX-BF16: its weight [288, 32] is packed in pairs
// (144 words; C even, so no pair spans two taps), each block of patch rows is gathered into a
// row-major bf16 buffer (a filter row's three taps as one run of 96 channels: 32 + 32 + 32
// bf16, 64 bytes a vector) that the A tiles read.
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<{{[0-9]+}}x288xbf16>
// CHECK: vector.load {{.*}} : memref<2x10x320xbf16>, vector<32xbf16>
// CHECK: call @ember_gemm_0_task_amx32_k0(
// VDP-LABEL: func.func private @ember_gemm_0_task(
// VDP: llvm.call_intrinsic "llvm.x86.avx512bf16.dpbf16ps.512"
func.func @bf16_conv(%x: tensor<2x10x10x32xbf16>) -> tensor<2x8x8x32xbf16> {
  %w = "ember.weight"() {name = "conv.weight"} : () -> tensor<288x32xbf16>
  %0 = "ember.gemm"(%x, %w) {activation = "relu", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x10x10x32xbf16>, tensor<288x32xbf16>) -> tensor<2x8x8x32xbf16>
  return %0 : tensor<2x8x8x32xbf16>
}
