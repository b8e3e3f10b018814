// RUN: ember-opt %s --split-input-file --target=cuda --ember-gpu-outline-gemms | filecheck %s
// RUN: ember-opt %s --split-input-file --target=cuda:tensor_cores=false --ember-gpu-outline-gemms | filecheck %s --check-prefix=SIMT
// RUN: ember-opt %s --split-input-file --target=cuda --ember-gpu-outline-gemms --ember-lower-to-linalg --ember-bind-weights --stages=kernels | filecheck %s --check-prefix=MMA

// On a target with tensor cores, ember-gpu-outline-gemms also outlines the quantized GEMMs the
// mma.sync kernel takes. int8: the lhs quantized per row (a dynamic one) or its codes (a static
// one), K padded to a multiple of 16, the weight stored transposed [N, K'] beside the
// compensation (zero point x column sums). Without tensor cores they keep the generic lowering.

// CHECK-LABEL: func.func @dynamic(
// CHECK: linalg.generic {{.*}}["parallel", "reduction"]
// CHECK: arith.maxsi
// CHECK: tensor.pad %{{.*}} low[0, 0] high[0, 8]
// CHECK: arith.trunci {{.*}} : i32 to i8
// CHECK-DAG: %[[W:.*]] = "ember.weight"() {name = "w.nk32"} : () -> tensor<40x32xi8>
// CHECK-DAG: %[[C:.*]] = "ember.weight"() {name = "w.zp0_compensation"} : () -> tensor<40xi32>
// CHECK: call @ember_gpu_gemm_0(%{{.*}}, %[[W]], %{{.*}}, %{{.*}}, %[[C]], %arg1) : (tensor<6x32xi8>, tensor<40x32xi8>, tensor<6xf32>, tensor<40xf32>, tensor<40xi32>, tensor<40xf32>) -> tensor<6x40xf32>
// CHECK-NOT: {name = "w"}
// CHECK-LABEL: func.func private @ember_gpu_gemm_0(
// CHECK-SAME: ember.gpu_gemm = {activation = "relu", bias = true, int8 = "s8", k = 32 : i64, m = 6 : i64, n = 40 : i64, residual = false}
// SIMT-LABEL: func.func @dynamic(
// SIMT: "ember.qgemm"
// SIMT-NOT: call @ember_gpu_gemm
// MMA-LABEL: func.func @dynamic(
// MMA: gpu.launch_func @kernels::@gemm_mma_{{[0-9]+}}
// MMA: nvgpu.device_async_copy {{.*}} : memref<6x32xi8> to memref<2x64x80xi8, #gpu.address_space<workgroup>>
// MMA: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<2x64x80xi8, #gpu.address_space<workgroup>> -> vector<4x4xi8>
// MMA: nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {{{.*}}intOverflowBehavior = #nvvm.mma_int_overflow<wrapped>, layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<s8>, multiplicandBPtxType = #nvvm.mma_type<s8>, shape = #nvvm.shape<m = 16, n = 8, k = 32>} : (i32, i32, i32) -> !llvm.struct<(i32, i32, i32, i32)>
// MMA: arith.sitofp {{.*}} : i32 to f32
func.func @dynamic(%x: tensor<2x3x24xf32>, %b: tensor<40xf32>) -> tensor<2x3x40xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<24x40xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s, %b) {activation = "relu", lhs_encoding = "s8", operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>} : (tensor<2x3x24xf32>, tensor<24x40xi8>, tensor<40xf32>, tensor<40xf32>) -> tensor<2x3x40xf32>
  return %0 : tensor<2x3x40xf32>
}

// -----

// Static unsigned codes: read as u8, their zero point in the compensation, the lhs scale in
// every row.
// CHECK-LABEL: func.func @static_codes(
// CHECK: tensor.bitcast %arg0 : tensor<8x32xui8> to tensor<8x32xi8>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<8xf32>)
// CHECK: "ember.weight"() {name = "w.zp3_compensation"} : () -> tensor<16xi32>
// CHECK: call @ember_gpu_gemm_0(
// CHECK: func.func private @ember_gpu_gemm_0(
// CHECK-SAME: ember.gpu_gemm = {activation = "none", bias = false, int8 = "u8", k = 32 : i64, m = 8 : i64, n = 16 : i64, residual = false}
// CHECK: arith.extui
// MMA-LABEL: func.func @static_codes(
// MMA: multiplicandAPtxType = #nvvm.mma_type<u8>, multiplicandBPtxType = #nvvm.mma_type<s8>
func.func @static_codes(%x: tensor<8x32xui8>) -> tensor<8x16xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<32x16xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<16xf32>
  %0 = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.5 : f32, lhs_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<8x32xui8>, tensor<32x16xi8>, tensor<16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// Weight-only int4: the lhs rounded to f16, the codes two per byte [K/2, N]; the reference
