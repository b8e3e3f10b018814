"""The lowering kit: what passes and code generators of every backend build with, below both.

Scalar and vector math (`scalar_math`, `vector_math`), the one GEMM/conv epilogue
(`epilogue`), structured-op builders (`structured`), small builders and control flow
(`builders`), the rewrite drivers (`rewrite`), IR queries (`ir_queries`), shared private
kernel functions (`private_functions`), the GEMM kernel spec base and its attribute codec
(`gemm_spec`, `attr_codec`), memref views (`memref_views`) and the live-range memory planner
(`memory_plan`). It imports no pass and no backend."""
