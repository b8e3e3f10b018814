"""The graph pipeline: stage 0 of every target's stage table.

Simplify, fold weight-only math and BatchNorm, convert conv nets to NHWC (transposes of filters
fold; those between layers cancel), recognize attention, multiply grouped-query heads against
the unrepeated keys and values, let attention read its heads in place (no transposes),
recognize RMSNorm and rotary embeddings, fuse GEMM/conv epilogues, fold a quantized model's
dequantize -> GEMM chains into int8 GEMMs, merge GEMMs sharing an input (Q/K/V), quantize
(when asked; after fusion, so an int8 GEMM keeps its epilogue), then clean up.
"""
from __future__ import annotations

from ember.pipeline.pipeline import Pipeline, upstream
from ember.transforms.canonicalize import Canonicalize
from ember.transforms.convert_layout import ConvertLayout
from ember.transforms.fold_attention_layout import FoldAttentionLayout
from ember.transforms.fold_batch_norm import FoldBatchNorm
from ember.transforms.fold_constants import FoldConstants
from ember.transforms.fold_grouped_heads import FoldGroupedHeads
from ember.transforms.fold_quantized_ops import FoldQuantizedOps
from ember.transforms.fuse_attention import FuseAttention
from ember.transforms.fuse_epilogue import FuseEpilogue
from ember.transforms.fuse_rms_norm import FuseRmsNorm
from ember.transforms.fuse_rotary_embedding import FuseRotaryEmbedding
from ember.transforms.implicit_precision import ImplicitPrecision
from ember.transforms.label_kernels import LabelKernels
from ember.transforms.merge_parallel_gemms import MergeParallelGemms
from ember.transforms.quantize import Quantize


def graph_pipeline(*, merge_parallel_gemms: bool = True, quantize=None,
                   precision=None, label_kernels: bool = False) -> Pipeline:
    """The graph passes; `merge_parallel_gemms=False` keeps GEMMs sharing an input apart (no
    concatenated weight copies); `quantize` (an ember.quant.Int8) adds ember-quantize (its
    GEMMs in dynamic mode; static mode quantized them before import, the pass then quantizes
    the embedding tables); `precision` (ember-implicit-precision's options) adds that pass
    after it (int8 layers are no longer f32 GEMMs, the others get 16-bit weights);
    `label_kernels` ends it with ember-label-kernels (a profile build times each step)."""
    quantization = [] if quantize is None else [Quantize(**quantize.pass_options())]
    if precision is not None:
        quantization.append(ImplicitPrecision(**precision))
    return Pipeline.of([
        Canonicalize(), FoldConstants(), FoldBatchNorm(), ConvertLayout(), FoldConstants(),
        FuseAttention(), FoldGroupedHeads(), FoldAttentionLayout(), FuseRmsNorm(),
        FuseRotaryEmbedding(), FuseEpilogue(),
        FoldQuantizedOps(),
        MergeParallelGemms(enabled=merge_parallel_gemms), *quantization, Canonicalize(),
        upstream("canonicalize"), upstream("cse"), *([LabelKernels()] if label_kernels else []),
    ])
