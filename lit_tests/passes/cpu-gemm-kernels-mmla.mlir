// RUN: ember-opt %s --target=aarch64:features=+neon+dotprod+i8mm --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false},canonicalize)' | filecheck %s
// RUN: ember-opt %s --target=aarch64:features=+neon+dotprod+i8mm --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-bind-weights,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},drop-equivalent-buffer-results,ember-cpu-gemm-kernels{parallel=false mmla=false},canonicalize)' | filecheck %s --check-prefix=SDOT

// On an AArch64 target with +i8mm the int8 kernel's even-row tiles run on smmla: the weights
// are packed as for sdot (NR = 8 columns, one word per column), the tile is an even MR = 12
// rows (28 accumulators would not leave room for the zipped B operands), and per block of
// 2 words (K = 24 words: 12 blocks) rows 2w and 2w + 1 of the panel are zipped into the
// operands of the column pairs (zip1, zip2), each row pair's two words of each row become
// one A operand, and 6 row pairs x 4 column pairs of smmla accumulate 2 x 2 blocks. After
// the loop, each row pair's blocks are de-interleaved into rows of 4 columns for the
// epilogue. The 1-row tail tile takes sdot.
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: lanes = 4 : i64, mc = {{[0-9]+}} : i64, mr = 12 : i64, nr = 8 : i64
// CHECK-LABEL: func.func private @ember_gemm_0_task(
// CHECK: scf.for %[[W:.*]] = %c0 to %c24 step %c2 iter_args({{.*}}) -> (vector<4xi32>, {{.*}}) {
// CHECK: %[[B0:.*]] = vector.load %{{.*}}[%{{.*}}, %[[W]], %c0] : memref<8x24x8xi32>, vector<4xi32>
// CHECK: %[[B1:.*]] = vector.load %{{.*}} : memref<8x24x8xi32>, vector<4xi32>
// CHECK: vector.shuffle %[[B0]], %[[B1]] [0, 4, 1, 5] : vector<4xi32>, vector<4xi32>
// CHECK: vector.shuffle %[[B0]], %[[B1]] [2, 6, 3, 7] : vector<4xi32>, vector<4xi32>
// CHECK: vector.from_elements %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : vector<4xi32>
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.aarch64.neon.smmla.v4i32.v16i8"
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [0, 1, 4, 5] : vector<4xi32>, vector<4xi32>
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [2, 3, 6, 7] : vector<4xi32>, vector<4xi32>
// CHECK: llvm.aarch64.neon.sdot
// With mmla=false: sdot only.
// SDOT-LABEL: func.func private @ember_gemm_0_task(
// SDOT-NOT: smmla
// SDOT: llvm.aarch64.neon.sdot
// SDOT-NOT: smmla
func.func @linear(%x: tensor<41x96xf32>) -> tensor<41x64xf32> {
  %w = "ember.weight"() {name = "fc.weight.int8"} : () -> tensor<96x64xi8>
  %s = "ember.weight"() {name = "fc.weight.int8_scale"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<41x96xf32>, tensor<96x64xi8>, tensor<64xf32>) -> tensor<41x64xf32>
  return %0 : tensor<41x64xf32>
}
