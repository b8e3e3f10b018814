// RUN: ember-opt --help | filecheck %s
// RUN: ember-opt -h | filecheck %s
// RUN: ember-opt --list-passes | filecheck %s --check-prefix=PASSES
// RUN: ember-opt --help > %t
// RUN: %python -c "import sys; from ember.pipeline import load_passes; REGISTRY = load_passes(); text = open(sys.argv[1]).read(); missing = [n for n in REGISTRY if '--' + n + ' ' not in text]; print('not in --help:', missing); sys.exit(bool(missing))" %t

// --help lists the tool's options and every registered ember pass with its summary and its
// options (name: type = default), all generated from the pass registry. The last RUN line
// checks that no registered pass is missing.
// CHECK: usage: ember-opt
// CHECK-DAG: --pass-pipeline
// CHECK-DAG: --split-input-file
// CHECK-DAG: --verify-diagnostics
// CHECK-DAG: --mlir-print-ir-after-all
// CHECK-DAG: --mlir-print-debuginfo
// CHECK-DAG: --mlir-print-op-generic
// CHECK-DAG: --weights
// CHECK-DAG: --target
// CHECK-DAG: --stages
// CHECK-DAG: --disable-passes
// CHECK: ember passes
// CHECK: --ember-bind-weights {{ *}}Replaces ember.weight ops with function arguments
// CHECK: --ember-canonicalize {{ *}}Simplifies ember ops
// CHECK: --ember-fold-constants {{ *}}Evaluates ember ops on constants at compile time
// CHECK-NEXT: max-elements: int = 67108864
// CHECK: --ember-fuse-epilogue {{ *}}Fuses bias adds, activations and residual adds
// CHECK-NEXT: bias: bool = true
// CHECK-NEXT: activation: bool = true
// CHECK-NEXT: residual: bool = true
// CHECK: --ember-gpu-launch-rows {{ *}}Launches each row group
// CHECK-NEXT: threads: int = 256
// CHECK: --ember-lower-to-linalg {{ *}}Lowers ember ops
// CHECK: Any other --<name>[=<options>] is an upstream MLIR pass

// --list-passes prints only the passes.
// PASSES-NOT: usage
// PASSES: ember passes
// PASSES: --ember-canonicalize
// PASSES: --ember-fuse-epilogue
