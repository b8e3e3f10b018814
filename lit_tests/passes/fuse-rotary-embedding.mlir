// RUN: ember-opt %s --split-input-file --ember-fuse-rotary-embedding | filecheck %s

// Hugging Face's apply_rotary_pos_emb: x * cos + cat(-x2, x1) * sin.
// CHECK-LABEL: func.func @hf_rope
// CHECK: %[[R:.*]] = "ember.rotary_embedding"(%arg0, %arg1, %arg2)
// CHECK-NEXT: return %[[R]]
func.func @hf_rope(%x: tensor<1x4x8x16xf32>, %cos: tensor<1x1x8x16xf32>, %sin: tensor<1x1x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %x1 = "ember.slice"(%x) {axis = 3, start = 0, size = 8} : (tensor<1x4x8x16xf32>) -> tensor<1x4x8x8xf32>
  %x2 = "ember.slice"(%x) {axis = 3, start = 8, size = 8} : (tensor<1x4x8x16xf32>) -> tensor<1x4x8x8xf32>
  %n = "ember.unary"(%x2) {kind = "neg"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %r = "ember.concat"(%n, %x1) {axis = 3} : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x16xf32>
  %a = "ember.binary"(%x, %cos) {kind = "mul"} : (tensor<1x4x8x16xf32>, tensor<1x1x8x16xf32>) -> tensor<1x4x8x16xf32>
  %b = "ember.binary"(%sin, %r) {kind = "mul"} : (tensor<1x1x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  %y = "ember.binary"(%b, %a) {kind = "add"} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %y : tensor<1x4x8x16xf32>
}

// -----

// Negative: halves swapped the other way (cat(-x1, x2)) is not a rotation.
// CHECK-LABEL: func.func @wrong_halves
// CHECK-NOT: ember.rotary_embedding
func.func @wrong_halves(%x: tensor<8x16xf32>, %cos: tensor<8x16xf32>, %sin: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %x1 = "ember.slice"(%x) {axis = 1, start = 0, size = 8} : (tensor<8x16xf32>) -> tensor<8x8xf32>
  %x2 = "ember.slice"(%x) {axis = 1, start = 8, size = 8} : (tensor<8x16xf32>) -> tensor<8x8xf32>
  %n = "ember.unary"(%x1) {kind = "neg"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %r = "ember.concat"(%n, %x2) {axis = 1} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x16xf32>
  %a = "ember.binary"(%x, %cos) {kind = "mul"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %b = "ember.binary"(%r, %sin) {kind = "mul"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %y = "ember.binary"(%a, %b) {kind = "add"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}
