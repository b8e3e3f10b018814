// RUN: ember-opt %s --split-input-file --verify-diagnostics

// A weight's shape must be static: the data lives in the weights table with a fixed size.
func.func @dynamic_shape() -> tensor<?x4xf32> {
  // expected-error @+1 {{'ember.weight' op weight must have a static ranked tensor type}}
  %0 = "ember.weight"() {name = "w"} : () -> tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}

// -----

func.func @empty_name() -> tensor<4xf32> {
  // expected-error @+1 {{weight name must not be empty}}
  %0 = "ember.weight"() {name = ""} : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL: the name must be a string attribute.
func.func @name_not_string() -> tensor<4xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.string' but got 'builtin.integer'}}
  %0 = "ember.weight"() {name = 3} : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @missing_name() -> tensor<4xf32> {
  // expected-error @+1 {{attribute "name" is expected but not provided}}
  %0 = "ember.weight"() : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL: a weight takes no operands.
func.func @with_operand(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{op expects exactly 0 operands, but got 1}}
  %0 = "ember.weight"(%a) {name = "w"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// IRDL: the result is a tensor.
func.func @memref_result() -> memref<4xf32> {
  // expected-error @+1 {{expected base type 'builtin.tensor' but got 'builtin.memref'}}
  %0 = "ember.weight"() {name = "w"} : () -> memref<4xf32>
  return %0 : memref<4xf32>
}

// -----

func.func @mutable_not_bool() -> tensor<4xf32> {
  // expected-error @+1 {{mutable}}
  %0 = "ember.weight"() {name = "w", mutable = "yes"} : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
