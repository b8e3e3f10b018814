// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=4 group-size=8})' | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=8 group-size=8 symmetric=true filter=layer\.0\.})' | filecheck %s --check-prefix=INT8
// RUN: ember-opt %s --split-input-file --target=host:cpu=skylake-avx512 --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=4 group-size=8},ember-pack-weights{panel=16},ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=PACKED
// RUN: ember-opt %s --split-input-file --target=host:cpu=skylake-avx512 --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=4 group-size=8},ember-pack-weights{panel=16},ember-lower-to-linalg,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize,cse)' | filecheck %s --check-prefix=KERNEL
// RUN: ember-opt %s --split-input-file --target=host:cpu=haswell --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=8 group-size=8 symmetric=true},ember-pack-weights{panel=16},ember-lower-to-linalg,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize,cse)' | filecheck %s --check-prefix=KERNEL8
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-quantize{mode=weight-only bits=3})' 2>&1 | filecheck %s --check-prefix=BITS

// Weight-only mode: a GEMM on an f32 weight [K, N] keeps its f32 lhs, bias, epilogue and
// result; its rhs becomes i8 codes [K, N] with f32 scales (and, for int4 or asymmetric int8,
// offsets) [ceil(K/G), N], one per group of G rows of K and column.
// BITS: error: ember-quantize: weight-only mode takes bits 8 or 4 and an even group-size >= 2, got bits=3 group-size=128
// CHECK-LABEL: func.func @two_layers
// CHECK-DAG: %[[Q:.*]] = "ember.weight"() {name = "layer.0.fc.weight.w4ag8"} : () -> tensor<20x40xi8>
// CHECK-DAG: %[[S:.*]] = "ember.weight"() {name = "layer.0.fc.weight.w4ag8_scale"} : () -> tensor<3x40xf32>
// CHECK-DAG: %[[O:.*]] = "ember.weight"() {name = "layer.0.fc.weight.w4ag8_offset"} : () -> tensor<3x40xf32>
// CHECK: "ember.gemm"(%arg0, %[[Q]], %{{.*}}, %arg1, %[[S]], %[[O]]) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>, rhs_bits = 4 : i64, rhs_group = 8 : i64} : (tensor<?x20xf32>, tensor<20x40xi8>, tensor<40xf32>, tensor<?x40xf32>, tensor<3x40xf32>, tensor<3x40xf32>) -> tensor<?x40xf32>
// The second layer's K (40) is a multiple of the group: 5 groups.
// CHECK: "ember.gemm"({{.*}}) {{.*}}rhs_bits = 4 : i64, rhs_group = 8 : i64} : (tensor<?x40xf32>, tensor<40x8xi8>, tensor<5x8xf32>, tensor<5x8xf32>) -> tensor<?x8xf32>
// Symmetric int8: no offsets; the filter leaves layer 1 in f32.
// INT8-LABEL: func.func @two_layers
// INT8: "ember.gemm"({{.*}}) {{.*}}operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0>, rhs_bits = 8 : i64, rhs_group = 8 : i64} : (tensor<?x20xf32>, tensor<20x40xi8>, tensor<40xf32>, tensor<?x40xf32>, tensor<3x40xf32>)
// INT8-SAME: -> tensor<?x40xf32>
// INT8: "ember.gemm"({{.*}}) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x40xf32>, tensor<40x8xf32>) -> tensor<?x8xf32>
// Packed: two 4-bit codes per byte [ceil(N/16), K/2, 16], scales and offsets in the same
// panels [ceil(N/16), groups, 16]; the kernel's spec says i4 codes in groups of 8.
// PACKED-LABEL: func.func @two_layers
// PACKED: call @[[FIRST:ember_gemm_[0-9]]]({{.*}}) : (tensor<?x20xf32>, tensor<3x10x16xi8>, tensor<3x3x16xf32>, tensor<3x3x16xf32>, tensor<40xf32>, tensor<?x40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
// PACKED: call @ember_gemm_{{[0-9]}}({{.*}}) : (tensor<?x40xf32>, tensor<1x20x16xi8>, tensor<1x5x16xf32>, tensor<1x5x16xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
// PACKED: func.func private @[[FIRST]](
// PACKED-SAME: group = 8 : i64
// PACKED-SAME: offsets = true
// PACKED-SAME: weights = "i4"
// The reference body: the nibble of k % 2, then q * scale + offset.
// PACKED: linalg.index 2
// PACKED: arith.shrui
// PACKED: arith.andi
// PACKED: arith.uitofp
// PACKED: arith.mulf
// PACKED: arith.addf
// The micro-kernel: per group, the scale and offset vectors of the panel; per pair of k, one
// byte vector: the low nibbles for k, the high ones for k + 1, each dequantized with one FMA.
// KERNEL: func.func private @ember_gemm_{{[0-9]}}_task({{.*}}memref<?x40xf32>, %arg5: memref<1x20x16xi8>, %arg6: memref<1x5x16xf32>, %arg7: memref<1x5x16xf32>
// KERNEL: %[[SUMS:.*]] = memref.alloca() : memref<{{[0-9]+}}x5xf32>
// KERNEL: memref.store %{{.*}}, %[[SUMS]]
// KERNEL: %[[SCALE:.*]] = vector.load %arg6{{.*}} : memref<1x5x16xf32>, vector<16xf32>
// KERNEL: %[[OFFSET:.*]] = vector.load %arg7{{.*}} : memref<1x5x16xf32>, vector<16xf32>
// KERNEL: vector.load %arg5{{.*}} : memref<1x20x16xi8>, vector<16xi8>
// KERNEL: arith.extui {{.*}} : vector<16xi8> to vector<16xi32>
// KERNEL-DAG: arith.shrui
// KERNEL-DAG: %[[LOW:.*]] = arith.andi
// KERNEL: %[[Q:.*]] = arith.sitofp %[[LOW]] : vector<16xi32> to vector<16xf32>
// KERNEL: %[[W:.*]] = vector.fma %[[Q]], %[[SCALE]], %[[OFFSET]] : vector<16xf32>
// KERNEL: vector.fma %{{.*}}, %[[W]], %{{.*}} : vector<16xf32>
// Tiles of up to 4 rows (GEMV) sum the raw codes times A per group, then add the sum times the
// group's scale and A's group sum (from SUMS, once per K block) times its offset.
// KERNEL: %[[A_SUM:.*]] = memref.load %[[SUMS]]
// KERNEL: %[[BROADCAST:.*]] = vector.broadcast %[[A_SUM]]
// KERNEL: %[[SCALED:.*]] = vector.fma %{{.*}}, %{{.*}}, %{{.*}} : vector<16xf32>
// KERNEL: vector.fma %[[BROADCAST]], %{{.*}}, %[[SCALED]]
// AVX2 int8: 8-lane byte vectors sign-extended straight to f32, times the scale (no offset).
// KERNEL8: func.func private @ember_gemm_{{[0-9]}}_task({{.*}}memref<?x40xf32>, %arg5: memref<1x40x16xi8>, %arg6: memref<1x5x16xf32>, %arg7: memref<?x8xf32>)
// KERNEL8: %[[SCALE:.*]] = vector.load %arg6{{.*}} : memref<1x5x16xf32>, vector<8xf32>
// KERNEL8: vector.load %arg5{{.*}} : memref<1x40x16xi8>, vector<8xi8>
// KERNEL8: %[[Q:.*]] = arith.sitofp {{.*}} : vector<8xi8> to vector<8xf32>
// KERNEL8: %[[W:.*]] = arith.mulf %[[Q]], %[[SCALE]]
// KERNEL8: vector.fma %{{.*}}, %[[W]], %{{.*}} : vector<8xf32>
func.func @two_layers(%x: tensor<?x20xf32>, %r: tensor<?x40xf32>) -> tensor<?x8xf32> {
  %w = "ember.weight"() {name = "layer.0.fc.weight"} : () -> tensor<20x40xf32>
  %b = "ember.weight"() {name = "layer.0.fc.bias"} : () -> tensor<40xf32>
  %0 = "ember.gemm"(%x, %w, %b, %r) {activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x20xf32>, tensor<20x40xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  %w2 = "ember.weight"() {name = "layer.1.fc.weight"} : () -> tensor<40x8xf32>
  %1 = "ember.gemm"(%0, %w2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<?x40xf32>, tensor<40x8xf32>) -> tensor<?x8xf32>
  return %1 : tensor<?x8xf32>
}

// -----

// Left alone: a run-time rhs, an f16 GEMM, an odd K for 4-bit codes (read two k at a time).
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: rhs_bits
// CHECK: return
func.func @left_alone(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %h: tensor<4x8xf16>, %o: tensor<4x9xf32>) -> (tensor<4x16xf32>, tensor<4x16xf16>, tensor<4x16xf32>) {
  %0 = "ember.gemm"(%a, %b) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %w = "ember.weight"() {name = "half.weight"} : () -> tensor<8x16xf16>
  %1 = "ember.gemm"(%h, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf16>, tensor<8x16xf16>) -> tensor<4x16xf16>
  %w9 = "ember.weight"() {name = "odd.weight"} : () -> tensor<9x16xf32>
  %2 = "ember.gemm"(%o, %w9) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x9xf32>, tensor<9x16xf32>) -> tensor<4x16xf32>
  return %0, %1, %2 : tensor<4x16xf32>, tensor<4x16xf16>, tensor<4x16xf32>
}
