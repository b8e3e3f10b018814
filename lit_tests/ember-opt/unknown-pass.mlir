// RUN: not ember-opt %s --bogus-pass 2>&1 | filecheck %s
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize,bogus-pass)' 2>&1 | filecheck %s
// RUN: not ember-opt %s --ember-canonicalise 2>&1 | filecheck %s --check-prefix=TYPO

// An unknown pass name is reported before any input is read, with the ember passes listed;
// the exit code is 1 (`not` checks that it is non-zero).
// CHECK: ember-opt: error: invalid pipeline element in 'bogus-pass':
// CHECK-SAME: 'bogus-pass' does not refer to a registered pass or pass pipeline
// CHECK-SAME: (ember passes: {{.*}}ember-canonicalize, {{.*}}ember-fuse-epilogue, {{.*}}ember-lower-to-linalg
// CHECK-NOT: module

// A misspelt ember pass is not mistaken for an upstream one.
// TYPO: ember-opt: error: invalid pipeline element in 'ember-canonicalise'
// TYPO-SAME: ember-canonicalize

func.func @f() {
  return
}
