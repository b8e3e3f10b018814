"""CPU backends (host x86-64, AArch64): their passes (Winograd, weight packing, GEMM
micro-kernels, buffer planning, threads, vectorization, LLVM preparation), the micro-kernel
generator and the targets' stage tables. Importing the package registers its passes."""
from ember.backends.cpu import (  # noqa: F401  (imported for registration)
    conv_winograd, pack_weights, cpu_contractions, kernel_destinations, plan_buffers,
    gemm_kernels, reassociate_reductions, expand_math, parallelize_loops, vectorize_generics,
    widen_bool_memrefs, inline_alloca_scopes, c_interface, runtime_checks,
    masked_half_as_int16, padded_results)
