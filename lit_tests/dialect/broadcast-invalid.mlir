// RUN: ember-opt %s --split-input-file --verify-diagnostics

func.func @not_unit(%x: tensor<2x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{'ember.broadcast' op dim 0: only a size-1 dim can be repeated (2 -> 6)}}
  %0 = "ember.broadcast"(%x) : (tensor<2x4xf32>) -> tensor<6x4xf32>
  return %0 : tensor<6x4xf32>
}

// -----

func.func @new_dims(%x: tensor<4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{result rank 2 must be the input's 1}}
  %0 = "ember.broadcast"(%x) : (tensor<4xf32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

func.func @dynamic_repeat(%x: tensor<1x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{dim 0: a repeated dim's size must be static}}
  %0 = "ember.broadcast"(%x) : (tensor<1x4xf32>) -> tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}

// -----

func.func @element_type(%x: tensor<1x4xf32>) -> tensor<3x4xf16> {
  // expected-error @+1 {{'ember.broadcast' op}}
  %0 = "ember.broadcast"(%x) : (tensor<1x4xf32>) -> tensor<3x4xf16>
  return %0 : tensor<3x4xf16>
}
