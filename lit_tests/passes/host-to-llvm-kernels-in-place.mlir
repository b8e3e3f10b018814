// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-pack-weights{panel=16},ember-lower-to-linalg,ember-bind-weights,ember-host-to-llvm{gemm-kernels=false openmp=false})' | filecheck %s

// ember-host-to-llvm bufferizes a GEMM kernel function in place: its inputs are read-only and
// its last argument, the destination, is writable (whatever an earlier pass marked), so the
// kernel's result is that argument. After bufferization the kernel returns nothing and the
// caller passes the buffer it reads afterwards. Here the kernel's four memrefs, each as its
// LLVM descriptor fields (allocated, aligned, offset, sizes, strides): the dynamic-M lhs
// memref<?x8xf32>, the packed weight memref<2x8x16xf32>, the bias memref<20xf32> and the
// destination memref<?x20xf32>.

// CHECK-LABEL: llvm.func @main(
// CHECK: llvm.call @ember_gemm_0({{.*}}) : (!llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64) -> ()
// CHECK-LABEL: llvm.func @ember_gemm_0(
// CHECK-SAME: %arg27: i64) attributes {ember.gemm_kernel
func.func @main(%a: tensor<?x8xf32>) -> tensor<?x20xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x20xf32>
  %b = "ember.weight"() {name = "b"} : () -> tensor<20xf32>
  %y = "ember.gemm"(%a, %w, %b) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<?x8xf32>, tensor<8x20xf32>, tensor<20xf32>) -> tensor<?x20xf32>
  return %y : tensor<?x20xf32>
}
