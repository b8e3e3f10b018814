// RUN: ember-opt %s --ember-lower-to-linalg | filecheck %s

// ember.attention gives zeros to a query whose scores are all -inf (fully masked), as
// PyTorch's scaled_dot_product_attention does: the softmax's normalizing step selects 0 where
// the row's sum of exponentials is 0 (a plain ember.softmax keeps torch.softmax's NaN there).

// CHECK-LABEL: func.func @masked
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: linalg.generic
// CHECK: %[[E:.*]] = math.exp
// CHECK: %[[P:.*]] = arith.divf %[[E]], %[[SUM:[^ ]*]] : f32
// CHECK: %[[LIVE:.*]] = arith.cmpf ogt, %[[SUM]], %[[ZERO:[^ ]*]] : f32
// CHECK: arith.select %[[LIVE]], %[[P]], %[[ZERO]] : f32
func.func @masked(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x4xf32>, %m: tensor<5x7xf32>) -> tensor<2x5x4xf32> {
  %0 = "ember.attention"(%q, %k, %v, %m) {causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>, scale = 0.5 : f32} : (tensor<2x5x8xf32>, tensor<2x7x8xf32>, tensor<2x7x4xf32>, tensor<5x7xf32>) -> tensor<2x5x4xf32>
  return %0 : tensor<2x5x4xf32>
}

// CHECK-LABEL: func.func @softmax
// CHECK: arith.divf
// CHECK-NOT: arith.select
// CHECK: return
func.func @softmax(%x: tensor<5x7xf32>) -> tensor<5x7xf32> {
  %0 = "ember.softmax"(%x) {axis = 1 : i64} : (tensor<5x7xf32>) -> tensor<5x7xf32>
  return %0 : tensor<5x7xf32>
}
