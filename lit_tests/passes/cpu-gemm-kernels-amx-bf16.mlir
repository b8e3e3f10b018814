// RUN: ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: not ember-opt %s --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false amx=false},canonicalize)' 2>&1 | filecheck %s --check-prefix=NOAMX
// RUN: ember-opt %s --target=host:cpu=cascadelake --pass-pipeline='builtin.module(ember-pack-weights)' | filecheck %s --check-prefix=NOPAIRS

// A bf16 Linear on an AMX-BF16 target: ember-pack-weights stores the weight as i32 words of
// two consecutive k (K = 64: 32 words), the kernel's tiles multiply them with tdpbf16ps into
// f32 (the task's product buffer is f32), A's bf16 rows read in place a pair per word (128
// bytes a row), and the epilogue rounds to bf16 at the store. With amx=false such a kernel
// cannot be generated (its B is in the tiles' pair layout): an error.
// CHECK-LABEL: func.func @bf16_linear(
// CHECK-SAME: memref<1x32x32xi32> {ember.weight = "fc.weight.pairs32"}
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<16x2x32x16xf32>
// CHECK: call @ember_gemm_0_task_amx32_k0(
// CHECK: vector.load %{{.*}} : memref<16x2x32x16xf32>, vector<16xf32>
// CHECK: arith.truncf %{{.*}} : vector<16xf32> to vector<16xbf16>
// CHECK-LABEL: func.func private @ember_gemm_0_task_amx32_k0(
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.tdpbf16ps.internal"
// NOAMX: error: {{.*}}a kernel of bf16 pairs needs AMX-BF16 tiles (pack with the same target)
// Without AMX-BF16 (cascadelake) the bf16 weight keeps its plain 16-bit panels.
// NOPAIRS: "ember.weight"() {name = "fc.weight.packed32"} : () -> tensor<1x64x32xbf16>
// NOPAIRS-NOT: rhs_pairs
func.func @bf16_linear(%x: tensor<40x64xbf16>) -> tensor<40x32xbf16> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<64x32xbf16>
  %0 = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<40x64xbf16>, tensor<64x32xbf16>) -> tensor<40x32xbf16>
  return %0 : tensor<40x32xbf16>
}
