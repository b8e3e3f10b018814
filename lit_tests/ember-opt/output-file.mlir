// RUN: ember-opt %s --ember-canonicalize -o %t > %t.terminal 2>&1
// RUN: filecheck %s < %t
// RUN: %python -c "import sys; sys.exit(open(sys.argv[1]).read() != '')" %t.terminal
// RUN: ember-opt %s --ember-canonicalize -o - | filecheck %s
// RUN: not ember-opt %s -o %t.missing-dir/out.mlir 2>&1 | filecheck %s --check-prefix=ERR
// RUN: not ember-opt %t.no-such-input.mlir 2>&1 | filecheck %s --check-prefix=NOINPUT

// -o writes the output to a file (and nothing to stdout or stderr); `-o -` is stdout.
// CHECK-LABEL: func.func @f
// CHECK-NEXT: return %arg0
// ERR: ember-opt: error: cannot write output file '{{.*}}out.mlir': No such file or directory
// NOINPUT: ember-opt: error: cannot open input file '{{.*}}no-such-input.mlir': No such file or directory
func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = "ember.reshape"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
