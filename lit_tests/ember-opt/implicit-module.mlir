// RUN: not ember-opt %s --split-input-file 2>/dev/null | filecheck %s
// RUN: ember-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Like mlir-opt, a source whose only top-level op is a builtin.module is that module (its
// name and attributes kept); several top-level ops, or one that is not a module, are wrapped
// in an implicit module; an empty chunk is an empty module.

// CHECK: module @named attributes {ember.target = "host"} {
// CHECK-NEXT: func.func @f()
// CHECK: // -----
module @named attributes {ember.target = "host"} {
  func.func @f() {
    return
  }
}

// -----

// A module next to another op is nested in the implicit one.
// CHECK-NEXT: module {
// CHECK-NEXT: func.func private @decl()
// CHECK-NEXT: module @inner {
// CHECK: // -----
func.func private @decl()
module @inner {
}

// -----

// CHECK-NEXT: module {
// CHECK-NEXT: func.func @a()
// CHECK: func.func @b()
// CHECK: // -----
func.func @a() {
  return
}
func.func @b() {
  return
}

// -----

// Diagnostics in a wrapped chunk keep their lines (and the chunk prints nothing).
// CHECK-NEXT: // -----
func.func @c(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
func.func @d(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'"nope"' does not satisfy the constraint}}
  %0 = "ember.unary"(%x) {kind = "nope"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-NEXT: module {
// CHECK-NEXT: }
