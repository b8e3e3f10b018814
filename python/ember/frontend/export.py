"""torch.export capture: the graph, the weights, and the model's signature.

Produces an `ExportedModel`: the ATen FX graph (decomposed with torch-mlir's table, except for
the ops ember maps whole), the weights by their module path names (`fc1.weight`), and the
inputs/outputs with shapes whose dynamic dims are symbol expressions (`s0`, `2*s0`) plus each
symbol's declared range. Nothing here knows about MLIR.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import sympy
import torch

from ember.frontend.errors import (ExportError, UnsupportedOp, UnsupportedOpsError,
                                   user_line_in_stack_trace)
from ember.symbolic import Dim, DimLike
from ember.tensor_spec import TensorSpec

#: ATen ops ember converts whole; torch-mlir's decomposition table must leave them intact.
KEEP_WHOLE = ("linear", "gelu", "layer_norm", "native_layer_norm", "softmax", "_softmax",
              "silu", "addmm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "matmul",
              "scaled_dot_product_attention", "rms_norm", "mean")
#: torch-mlir's op name (with overload) for KEEP_WHOLE entries whose name differs, as its
#: backend-legal-ops option needs it.
TORCH_MLIR_NAMES = {"softmax": "softmax.int", "mean": "mean.dim"}

@dataclass
class ExportedModel:
    graph_module: torch.fx.GraphModule
    weight_names: List[str]            # placeholder order of the weights (params, buffers, ...)
    weights: Dict[str, np.ndarray]
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    symbols: Dict[str, Dict[str, Optional[int]]] = field(default_factory=dict)


def _numpy_dtype(dtype: torch.dtype) -> str:
    return str(torch.empty((), dtype=dtype).numpy().dtype) if dtype != torch.bfloat16 \
        else "bfloat16"


class _SymbolNames:
    """Renames torch's symbols (s77, s12, ...) to s0, s1, ... in order of first appearance in
    the inputs, so a manifest's dim names are stable and readable."""

    def __init__(self):
        self.renames = {}

    def dim(self, d) -> DimLike:
        if isinstance(d, int) or not hasattr(d, "node"):
            return int(d)
        expr = d.node.expr
        for sym in sorted(expr.free_symbols, key=str):
            if sym not in self.renames:
                self.renames[sym] = sympy.Symbol(f"s{len(self.renames)}", integer=True)
        return str(expr.xreplace(self.renames))

    def spec(self, role: str, name: str, value) -> TensorSpec:
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"'{name}' is a {type(value).__name__}; ember models take and "
                              f"return tensors only")
        return TensorSpec(role, name, _numpy_dtype(value.dtype),
                          tuple(Dim(self.dim(d)) for d in value.shape))


def _decompositions():
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table
    table = get_decomposition_table()
    from ember.frontend.decompositions import DECOMPOSITIONS
    keep = {getattr(torch.ops.aten, n) for n in KEEP_WHOLE}
    table = {op: fn for op, fn in table.items()
             if getattr(op, "overloadpacket", None) not in keep}
    return {**table, **DECOMPOSITIONS}  # ember's own (decompositions.py) win


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        import ml_dtypes
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _finite_bound(value) -> Optional[int]:
    """A symbol's bound as an int, or None when unbounded: a `torch.export.Dim` declared
    without `max` has torch's `int_oo`, which sympy calls finite but cannot convert."""
    from torch.utils._sympy.numbers import int_oo
    return None if value == int_oo or value.is_infinite else int(value)


def _refuse_data_dependent_shapes(graph: torch.fx.Graph) -> None:
    """Ops whose output size depends on tensor values (nonzero, boolean-mask reads such as
    `x[mask]`, masked_select, unique) give torch.export an unbacked size symbol. ember's
    buffers are sized from the input shapes alone, so such a model is refused here, naming the
    op that makes the size (torch-mlir's lowering of these shapes does not finish)."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
    sized = set()
    for node in graph.nodes:
        if isinstance(node.meta.get("val"), torch.Tensor):
            sized |= free_unbacked_symbols(node.meta["val"])
    refused = []
    for node in graph.nodes:
        if sized & set(node.meta.get("unbacked_bindings") or ()):
            refused.append(UnsupportedOp(
                str(node.target), user_line_in_stack_trace(node.meta.get("stack_trace")),
                "its output size depends on the input's values (a data-dependent shape); "
                "ember sizes every tensor from the input shapes"))
    if refused:
        raise UnsupportedOpsError(refused)


@contextlib.contextmanager
def _in_inference_mode(model: torch.nn.Module):
    """Runs the block with `model` in eval mode, then gives every submodule back the mode it
    had: ember compiles inference graphs, and the caller's module is never left changed. A
    module in train() mode gets a warning (its dropout and batch statistics are not what
    ember compiles)."""
    modes = {m: m.training for m in model.modules()}
    if any(modes.values()):
        warnings.warn("the model is in train() mode; ember compiles it as in eval() mode "
                      "(dropout off, BatchNorm with running statistics) and leaves your module "
                      "as it was", stacklevel=4)
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def export_model(model: torch.nn.Module, example_inputs: Sequence[Any],
                 dynamic_shapes=None) -> ExportedModel:
    """Captures `model` with torch.export and splits it into graph, weights and signature."""
    try:
        with _in_inference_mode(model), torch.no_grad():
            program = torch.export.export(model, tuple(example_inputs),
                                          dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch.export's own messages are detailed; keep them
        raise ExportError(f"torch.export failed: {e}") from e
    _refuse_data_dependent_shapes(program.graph)
    try:
        program = program.run_decompositions(_decompositions())
    except Exception as e:
        raise ExportError(f"torch.export failed: {e}") from e

    from torch.export.graph_signature import InputKind, OutputKind
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    state = {**program.state_dict, **program.constants}
    names = _SymbolNames()
    weight_names, weights, inputs = [], {}, []
    for spec, node in zip(program.graph_signature.input_specs, placeholders):
        if spec.kind == InputKind.USER_INPUT:
            inputs.append(names.spec("input", node.name, node.meta["val"]))
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            weight_names.append(spec.target)
            weights[spec.target] = _to_numpy(state[spec.target])
        else:
            raise ExportError(f"unsupported model input kind {spec.kind} for '{node.name}'")

    output_node = next(n for n in program.graph.nodes if n.op == "output")
    outputs = []
    for i, (spec, value) in enumerate(zip(program.graph_signature.output_specs,
                                          output_node.args[0])):
        if spec.kind != OutputKind.USER_OUTPUT:
            raise ExportError(f"the model mutates state ({spec.kind.name} of "
                              f"'{spec.target}'); ember compiles inference graphs only")
        outputs.append(names.spec("output", f"output_{i}", value.meta["val"]))

    symbols = {}
    for sym, bounds in program.range_constraints.items():
        if sym not in names.renames:
            continue  # a symbol no input or output shape uses
        symbols[str(names.renames[sym])] = {"min": int(bounds.lower),
                                            "max": _finite_bound(bounds.upper)}
    return ExportedModel(program.graph_module, weight_names, weights, inputs, outputs, symbols)
