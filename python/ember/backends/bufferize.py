"""The upstream bufferization passes every target runs (verified on MLIR 22.1.8; DESIGN.md 3).

One-shot bufferization across function boundaries; results become caller-provided
out-parameters (the runtime owns every output buffer), and functions that write an argument in
place (GEMM kernels) drop the equivalent result. A parallel_insert_slice of a slice written in
place bufferizes to a copy between two identical subviews: CSE makes them one value and
canonicalization drops the self-copy."""
from __future__ import annotations

from typing import List

from ember.pipeline.pipeline import UpstreamPass, upstream


def bufferize_passes() -> List[UpstreamPass]:
    return [
        upstream("one-shot-bufferize", "bufferize-function-boundaries",
                 function_boundary_type_conversion="identity-layout-map"),
        upstream("drop-equivalent-buffer-results"),
        upstream("buffer-results-to-out-params", "hoist-static-allocs",
                 "modify-public-functions"),
        upstream("cse"),
        upstream("canonicalize"),
    ]
