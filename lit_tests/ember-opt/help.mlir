// RUN: ember-opt --help | filecheck %s
// RUN: ember-opt -h | filecheck %s
// RUN: ember-opt --list-passes | filecheck %s --check-prefix=PASSES
// RUN: ember-opt --help > %t.help
// RUN: ember-opt --list-passes > %t.passes
// RUN: %python -c "import sys; from ember.tools.ember_opt import describe_passes; help, passes = (open(p).read() for p in sys.argv[1:]); sys.exit(not (describe_passes() in help and passes == describe_passes() + '\n'))" %t.help %t.passes

// --help lists the tool's options and every registered ember pass with its summary and its
// options (name: type = default), all generated from the pass registry: the last RUN line
// checks that both --help and --list-passes print describe_passes(), which
// tests/test_ember_opt.py checks against the registry.
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
