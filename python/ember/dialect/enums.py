"""The allowed values of ember's enum attributes, each vocabulary declared once.

Op declarations (dialect/ops/) constrain their string attributes to these tuples, which become
`irdl.any_of` constraints in the generated IRDL (so a bad value fails at parse time), the
verifier's check of ops built in memory, and the op reference. Later stages import them to stay
in step (e.g. which unary kinds can fuse into a GEMM as its activation).
"""
from __future__ import annotations

#: The floating-point element types ember ops compute in (ElementTypes.FLOAT).
FLOAT_TYPES = ("f16", "bf16", "f32", "f64")
#: Epilogue activations of `ember.gemm` and `ember.conv2d` ("none" means identity).
ACTIVATIONS = ("none", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh")
#: Kinds of `ember.unary`.
UNARY_KINDS = ("relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "exp", "log", "neg",
               "sqrt", "rsqrt", "abs", "reciprocal")
#: Kinds of `ember.binary`.
BINARY_KINDS = ("add", "sub", "mul", "div", "max", "min", "pow")
#: Activation layouts of `ember.conv2d` and `ember.pool2d`.
CONV_LAYOUTS = ("nchw", "nhwc")
#: Layouts of `ember.attention`'s operands: heads outside ([..., H, S, D], PyTorch's) or inside
#: the sequence ([..., S, H, D], a projection's output split into heads).
ATTENTION_LAYOUTS = ("bhsd", "bshd")
#: Kinds of `ember.pool2d`.
POOL_KINDS = ("max", "avg")
#: Kinds of `ember.reduce`.
REDUCE_KINDS = ("sum", "mean", "max", "min")
#: Byte encodings of `ember.qgemm`'s quantized activations (see ember.quant.schemes).
INT8_ENCODINGS = ("s8", "u8", "u7")
