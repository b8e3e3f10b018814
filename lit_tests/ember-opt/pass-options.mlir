// RUN: not ember-opt %s --ember-fuse-epilogue=bogus=true 2>&1 | filecheck %s --check-prefix=NAME
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-fuse-epilogue{bogus=true})' 2>&1 | filecheck %s --check-prefix=NAME
// RUN: not ember-opt %s --ember-fuse-epilogue=bias=maybe 2>&1 | filecheck %s --check-prefix=BOOL
// RUN: not ember-opt %s --ember-fold-constants=max-elements=lots 2>&1 | filecheck %s --check-prefix=INT
// RUN: not ember-opt %s --canonicalize=bogus=1 2>&1 | filecheck %s --check-prefix=UPSTREAM
// RUN: not ember-opt %s --cse --pass-pipeline='builtin.module(cse)' 2>&1 | filecheck %s --check-prefix=BOTH
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize' 2>&1 | filecheck %s --check-prefix=UNBALANCED
// RUN: not ember-opt %s --pass-pipeline='builtin.module(ember-canonicalize(cse))' 2>&1 | filecheck %s --check-prefix=NESTING
// RUN: not ember-opt %s --no-such-flag=1 2>&1 | filecheck %s --check-prefix=FLAG

// Pass options are checked against the pass's declared fields: the name, then the value's type.
// NAME: ember-opt: error: pass 'ember-fuse-epilogue' has no option 'bogus' (options: activation, bias, residual)
// BOOL: ember-opt: error: pass 'ember-fuse-epilogue': option 'bias' expects bool, got 'maybe'
// INT: ember-opt: error: pass 'ember-fold-constants': option 'max-elements' expects int, got 'lots'
// Upstream options are MLIR's to check.
// UPSTREAM: ember-opt: error: invalid pipeline element in 'canonicalize{bogus=1}': {{.*}}no such option bogus
// Pass flags and --pass-pipeline are two ways to say one thing: not both.
// BOTH: ember-opt: error: pass flags (--cse) and --pass-pipeline cannot be used together
// UNBALANCED: ember-opt: error: unbalanced '(' in 'builtin.module(ember-canonicalize'
// NESTING: ember-opt: error: ember pass 'ember-canonicalize' cannot nest passes
// An unknown flag is taken as a pass name.
// FLAG: ember-opt: error: invalid pipeline element in 'no-such-flag{1}'

func.func @f() {
  return
}
