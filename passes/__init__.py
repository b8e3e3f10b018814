"""ember's passes: one module per pass, each registered once by name.

Importing this package registers every pass; `REGISTRY` maps pipeline names to pass classes for
ember-opt, pipeline strings and Python alike.
"""
from .base import REGISTRY, EmberPass, PassContext, PassOptionError, register  # noqa: F401
from . import (  # noqa: F401  (imported for registration)
    canonicalize,
    fuse_epilogue,
    fold_constants,
    fold_batch_norm,
    convert_layout,
    merge_parallel_gemms,
    fuse_attention,
    fuse_rms_norm,
    fuse_rotary_embedding,
    conv_winograd,
    conv_to_gemm,
    pack_weights,
    lower_to_linalg,
    cpu_contractions,
    gemm_microkernel,
    bind_weights,
    legalize_reshapes,
    widen_bool_memrefs,
    plan_buffers,
    parallelize_loops,
    vectorize_generics,
    host_to_llvm,
    gpu_outline_gemms,
    gpu_kernels,
)

__all__ = ["REGISTRY", "EmberPass", "PassContext", "PassOptionError", "register"]
