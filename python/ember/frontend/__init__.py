"""The frontend: a torch.nn.Module and example inputs -> an ember dialect module + weights.

The only stage that imports torch or torch-mlir. Its product, `FrontendResult`, is plain data:
module text for the compiler's MLIR build, the weights by name, and the signature.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ember.frontend.errors import ExportError, UnsupportedOp, UnsupportedOpsError  # noqa: F401
from ember.tensor_spec import TensorSpec


@dataclass
class FrontendResult:
    module_text: str                          # generic-form MLIR: ember ops + linalg fallback
    weights: Dict[str, np.ndarray]
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    symbols: Dict[str, Dict[str, Optional[int]]]
    output_tree: Optional[dict] = None        # ember.output_tree: forward's result structure
    #: ATen ops ember's conversion left to torch-mlir's linalg lowering: (aten op, location
    #: text, why), in program order (`ember explain` lists them).
    fallbacks: List[Tuple[str, str, str]] = field(default_factory=list)
    #: The symbolic result shapes by "aten op at file:line" (ExportedModel.symbolic_shapes).
    symbolic_shapes: Dict[str, List[tuple]] = field(default_factory=dict)


def import_model(model, example_inputs: Sequence[Any], dynamic_shapes=None) -> FrontendResult:
    """Captures and imports `model`; raises UnsupportedOpsError listing every unsupported op."""
    from ember.frontend.export import export_model
    return import_exported(export_model(model, example_inputs, dynamic_shapes))


def import_exported(exported) -> FrontendResult:
    """Imports a model torch.export captured (an ember.frontend.export.ExportedModel) through
    torch-mlir. `ember.compile` captures in the caller's process, where torch keeps what it
    learnt from earlier captures, and imports in its compile worker, where torch-mlir's native
    code cannot take the caller down."""
    from ember.frontend.importer import import_to_text
    text, fallbacks = import_to_text(exported)
    return FrontendResult(text, exported.weights, exported.inputs, exported.outputs,
                          exported.symbols, exported.output_tree, fallbacks,
                          exported.symbolic_shapes)
