// RUN: ember-opt %s --split-input-file | ember-opt --split-input-file | filecheck %s

// Round trip of ember.weight: a named constant of any static shape and element type.

// CHECK-LABEL: func.func @weights
// CHECK: "ember.weight"() {name = "fc1.weight"} : () -> tensor<2048x512xf32>
// CHECK: "ember.weight"() {name = "fc1.bias"} : () -> tensor<2048xf32>
// CHECK: "ember.weight"() {name = "emb"} : () -> tensor<4x8x16xf16>
// CHECK: "ember.weight"() {name = "scale"} : () -> tensor<f32>
// CHECK: "ember.weight"() {name = "ids"} : () -> tensor<3xi64>
func.func @weights() -> (tensor<2048x512xf32>, tensor<2048xf32>, tensor<4x8x16xf16>, tensor<f32>, tensor<3xi64>) {
  %0 = "ember.weight"() {name = "fc1.weight"} : () -> tensor<2048x512xf32>
  %1 = "ember.weight"() {name = "fc1.bias"} : () -> tensor<2048xf32>
  %2 = "ember.weight"() {name = "emb"} : () -> tensor<4x8x16xf16>
  %3 = "ember.weight"() {name = "scale"} : () -> tensor<f32>
  %4 = "ember.weight"() {name = "ids"} : () -> tensor<3xi64>
  return %0, %1, %2, %3, %4 : tensor<2048x512xf32>, tensor<2048xf32>, tensor<4x8x16xf16>, tensor<f32>, tensor<3xi64>
}

// -----

// Two ops may name the same weight; the IR keeps both.
// CHECK-LABEL: func.func @shared
// CHECK-COUNT-2: "ember.weight"() {name = "w"}
func.func @shared() -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = "ember.weight"() {name = "w"} : () -> tensor<4xf32>
  %1 = "ember.weight"() {name = "w"} : () -> tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}

// -----

// `mutable`: a buffer the model changes in place (the runtime writes its new value back).
// CHECK-LABEL: func.func @mutable
// CHECK: "ember.weight"() {mutable = true, name = "count"} : () -> tensor<1xf32>
func.func @mutable() -> tensor<1xf32> {
  %0 = "ember.weight"() {name = "count", mutable = true} : () -> tensor<1xf32>
  return %0 : tensor<1xf32>
}
