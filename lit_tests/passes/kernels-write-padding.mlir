// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --pass-pipeline='builtin.module(ember-pack-weights,ember-lower-to-linalg,canonicalize,ember-kernels-write-padding,canonicalize)' | filecheck %s
// RUN: ember-opt %s --split-input-file --target=host:cpu=sapphirerapids --ember-pack-weights --ember-lower-to-linalg --canonicalize --ember-bind-weights --stages=bufferize,kernels | filecheck %s --check-prefix=KERNELS

// A ResNet block in int8 codes: conv0's result is padded for conv1 (by its code of 0.0, 0)
// and added by conv2 as its residual; conv1's is padded for conv2 only (by 5). Each kernel
// then writes the padded tensor itself (out_padding = OH, OW, top, left, Hp, Wp): its
// destination is a new tensor whose four border slabs are filled with the pad's value, and
// conv2 reads its residual from conv0's padded tensor (residual_padding). No tensor.pad is
// left. The new kernels' reference bodies call the old ones: conv0's inserts its [M, N] rows
// into the destination's interior, conv2's takes the residual's interior as rows.
// CHECK-LABEL: func.func @block(
// CHECK: tensor.pad %arg0
// CHECK-NOT: tensor.pad
// CHECK: %[[E0:.*]] = tensor.empty() : tensor<1x18x18x32xi8>
// CHECK: linalg.fill ins(%c0_i8{{.*}} : i8) outs(%{{.*}} : tensor<1x1x18x32xi8>)
// CHECK: %[[D0:.*]] = tensor.insert_slice %{{.*}}[0, 1, 17, 0] [1, 16, 1, 32]
// CHECK: %[[C0:.*]] = call @[[K0:.*]](%{{.*}}, %[[D0]]) : ({{.*}}) -> tensor<1x18x18x32xi8>
// CHECK: linalg.fill ins(%c5_i8{{.*}} : i8)
// CHECK: %[[D1:.*]] = tensor.insert_slice %{{.*}}[0, 1, 17, 0] [1, 16, 1, 32]
// CHECK: %[[C1:.*]] = call @[[K1:.*]](%[[C0]], {{.*}}, %[[D1]]) : ({{.*}}) -> tensor<1x18x18x32xi8>
// CHECK: %[[C2:.*]] = call @[[K2:.*]](%[[C1]], {{.*}}, %[[C0]], %{{.*}}) : ({{.*}}) -> tensor<256x32xi8>
// CHECK: tensor.expand_shape %[[C2]]
// CHECK-DAG: func.func private @[[K0]]({{.*}}) -> tensor<1x18x18x32xi8> attributes {ember.gemm_kernel = {{{.*}}out_padding = array<i64: 16, 16, 1, 1, 18, 18>
// CHECK-DAG: func.func private @[[K2]]({{.*}}) -> tensor<256x32xi8> attributes {ember.gemm_kernel = {{{.*}}residual_padding = array<i64: 16, 16, 1, 1, 18, 18>
// After bufferization and the kernels, conv0's and conv1's kernels store each row at its pixel
// of the padded buffer (row / 256, 1 + row / 16 % 16, 1 + row % 16), conv2's reads its
// residual there; the original kernels are gone (symbol-dce), and nothing is copied but the
// block's input into its padded buffer and its result into the result argument.
// KERNELS-LABEL: func.func @block(
// KERNELS: memref.copy %arg0
// KERNELS-NOT: memref.copy
// KERNELS: call @{{.*}}(%{{.*}}, %[[P0:.*]]) : ({{.*}}, memref<1x18x18x32xi8>) -> ()
// KERNELS-NOT: memref.copy
// KERNELS: call @{{.*}}(%[[P0]], {{.*}}, %[[P1:.*]]) : ({{.*}}, memref<1x18x18x32xi8>) -> ()
// KERNELS-NOT: memref.copy
// KERNELS: call @{{.*}}(%[[P1]], {{.*}}, %[[P0]], %{{.*}}) : ({{.*}}, memref<1x18x18x32xi8>, memref<256x32xi8>) -> ()
// KERNELS-NEXT: memref.expand_shape
// KERNELS-NEXT: memref.copy %{{.*}}, %arg9
// KERNELS-COUNT-3: func.func private @ember_gemm_{{[0-9]*}}(
// KERNELS-NOT: func.func private @ember_gemm_{{[0-9]*}}(
// KERNELS: func.func private @ember_gemm_{{[0-9]*}}_task_amx32_k0(
// KERNELS: vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<1x18x18x32xi8>, vector<16xi8>
// KERNELS: vector.load %{{.*}} : memref<1x18x18x32xi8>, vector<16xi8>
// KERNELS-NEXT: arith.uitofp
func.func @block(%x: tensor<1x16x16x32xui8>) -> tensor<1x16x16x32xui8> {
  %w0 = "ember.weight"() {name = "c0.matrix"} : () -> tensor<288x32xi8>
  %w1 = "ember.weight"() {name = "c1.matrix"} : () -> tensor<288x32xi8>
  %w2 = "ember.weight"() {name = "c2.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "scale"} : () -> tensor<32xf32>
  %b = "ember.weight"() {name = "bias"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w0, %s, %b) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.25 : f32, result_zero_point = 0 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x16x16x32xui8>
  %1 = "ember.qgemm"(%0, %w1, %s, %b) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.125 : f32, result_zero_point = 5 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x16x16x32xui8>
  %2 = "ember.qgemm"(%1, %w2, %s, %b, %0) {activation = "none", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.125 : f32, lhs_zero_point = 5 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>, output_activation = "relu", residual_scale = 0.25 : f32, residual_zero_point = 0 : i64, result_range = array<i64: 0, 255>, result_scale = 0.5 : f32, result_zero_point = 0 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>, tensor<1x16x16x32xui8>) -> tensor<1x16x16x32xui8>
  return %2 : tensor<1x16x16x32xui8>
}

// -----

// A block's output read by the next block's 3x3 stride-2 conv (padded) and by its 1x1 stride-2
// downsampling conv (unpadded): the producer writes the padded tensor, and the downsampling
// kernel reads its patches from the interior (patch_origin = top, left, OH, OW, its patches
// now the padded tensor's 18 x 18), its reference body slicing the interior out.
// CHECK-LABEL: func.func @downsample(
// CHECK: %[[P:.*]] = call @{{.*}} -> tensor<1x18x18x32xi8>
// CHECK: call @{{.*}}(%[[P]], {{.*}}) -> tensor<64x64xi8>
// CHECK: call @[[DOWN:.*]](%[[P]], {{.*}}) -> tensor<64x64xi8>
// CHECK: func.func private @[[DOWN]]({{.*}}) -> tensor<64x64xi8> attributes {ember.gemm_kernel = {{{.*}}patch_origin = array<i64: 1, 1, 8, 8>, patches = array<i64: 18, 18, 32, 1, 1, 2, 2, 1, 1>
// CHECK: tensor.extract_slice %arg0[0, 1, 1, 0] [1, 16, 16, 32] [1, 1, 1, 1]
// KERNELS-LABEL: func.func @downsample(
// KERNELS: memref.copy %arg0
// KERNELS-NOT: memref.copy %{{.*}} : memref<1x16x16x32xi8> to
func.func @downsample(%x: tensor<1x16x16x32xui8>) -> (tensor<1x8x8x64xui8>, tensor<1x8x8x64xui8>) {
  %w0 = "ember.weight"() {name = "c0.matrix"} : () -> tensor<288x32xi8>
  %w1 = "ember.weight"() {name = "c1.matrix"} : () -> tensor<288x64xi8>
  %wd = "ember.weight"() {name = "down.matrix"} : () -> tensor<32x64xi8>
  %s = "ember.weight"() {name = "scale"} : () -> tensor<32xf32>
  %b = "ember.weight"() {name = "bias"} : () -> tensor<32xf32>
  %s64 = "ember.weight"() {name = "scale64"} : () -> tensor<64xf32>
  %b64 = "ember.weight"() {name = "bias64"} : () -> tensor<64xf32>
  %0 = "ember.qgemm"(%x, %w0, %s, %b) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.25 : f32, result_zero_point = 0 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x16x16x32xui8>
  %1 = "ember.qgemm"(%0, %w1, %s64, %b64) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 2, 2, 1, 1, 1, 1>, lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.125 : f32, result_zero_point = 5 : i64} : (tensor<1x16x16x32xui8>, tensor<288x64xi8>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x8x8x64xui8>
  %2 = "ember.qgemm"(%0, %wd, %s64, %b64) {activation = "none", lhs_encoding = "u8", lhs_patches = array<i64: 1, 1, 2, 2, 1, 1, 0, 0>, lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.125 : f32, result_zero_point = 7 : i64} : (tensor<1x16x16x32xui8>, tensor<32x64xi8>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x8x8x64xui8>
  return %1, %2 : tensor<1x8x8x64xui8>, tensor<1x8x8x64xui8>
}

// -----

// A result that is padded for a convolution but also returned keeps its [M, N] kernel: the
// pad stays (a copy into the padded buffer), no kernel writes padding.
// CHECK-LABEL: func.func @also_returned(
// CHECK: %[[R:.*]] = call @ember_gemm_{{.*}} -> tensor<256x32xi8>
// CHECK: tensor.pad
// CHECK-NOT: out_padding
// KERNELS-LABEL: func.func @also_returned(
func.func @also_returned(%x: tensor<1x16x16x32xui8>) -> (tensor<1x16x16x32xui8>, tensor<1x16x16x32xui8>) {
  %w0 = "ember.weight"() {name = "c0.matrix"} : () -> tensor<288x32xi8>
  %w1 = "ember.weight"() {name = "c1.matrix"} : () -> tensor<288x32xi8>
  %s = "ember.weight"() {name = "scale"} : () -> tensor<32xf32>
  %b = "ember.weight"() {name = "bias"} : () -> tensor<32xf32>
  %0 = "ember.qgemm"(%x, %w0, %s, %b) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.25 : f32, result_zero_point = 0 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x16x16x32xui8>
  %1 = "ember.qgemm"(%0, %w1, %s, %b) {activation = "relu", lhs_encoding = "u8", lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.25 : f32, lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>, result_range = array<i64: 0, 255>, result_scale = 0.125 : f32, result_zero_point = 5 : i64} : (tensor<1x16x16x32xui8>, tensor<288x32xi8>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x16x16x32xui8>
  return %0, %1 : tensor<1x16x16x32xui8>, tensor<1x16x16x32xui8>
}
