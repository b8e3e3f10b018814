// RUN: ember-opt %s --ember-fuse-epilogue='bias=false residual=false' | filecheck %s --check-prefix=OFF
// RUN: ember-opt %s --ember-fuse-epilogue='bias=0 residual=0' | filecheck %s --check-prefix=OFF
// RUN: ember-opt %s --ember-fuse-epilogue=bias=false --ember-fuse-epilogue=residual=false | filecheck %s --check-prefix=ON
// RUN: ember-opt %s --pass-pipeline='builtin.module(ember-fuse-epilogue{bias=false residual=false})' | filecheck %s --check-prefix=OFF
// RUN: ember-opt %s --ember-fuse-epilogue=bias | filecheck %s --check-prefix=ON
// RUN: ember-opt %s -ember-fuse-epilogue=bias=true | filecheck %s --check-prefix=ON

// Option spellings: several options in one quoted flag, 0/1 for booleans, a bare key for
// true, and mlir-opt's single-dash form. Each flag is one pass instance, run in order: the
// second instance below has bias fusion on.
// OFF: "ember.gemm"(%arg0, %arg1) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}
// OFF: "ember.binary"
// ON: "ember.gemm"(%arg0, %arg1, %arg2) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
// ON-NOT: "ember.binary"

func.func @f(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}
