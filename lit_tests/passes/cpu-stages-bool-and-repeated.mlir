// RUN: ember-opt %s --split-input-file --target=host:openmp=off --stages=bufferize,kernels,loops,llvm | filecheck %s

// Two cases MLIR 22's upstream passes crash on, which the CPU stages handle with passes of their
// own:
// a tensor returned twice (buffer-results-to-out-params{hoist-static-allocs} segfaults on one
// allocation returned twice: ember-copy-repeated-results gives each extra return its own copy), and boolean tensors
// (memref-to-LLVM aborts on i1 memrefs: they are stored as bytes, ember-widen-bool-memrefs).

// CHECK-LABEL: llvm.func @twice(
// CHECK: llvm.fadd
// Both out-parameters are written: the second one by a copy of the first.
// CHECK: llvm.intr.memcpy
// CHECK: llvm.return
func.func @twice(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  %e = tensor.empty() : tensor<3xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%x : tensor<3xf32>) outs(%e : tensor<3xf32>) {
  ^bb0(%a: f32, %b: f32):
    %1 = arith.addf %a, %a : f32
    linalg.yield %1 : f32
  } -> tensor<3xf32>
  return %0, %0 : tensor<3xf32>, tensor<3xf32>
}

// -----

// where(x > 0, x, y) with the comparison materialized as a boolean tensor, and a boolean
// output: every boolean element is loaded and stored as a byte.
// CHECK-LABEL: llvm.func @where(
// CHECK: llvm.fcmp "ogt"
// CHECK: llvm.zext %{{.*}} : i1 to i8
// CHECK: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> i8
// CHECK: llvm.trunc %{{.*}} : i8 to i1
// CHECK: llvm.select
#id = affine_map<(d0) -> (d0)>
func.func @where(%x: tensor<4xf32>, %y: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>) {
  %zero = arith.constant 0.0 : f32
  %b = tensor.empty() : tensor<4xi1>
  %mask = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%b : tensor<4xi1>) {
  ^bb0(%a: f32, %o: i1):
    %c = arith.cmpf ogt, %a, %zero : f32
    linalg.yield %c : i1
  } -> tensor<4xi1>
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id], iterator_types = ["parallel"]}
      ins(%mask, %x, %y : tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%m: i1, %a: f32, %c: f32, %o: f32):
    %s = arith.select %m, %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %r, %mask : tensor<4xf32>, tensor<4xi1>
}
