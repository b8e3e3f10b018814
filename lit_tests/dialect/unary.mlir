// RUN: ember-opt %s | ember-opt | filecheck %s

// Round trip of ember.unary with every kind.

// CHECK-LABEL: func.func @unary_kinds
// CHECK: "ember.unary"(%arg0) {kind = "relu"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
// CHECK: {kind = "gelu"}
// CHECK: {kind = "gelu_tanh"}
// CHECK: {kind = "silu"}
// CHECK: {kind = "sigmoid"}
// CHECK: {kind = "tanh"}
// CHECK: {kind = "exp"}
// CHECK: {kind = "log"}
// CHECK: {kind = "neg"}
// CHECK: {kind = "sqrt"}
// CHECK: {kind = "rsqrt"}
// CHECK: "ember.unary"(%10) {kind = "abs"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
// CHECK: return %11
func.func @unary_kinds(%x: tensor<4x?xf32>) -> tensor<4x?xf32> {
  %0 = "ember.unary"(%x) {kind = "relu"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %1 = "ember.unary"(%0) {kind = "gelu"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %2 = "ember.unary"(%1) {kind = "gelu_tanh"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %3 = "ember.unary"(%2) {kind = "silu"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %4 = "ember.unary"(%3) {kind = "sigmoid"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %5 = "ember.unary"(%4) {kind = "tanh"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %6 = "ember.unary"(%5) {kind = "exp"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %7 = "ember.unary"(%6) {kind = "log"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %8 = "ember.unary"(%7) {kind = "neg"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %9 = "ember.unary"(%8) {kind = "sqrt"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %10 = "ember.unary"(%9) {kind = "rsqrt"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  %11 = "ember.unary"(%10) {kind = "abs"} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  return %11 : tensor<4x?xf32>
}
