"""CPU backends (host x86-64, AArch64): their passes (Winograd, weight packing, GEMM
micro-kernels, buffer planning, threads, vectorization, LLVM lowering), the micro-kernel
generator and the targets' stage tables. Importing the package registers its passes."""
from ember.backends.cpu import (  # noqa: F401  (imported for registration)
    conv_winograd, pack_weights, cpu_contractions, gemm_kernels, widen_bool_memrefs,
    plan_buffers, parallelize_loops, vectorize_generics, host_to_llvm)
