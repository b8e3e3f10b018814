// RUN: ember-opt %s --target=host:cpu=icelake-server,l3_kb=1024 --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s --check-prefix=STREAM
// RUN: ember-opt %s --target=host:cpu=icelake-server,l3_kb=65536 --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s --check-prefix=KEEP

// An int8 Linear's f32 result (1024 x 64: 256 KiB, written in one K block): larger than an
// eighth of a 1 MiB L3 (gemm_schedule.STREAM_C_SHARE), the kernel stores it non-temporally
// (no read for ownership of its lines; the schedule records stream_c). Below the share (a 64
// MiB L3) the stores are plain ones.
// STREAM: func.func private @ember_gemm_0(
// STREAM-SAME: stream_c = true
// STREAM: func.func private @ember_gemm_0_task(
// STREAM: vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {nontemporal = true} : memref<1024x64xf32>, vector<16xf32>
// KEEP: func.func private @ember_gemm_0(
// KEEP-NOT: stream_c = true
// KEEP: func.func private @ember_gemm_0_task(
// KEEP-NOT: nontemporal
func.func @linear(%x: tensor<1024x96xf32>) -> tensor<1024x64xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<96x64xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1024x96xf32>, tensor<96x64xi8>, tensor<64xf32>) -> tensor<1024x64xf32>
  return %0 : tensor<1024x64xf32>
}
