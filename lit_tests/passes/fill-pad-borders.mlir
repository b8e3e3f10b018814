// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-fill-pad-borders{min-elements=0},canonicalize,cse)' | filecheck %s
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-fill-pad-borders{min-elements=0},one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},cse,canonicalize)' | filecheck %s --check-prefix=BUF
// RUN: ember-opt %s --split-input-file --pass-pipeline='builtin.module(ember-fill-pad-borders,canonicalize,cse)' | filecheck %s --check-prefix=DEFAULT

// A convolution's padded NHWC input (H and W by one pixel, C from 3 to 4): the border slabs are
// filled, each once (H's whole rows; W's columns over the interior rows; C's channel over the
// interior pixels), then the source goes into the interior; bufferized, each is a fill of a
// subview of one buffer and the source is copied once, into the interior, which is never
// filled.
// CHECK-LABEL: func.func @image
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x6x6x4xi8>
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 0] [2, 1, 6, 4]
// CHECK: linalg.fill ins(%c7_i8 : i8)
// CHECK: tensor.insert_slice {{.*}}[0, 0, 0, 0] [2, 1, 6, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 5, 0, 0] [2, 1, 6, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 1, 0, 0] [2, 4, 1, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 1, 5, 0] [2, 4, 1, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 1, 1, 3] [2, 4, 4, 1]
// CHECK: %[[R:.*]] = tensor.insert_slice %arg0 into %{{.*}}[0, 1, 1, 0] [2, 4, 4, 3]
// CHECK-NEXT: return %[[R]]
// BUF-LABEL: func.func @image
// BUF: %[[A:.*]] = memref.alloc() {{.*}} : memref<2x6x6x4xi8>
// BUF-COUNT-5: linalg.fill ins(%c7_i8 : i8) outs(%{{.*}} : memref<
// BUF-NOT: linalg.fill
// BUF: %[[IN:.*]] = memref.subview %[[A]][0, 1, 1, 0] [2, 4, 4, 3]
// BUF-NEXT: memref.copy %arg0, %[[IN]]
// BUF-NEXT: return %[[A]]
func.func @image(%x: tensor<2x4x4x3xi8>) -> tensor<2x6x6x4xi8> {
  %c = arith.constant 7 : i8
  %p = tensor.pad %x low[0, 1, 1, 0] high[0, 1, 1, 1] {
  ^bb0(%a: index, %b: index, %cc: index, %d: index):
    tensor.yield %c : i8
  } : tensor<2x4x4x3xi8> to tensor<2x6x6x4xi8>
  return %p : tensor<2x6x6x4xi8>
}

// -----

// A dynamic batch: the slabs' sizes along it are the source's.
// CHECK-LABEL: func.func @dynamic_batch
// CHECK: %[[N:.*]] = tensor.dim %arg0, %c0
// CHECK: tensor.empty(%[[N]]) : tensor<?x6x6x3xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0, 0] [%[[N]], 1, 6, 3]
// CHECK: tensor.insert_slice %arg0 into %{{.*}}[0, 1, 1, 0] [%[[N]], 4, 4, 3]
func.func @dynamic_batch(%x: tensor<?x4x4x3xf32>) -> tensor<?x6x6x3xf32> {
  %c = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 1, 1, 0] high[0, 1, 1, 0] {
  ^bb0(%a: index, %b: index, %cc: index, %d: index):
    tensor.yield %c : f32
  } : tensor<?x4x4x3xf32> to tensor<?x6x6x3xf32>
  return %p : tensor<?x6x6x3xf32>
}

// -----

// The stem's NCHW -> NHWC transpose, computed for the pad alone: it writes the interior of
// the padded buffer (its init is the interior's slice), and nothing is copied.
// CHECK-LABEL: func.func @transposed_image
// CHECK: %[[IN:.*]] = tensor.extract_slice %{{.*}}[0, 1, 1, 0] [2, 4, 4, 3]
// CHECK-NEXT: %[[T:.*]] = linalg.transpose ins(%arg0 : tensor<2x3x4x4xi8>) outs(%[[IN]] : tensor<2x4x4x3xi8>)
// CHECK-NEXT: tensor.insert_slice %[[T]] into %{{.*}}[0, 1, 1, 0] [2, 4, 4, 3]
// BUF-LABEL: func.func @transposed_image
// BUF: %[[IN:.*]] = memref.subview %{{.*}}[0, 1, 1, 0] [2, 4, 4, 3]
// BUF-NEXT: linalg.transpose ins(%arg0 : memref<2x3x4x4xi8>) outs(%[[IN]]
// BUF-NOT: memref.copy
// BUF: return
func.func @transposed_image(%x: tensor<2x3x4x4xi8>) -> tensor<2x6x6x4xi8> {
  %c = arith.constant 7 : i8
  %e = tensor.empty() : tensor<2x4x4x3xi8>
  %t = linalg.transpose ins(%x : tensor<2x3x4x4xi8>) outs(%e : tensor<2x4x4x3xi8>) permutation = [0, 2, 3, 1]
  %p = tensor.pad %t low[0, 1, 1, 0] high[0, 1, 1, 1] {
  ^bb0(%a: index, %b: index, %cc: index, %d: index):
    tensor.yield %c : i8
  } : tensor<2x4x4x3xi8> to tensor<2x6x6x4xi8>
  return %p : tensor<2x6x6x4xi8>
}

