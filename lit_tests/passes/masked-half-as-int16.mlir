// RUN: ember-opt %s --ember-masked-half-as-int16 | filecheck %s

// ember-masked-half-as-int16 gives masked f16/bf16 vector loads and stores i16 lanes of the
// same bits (LLVM would otherwise scalarize them through f32, calling __truncsfbf2 per bf16
// lane). f32 vectors and unmasked accesses are left alone.

// CHECK-LABEL: llvm.func @bf16_tail(
// CHECK-SAME: %[[P:[^:]*]]: !llvm.ptr, %[[Q:[^:]*]]: !llvm.ptr, %[[M:[^:]*]]: vector<8xi1>, %[[PT:[^:]*]]: vector<8xbf16>)
// CHECK: %[[PTI:.*]] = llvm.bitcast %[[PT]] : vector<8xbf16> to vector<8xi16>
// CHECK: %[[LI:.*]] = llvm.intr.masked.load %[[P]], %[[M]], %[[PTI]] {alignment = 2 : i32} : (!llvm.ptr, vector<8xi1>, vector<8xi16>) -> vector<8xi16>
// CHECK: %[[L:.*]] = llvm.bitcast %[[LI]] : vector<8xi16> to vector<8xbf16>
// CHECK: %[[S:.*]] = llvm.fadd %[[L]], %[[L]] : vector<8xbf16>
// CHECK: %[[SI:.*]] = llvm.bitcast %[[S]] : vector<8xbf16> to vector<8xi16>
// CHECK: llvm.intr.masked.store %[[SI]], %[[Q]], %[[M]] {alignment = 2 : i32} : vector<8xi16>, vector<8xi1> into !llvm.ptr
llvm.func @bf16_tail(%p: !llvm.ptr, %q: !llvm.ptr, %m: vector<8xi1>, %pt: vector<8xbf16>) {
  %v = llvm.intr.masked.load %p, %m, %pt {alignment = 2 : i32} : (!llvm.ptr, vector<8xi1>, vector<8xbf16>) -> vector<8xbf16>
  %s = llvm.fadd %v, %v : vector<8xbf16>
  llvm.intr.masked.store %s, %q, %m {alignment = 2 : i32} : vector<8xbf16>, vector<8xi1> into !llvm.ptr
  llvm.return
}

// CHECK-LABEL: llvm.func @f16_without_passthru(
// CHECK: %[[LI:.*]] = llvm.intr.masked.load %{{.*}}, %{{.*}} {alignment = 2 : i32} : (!llvm.ptr, vector<4xi1>) -> vector<4xi16>
// CHECK: llvm.bitcast %[[LI]] : vector<4xi16> to vector<4xf16>
llvm.func @f16_without_passthru(%p: !llvm.ptr, %m: vector<4xi1>) -> vector<4xf16> {
  %v = llvm.intr.masked.load %p, %m {alignment = 2 : i32} : (!llvm.ptr, vector<4xi1>) -> vector<4xf16>
  llvm.return %v : vector<4xf16>
}

// CHECK-LABEL: llvm.func @f32_untouched(
// CHECK-NOT: llvm.bitcast
// CHECK: llvm.intr.masked.load %{{.*}} -> vector<8xf32>
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> vector<8xbf16>
llvm.func @f32_untouched(%p: !llvm.ptr, %m: vector<8xi1>) -> vector<8xf32> {
  %v = llvm.intr.masked.load %p, %m {alignment = 4 : i32} : (!llvm.ptr, vector<8xi1>) -> vector<8xf32>
  %w = llvm.load %p : !llvm.ptr -> vector<8xbf16>
  llvm.return %v : vector<8xf32>
}
