// RUN: ember-opt %s --split-input-file --ember-label-kernels --mlir-print-debuginfo | filecheck %s

// ember-label-kernels numbers the steps of the public function (ember explain's numbering:
// ember.weight and the return are not steps) by wrapping each location in a name; the source
// location stays inside. Private functions are not the model and keep their locations.

// CHECK-LABEL: func.func @main
// CHECK: ember.weight{{.*}} loc(#[[W:loc[0-9]*]])
// CHECK: "ember.gemm"{{.*}} loc(#[[GEMM:loc[0-9]*]])
// CHECK: "ember.unary"{{.*}} loc(#[[RELU:loc[0-9]*]])
// CHECK: return {{.*}} loc(#[[RET:loc[0-9]*]])
// CHECK: func.func private @helper
// CHECK: "ember.unary"{{.*}} loc(#[[HELPER:loc[0-9]*]])
// CHECK-DAG: #[[W]] = loc("model.py":1:1)
// CHECK-DAG: #[[RET]] = loc("model.py":4:1)
// CHECK-DAG: #[[GEMM]] = loc("ember.kernel.0"(#{{loc[0-9]*}}))
// CHECK-DAG: #[[RELU]] = loc("ember.kernel.1"(#{{loc[0-9]*}}))
// CHECK-DAG: #[[HELPER]] = loc("model.py":9:1)
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = "ember.weight"() {name = "fc.weight"} : () -> tensor<8x16xf32> loc("model.py":1:1)
  %y = "ember.gemm"(%x, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32> loc("aten.linear"("model.py":2:1))
  %r = "ember.unary"(%y) {kind = "relu"} : (tensor<4x16xf32>) -> tensor<4x16xf32> loc("model.py":3:1)
  return %r : tensor<4x16xf32> loc("model.py":4:1)
}
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = "ember.unary"(%x) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32> loc("model.py":9:1)
  return %r : tensor<4xf32>
}

// -----

// A label already there (the pass run again, on ops that fusion removed) is replaced by the
// step's number now, not nested.
// CHECK-LABEL: func.func @labelled
// CHECK: "ember.unary"{{.*}} loc(#[[L:loc[0-9]*]])
// CHECK: #[[L]] = loc("ember.kernel.0"(#[[SRC:loc[0-9]*]]))
// CHECK-NOT: ember.kernel.5
func.func @labelled(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = "ember.unary"(%x) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32> loc("ember.kernel.5"("model.py":9:1))
  return %r : tensor<4xf32>
}