// -----

// A transposed tensor that is also returned is computed as before and copied in.
// CHECK-LABEL: func.func @transpose_used_twice
// CHECK: %[[T:.*]] = linalg.transpose
// CHECK: tensor.insert_slice %[[T]] into %{{.*}}[0, 1, 1, 0] [2, 4, 4, 3]
func.func @transpose_used_twice(%x: tensor<2x3x4x4xi8>) -> (tensor<2x6x6x4xi8>, tensor<2x4x4x3xi8>) {
  %c = arith.constant 7 : i8
  %e = tensor.empty() : tensor<2x4x4x3xi8>
  %t = linalg.transpose ins(%x : tensor<2x3x4x4xi8>) outs(%e : tensor<2x4x4x3xi8>) permutation = [0, 2, 3, 1]
  %p = tensor.pad %t low[0, 1, 1, 0] high[0, 1, 1, 1] {
  ^bb0(%a: index, %b: index, %cc: index, %d: index):
    tensor.yield %c : i8
  } : tensor<2x4x4x3xi8> to tensor<2x6x6x4xi8>
  return %p, %t : tensor<2x6x6x4xi8>, tensor<2x4x4x3xi8>
}

// -----

// Left as they are: a pad whose value is computed per element, and one by run-time widths.
// CHECK-LABEL: func.func @computed_value
// CHECK: tensor.pad
// CHECK-LABEL: func.func @runtime_widths
// CHECK: tensor.pad
func.func @computed_value(%x: tensor<4x4xf32>) -> tensor<6x6xf32> {
  %p = tensor.pad %x low[1, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    %v = arith.index_cast %i : index to i32
    %f = arith.sitofp %v : i32 to f32
    tensor.yield %f : f32
  } : tensor<4x4xf32> to tensor<6x6xf32>
  return %p : tensor<6x6xf32>
}

func.func @runtime_widths(%x: tensor<4x4xf32>, %n: index) -> tensor<?x6xf32> {
  %c = arith.constant 0.0 : f32
  %p = tensor.pad %x low[%n, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %c : f32
  } : tensor<4x4xf32> to tensor<?x6xf32>
  return %p : tensor<?x6xf32>
}

// -----

// Under the default min-elements (65536, dynamic dims counted as 1) a pad stays as it is: a
// small buffer's double write costs little, and its slabs' tiny static loops would be fully
// unrolled by LLVM into straight-line stores that take its DAG combiner minutes. A big one is
// rewritten.
// DEFAULT-LABEL: func.func @small_pad
// DEFAULT: tensor.pad
// DEFAULT-LABEL: func.func @big_pad
// DEFAULT-NOT: tensor.pad
// DEFAULT: linalg.fill
// DEFAULT: tensor.insert_slice %arg0
func.func @small_pad(%x: tensor<3x8x10x9xf32>) -> tensor<3x14x16x9xf32> {
  %c = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 3, 3, 0] high[0, 3, 3, 0] {
  ^bb0(%n: index, %h: index, %w: index, %ch: index):
    tensor.yield %c : f32
  } : tensor<3x8x10x9xf32> to tensor<3x14x16x9xf32>
  return %p : tensor<3x14x16x9xf32>
}

func.func @big_pad(%x: tensor<8x64x64x32xi8>) -> tensor<8x66x66x32xi8> {
  %c = arith.constant 0 : i8
  %p = tensor.pad %x low[0, 1, 1, 0] high[0, 1, 1, 0] {
  ^bb0(%n: index, %h: index, %w: index, %ch: index):
    tensor.yield %c : i8
  } : tensor<8x64x64x32xi8> to tensor<8x66x66x32xi8>
  return %p : tensor<8x66x66x32xi8>
}