// body dequantizes the weight (the kernel does it per tile as it stages B).
// CHECK-LABEL: func.func @int4(
// CHECK: %[[Q:.*]] = "ember.weight"() {name = "q.nibbles"} : () -> tensor<16x16xi8>
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: call @ember_gpu_gemm_0(%{{.*}}, %[[Q]], %{{.*}}, %{{.*}}) : (tensor<4x32xf16>, tensor<16x16xi8>, tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<4x16xf32>
// CHECK-LABEL: func.func private @ember_gpu_gemm_0(
// CHECK-SAME: ember.gpu_gemm = {activation = "none", bias = false, group = 16 : i64, k = 32 : i64, m = 4 : i64, n = 16 : i64, offsets = true, residual = false, weights = "i4"}
// CHECK: linalg.index 0 : index
// CHECK: arith.shrui %{{.*}} : i8
// SIMT-LABEL: func.func @int4(
// SIMT: "ember.gemm"(%arg0, {{.*}}rhs_bits = 4
// MMA-LABEL: func.func @int4(
// MMA: arith.shrui {{.*}} : vector<8xi8>
// MMA: arith.uitofp {{.*}} : vector<8xi8> to vector<8xf32>
// MMA: vector.store {{.*}} : memref<2x32x72xf16, #gpu.address_space<workgroup>>, vector<8xf16>
// MMA: nvvm.mma.sync {{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (vector<2xf16>, vector<2xf16>, f32)
func.func @int4(%x: tensor<4x32xf32>) -> tensor<4x16xf32> {
  %q = "ember.weight"() {name = "q"} : () -> tensor<32x16xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<2x16xf32>
  %o = "ember.weight"() {name = "o"} : () -> tensor<2x16xf32>
  %0 = "ember.gemm"(%x, %q, %s, %o) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 1>, rhs_bits = 4, rhs_group = 16} : (tensor<4x32xf32>, tensor<32x16xi8>, tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

// K = 20 is not a multiple of 8: the weight-only GEMM keeps the generic lowering.
// CHECK-LABEL: func.func @odd_k(
// CHECK: "ember.gemm"(%arg0
// CHECK-NOT: call @ember_gpu_gemm
func.func @odd_k(%x: tensor<4x20xf32>) -> tensor<4x40xf32> {
  %q = "ember.weight"() {name = "q"} : () -> tensor<20x40xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<3x40xf32>
  %0 = "ember.gemm"(%x, %q, %s) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 0>, rhs_bits = 8, rhs_group = 8} : (tensor<4x20xf32>, tensor<20x40xi8>, tensor<3x40xf32>) -> tensor<4x40xf32>
  return %0 : tensor<4x40xf32>
}

// -----

// A residual of codes (a ResNet shortcut) reaches the tensor-core kernel dequantized to f32
// first ((float(code) - 3) * 0.5); the kernel's epilogue adds f32 residuals.
// CHECK-LABEL: func.func @residual_codes(
// SIMT-LABEL: func.func @residual_codes(
// SIMT: "ember.qgemm"
// MMA-LABEL: func.func @residual_codes(
// MMA: gpu.launch_func @kernels::@gemm_mma_{{[0-9]+}}
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<6x40xi8>)
// CHECK: arith.uitofp {{.*}} : i8 to f32
// CHECK: call @ember_gpu_gemm_0({{.*}}, %[[R]]) : (tensor<6x32xi8>, tensor<40x32xi8>, tensor<6xf32>, tensor<40xf32>, tensor<40xi32>, tensor<6x40xf32>) -> tensor<6x40xf32>
func.func @residual_codes(%x: tensor<6x24xui8>, %r: tensor<6x40xui8>) -> tensor<6x40xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<24x40xi8>
  %s = "ember.weight"() {name = "s"} : () -> tensor<40xf32>
  %0 = "ember.qgemm"(%x, %w, %s, %r) {activation = "none", lhs_encoding = "u8", lhs_scale = 0.25 : f32, lhs_zero_point = 3 : i64, residual_scale = 0.5 : f32, residual_zero_point = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<6x24xui8>, tensor<24x40xi8>, tensor<40xf32>, tensor<6x40xui8>) -> tensor<6x40xf32>
  return %0 : tensor<6x40xf32>
}
