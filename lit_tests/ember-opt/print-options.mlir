// RUN: ember-opt %s --split-input-file --mlir-print-debuginfo | filecheck %s --check-prefix=LOC
// RUN: ember-opt %s --split-input-file --mlir-print-op-generic | filecheck %s --check-prefix=GENERIC
// RUN: ember-opt %s --split-input-file --mlir-print-op-generic | ember-opt --split-input-file | filecheck %s --check-prefix=PRETTY

// --mlir-print-debuginfo prints locations: the input file's own lines, also in a later chunk.
// LOC-LABEL: func.func @first
// LOC: "ember.unary"(%arg0) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32> loc(#[[L1:loc[0-9]*]])
// LOC: #[[L1]] = loc("{{.*}}print-options.mlir":[[# @LINE + 10]]:8)
// LOC-LABEL: func.func @second
// LOC: "ember.softmax"(%arg0) {axis = 0 : i64} : (tensor<4xf32>) -> tensor<4xf32> loc(#[[L2:loc[0-9]*]])
// LOC: #[[L2]] = loc("{{.*}}print-options.mlir":[[# @LINE + 15]]:8)

// --mlir-print-op-generic prints every op in generic form, which parses back.
// GENERIC: "func.func"() <{function_type = (tensor<4xf32>) -> tensor<4xf32>, sym_name = "first"}>
// GENERIC: "func.return"
// PRETTY: func.func @first(%arg0: tensor<4xf32>) -> tensor<4xf32>
func.func @first(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%a) {kind = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// PRETTY: func.func @second(%arg0: tensor<4xf32>) -> tensor<4xf32>
func.func @second(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.softmax"(%a) {axis = 0} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
