"""Graph passes on ember IR (stage 0 of every target): simplify, fold weight-only math and
BatchNorm, convert layouts, recognize attention/RMSNorm/RoPE, fold grouped-query heads and
attention's head transposes, fuse epilogues, merge GEMMs, quantize, store chosen weights in 16
bits (implicit precision).
Importing the package registers them."""
from ember.transforms import (  # noqa: F401  (imported for registration)
    canonicalize, fold_constants, fold_batch_norm, convert_layout, merge_parallel_gemms,
    fuse_attention, fold_grouped_heads, fold_attention_layout, fuse_rms_norm,
    fuse_rotary_embedding, fuse_epilogue, fold_quantized_ops, quantize, implicit_precision,
    label_kernels)
