// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-conv-to-gemm,ember-fold-quantized-ops)' | filecheck %s
// RUN: ember-opt %s --target=host:cpu=znver4 --pass-pipeline='builtin.module(ember-conv-to-gemm,ember-fold-quantized-ops,ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s --check-prefix=KERNEL

// A convolution left in floating point before an int8 layer (a CNN's RGB stem under static
// quantization with `exclude="stem"`) writes the next layer's codes itself. The CPU stage
// table runs ember-fold-quantized-ops again after ember-conv-to-gemm, where the conv has
// become an ember.gemm on a weight: the quantize moves into that GEMM's epilogue.
// CHECK-LABEL: func.func @stem
// CHECK: %[[Y:.*]] = "ember.gemm"(%{{.*}}) {activation = "relu", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1>, {{.*}}result_range = array<i64: 0, 255>, result_scale = 5.000000e-02 : f32, result_zero_point = 0 : i64} : (tensor<2x10x10x3xf32>, tensor<27x32xf32>, tensor<32xf32>) -> tensor<2x8x8x32xui8>
// CHECK-NOT: ember.quantize
// CHECK: return %[[Y]]

// The f32 kernel takes all of K in one block (C cannot hold partial sums), and quantizes the
// accumulators in registers after the epilogue: clamped below, rounded to integers
// (llvm.intr.lrint), clamped above with an unsigned min (x86's saturating narrow), stored as
// bytes.
// KERNEL: call @ember_gemm_0({{.*}}) : (memref<2x10x10x3xf32>, memref<{{.*}}xf32>, memref<32xf32>, memref<128x32xi8>) -> ()
// KERNEL-LABEL: func.func private @ember_gemm_0(
// KERNEL-SAME: ember.gemm_kernel = {{{.*}}out_codes = array<i64: 0, 0, 255>, out_scale = 0.050{{[0-9]*}} : f64
// KERNEL-SAME: kc = 27 : i64
// KERNEL-LABEL: func.func private @ember_gemm_0_task(
// KERNEL: vector.fma
// KERNEL: arith.cmpf olt
// KERNEL: %[[LOW:.*]] = arith.select
// KERNEL: %[[INT:.*]] = llvm.intr.lrint(%[[LOW]]) : (vector<16xf32>) -> vector<16xi32>
// KERNEL: %[[HIGH:.*]] = arith.minui %[[INT]], %{{.*}} : vector<16xi32>
// KERNEL: arith.trunci %[[HIGH]] : vector<16xi32> to vector<16xi8>
// KERNEL: vector.store %{{.*}} : memref<128x32xi8>, vector<16xi8>
func.func @stem(%x: tensor<2x8x8x3xf32>) -> tensor<2x8x8x32xui8> {
  %w = "ember.weight"() {name = "stem.weight"} : () -> tensor<3x3x3x32xf32>
  %b = "ember.weight"() {name = "stem.bias"} : () -> tensor<32xf32>
  %y = "ember.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<2x8x8x3xf32>, tensor<3x3x3x32xf32>, tensor<32xf32>) -> tensor<2x8x8x32xf32>
  %q = "ember.quantize"(%y) {scale = 0.05 : f32, zero_point = 0 : i64, quant_min = 0 : i64, quant_max = 255 : i64} : (tensor<2x8x8x32xf32>) -> tensor<2x8x8x32xui8>
  return %q : tensor<2x8x8x32xui8>
}
