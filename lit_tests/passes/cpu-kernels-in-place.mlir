// RUN: ember-opt %s --target=host:openmp=off --ember-pack-weights=panel=16 --ember-lower-to-linalg --ember-bind-weights --stages=bufferize | filecheck %s

// The CPU targets' `bufferize` stage bufferizes a GEMM kernel function in place
// (ember-mark-kernel-destinations): its inputs are read-only and its last argument, the
// destination, is writable (whatever an earlier pass marked), so the kernel's result is that
// argument. After bufferization the kernel returns nothing and the caller passes the buffer it
// reads afterwards: the dynamic-M lhs, the packed weight, the bias and the destination.

// CHECK-LABEL: func.func @main(
// CHECK: call @ember_gemm_0(%arg0, %{{.*}}, %{{.*}}, %[[OUT:.*]]) : (memref<?x8xf32>, memref<2x8x16xf32>, memref<20xf32>, memref<?x20xf32>) -> ()
// CHECK-LABEL: func.func private @ember_gemm_0(
// CHECK-SAME: %arg3: memref<?x20xf32>) attributes {ember.gemm_kernel
// CHECK-NOT: return %
func.func @main(%a: tensor<?x8xf32>) -> tensor<?x20xf32> {
  %w = "ember.weight"() {name = "w"} : () -> tensor<8x20xf32>
  %b = "ember.weight"() {name = "b"} : () -> tensor<20xf32>
  %y = "ember.gemm"(%a, %w, %b) {activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<?x8xf32>, tensor<8x20xf32>, tensor<20xf32>) -> tensor<?x20xf32>
  return %y : tensor<?x20xf32>
}
