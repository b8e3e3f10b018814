// RUN: ember-opt %s --split-input-file --ember-expand-math | filecheck %s

// ember-expand-math rewrites f32 math.exp / math.tanh (scalars and vectors) into polynomial
// arith code, so activations vectorize instead of calling libm once per lane.

// exp: clamped Cody-Waite reduction, a polynomial and an exponent shift; +inf where x is past
// ln(FLT_MAX) (88.7228...), as PyTorch's exp (the clamp alone gave 2.4e38 for exp(89) and
// exp(inf)). NaN propagates through the clamp (compares and selects: one vmaxps and one
// vminps on x86).
// CHECK-LABEL: func.func @exp_vector(
// CHECK: %[[OVER:.*]] = arith.cmpf ogt, %arg0, %{{.*}} : vector<16xf32>
// CHECK: arith.cmpf olt
// CHECK: arith.select
// CHECK: arith.cmpf ogt
// CHECK: arith.select
// CHECK: math.floor
// CHECK: arith.shli
// CHECK: %[[Y:.*]] = arith.mulf
// CHECK: %[[R:.*]] = arith.select %[[OVER]], %{{.*}}, %[[Y]] : vector<16xi1>, vector<16xf32>
// CHECK-NOT: math.exp
// CHECK: return %[[R]]
func.func @exp_vector(%x: vector<16xf32>) -> vector<16xf32> {
  %0 = math.exp %x : vector<16xf32>
  return %0 : vector<16xf32>
}

// -----

// Other element types are left to libm.
// CHECK-LABEL: func.func @exp_f64(
// CHECK: math.exp %arg0 : f64
func.func @exp_f64(%x: f64) -> f64 {
  %0 = math.exp %x : f64
  return %0 : f64
}
