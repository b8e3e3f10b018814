// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm)' | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm{im2col=false})' | filecheck %s --check-prefix=NOIM2COL
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm{enabled=false})' | filecheck %s --check-prefix=OFF
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm{min-channels=16})' | filecheck %s --check-prefix=MINC
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm,ember-pack-weights{panel=16},ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=LOWER
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-conv-to-gemm,ember-lower-to-linalg,canonicalize,cse)' | filecheck %s --check-prefix=UNPACKED

// ember-conv-to-gemm turns an NHWC groups=1 conv2d with a weight filter [KH, KW, C, F] into an
// ember.gemm with the filter as a [KH*KW*C, F] weight (`<name>.gemm`) and the conv's epilogue.
// Without the CPU kernel (ember-pack-weights not run), lower-to-linalg materializes the patches.

// 1x1 stride 1: the input itself is the GEMM's (batched) lhs; bias, residual and relu are kept.
// CHECK-LABEL: func.func @pointwise
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "c.weight.gemm"} : () -> tensor<8x16xf32>
// CHECK-DAG: %[[B:.*]] = "ember.weight"() {name = "c.bias"} : () -> tensor<16xf32>
// CHECK: "ember.gemm"(%arg0, %[[W]], %[[B]], %arg1) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} : (tensor<?x5x7x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<?x5x7x16xf32>) -> tensor<?x5x7x16xf32>
// CHECK-NOT: ember.conv2d
// NOIM2COL-LABEL: func.func @pointwise
// NOIM2COL: "ember.gemm"
// OFF-LABEL: func.func @pointwise
// OFF: "ember.conv2d"
// MINC-LABEL: func.func @pointwise
// MINC: "ember.conv2d"
// LOWER-LABEL: func.func @pointwise
// LOWER: tensor.collapse_shape %arg0
// LOWER: call @ember_gemm_0(
// LOWER-NOT: linalg.conv
func.func @pointwise(%x: tensor<?x5x7x8xf32>, %r: tensor<?x5x7x16xf32>) -> tensor<?x5x7x16xf32> {
  %w = "ember.weight"() {name = "c.weight"} : () -> tensor<1x1x8x16xf32>
  %b = "ember.weight"() {name = "c.bias"} : () -> tensor<16xf32>
  %0 = "ember.conv2d"(%x, %w, %b, %r) {strides = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilations = array<i64: 1, 1>, groups = 1, activation = "relu", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<?x5x7x8xf32>, tensor<1x1x8x16xf32>, tensor<16xf32>, tensor<?x5x7x16xf32>) -> tensor<?x5x7x16xf32>
  return %0 : tensor<?x5x7x16xf32>
}

// -----

// 3x3, stride 2, padding 1, dilation 2: pad, then one GEMM (K = 3*3*4 = 36) whose lhs is the
// padded input read as im2col patches (lhs_patches = KH, KW, SH, SW, DH, DW): no patch matrix.
// CHECK-LABEL: func.func @im2col
// CHECK: %[[P:.*]] = tensor.pad %arg0 low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK: "ember.gemm"(%[[P]], %{{.*}}) {activation = "gelu", lhs_patches = array<i64: 3, 3, 2, 2, 2, 2>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x11x13x4xf32>, tensor<36x6xf32>) -> tensor<2x4x5x6xf32>
// CHECK-NOT: linalg.generic
// NOIM2COL-LABEL: func.func @im2col
// NOIM2COL: "ember.conv2d"
// The packed GEMM's kernel reads the padded input (patches = Hp, Wp, C, then the geometry);
// its linalg reference indexes the input through the patch map.
// LOWER-DAG: #[[PATCH:.*]] = affine_map<(d0, d1, d2) -> (d0 floordiv 20, ((d0 mod 20) floordiv 5) * 2 + (d2 floordiv 12) * 2, (d0 mod 5) * 2 + ((d2 floordiv 4) mod 3) * 2, d2 mod 4)>
// LOWER-LABEL: func.func @im2col
// LOWER: %[[P:.*]] = tensor.pad
// LOWER-NOT: linalg.generic
// LOWER: call @ember_gemm_0(%[[P]], %{{.*}}, %{{.*}}) : (tensor<2x11x13x4xf32>, tensor<1x36x16xf32>, tensor<40x6xf32>) -> tensor<40x6xf32>
// LOWER: tensor.expand_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] output_shape [2, 4, 5, 6]
// LOWER: func.func private @ember_gemm_0({{.*}}patches = array<i64: 11, 13, 4, 3, 3, 2, 2, 2, 2>
// LOWER: linalg.generic {indexing_maps = [#[[PATCH]],
// LOWER-NOT: linalg.conv
func.func @im2col(%x: tensor<2x9x11x4xf32>) -> tensor<2x4x5x6xf32> {
  %w = "ember.weight"() {name = "k3"} : () -> tensor<3x3x4x6xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilations = array<i64: 2, 2>, groups = 1, activation = "gelu", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<2x9x11x4xf32>, tensor<3x3x4x6xf32>) -> tensor<2x4x5x6xf32>
  return %0 : tensor<2x4x5x6xf32>
}

// -----

// Left alone: depthwise (groups != 1), NCHW, a filter that is not a weight.
// CHECK-LABEL: func.func @not_rewritten
// CHECK-NOT: ember.gemm
// CHECK-COUNT-3: "ember.conv2d"
// CHECK-NOT: ember.gemm
// LOWER-LABEL: func.func @not_rewritten
// LOWER: linalg.depthwise_conv_2d_nhwc_hwc
// LOWER: linalg.conv_2d_nchw_fchw
// LOWER: linalg.conv_2d_nhwc_hwcf
func.func @not_rewritten(%x: tensor<1x8x8x8xf32>, %xc: tensor<1x8x8x8xf32>, %wf: tensor<3x3x8x8xf32>) -> (tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>) {
  %dw = "ember.weight"() {name = "dw"} : () -> tensor<3x3x1x8xf32>
  %0 = "ember.conv2d"(%x, %dw) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 8, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<3x3x1x8xf32>) -> tensor<1x8x8x8xf32>
  %cw = "ember.weight"() {name = "cw"} : () -> tensor<8x8x3x3xf32>
  %1 = "ember.conv2d"(%xc, %cw) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nchw", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<8x8x3x3xf32>) -> tensor<1x8x8x8xf32>
  %2 = "ember.conv2d"(%x, %wf) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x8x8x8xf32>, tensor<3x3x8x8xf32>) -> tensor<1x8x8x8xf32>
  return %0, %1, %2 : tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>
}

// -----

// Lowered without packing (a target without the CPU GEMM kernel), the patch lhs is gathered
// into the [N, OH, OW, KH*KW*C] matrix first, then multiplied.
// CHECK-LABEL: func.func @patches_unpacked
// UNPACKED-LABEL: func.func @patches_unpacked
// UNPACKED: tensor.pad
// UNPACKED: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]
// UNPACKED: tensor.collapse_shape {{.*}} {{\[\[}}0], [1], [2], [3, 4, 5]] : tensor<1x4x4x3x3x2xf32> into tensor<1x4x4x18xf32>
// UNPACKED: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]
func.func @patches_unpacked(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "ember.weight"() {name = "k"} : () -> tensor<3x3x2x3xf32>
  %0 = "ember.conv2d"(%x, %w) {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1, activation = "none", layout = "nhwc", operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<1x4x4x2xf32>, tensor<3x3x2x3xf32>) -> tensor<1x4x4x3xf32>
  return %0 : tensor<1x4x4x3xf32>
}
