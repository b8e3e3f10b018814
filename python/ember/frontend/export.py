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
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import sympy
import torch

from ember.frontend.errors import ExportError, UnsupportedOpsError
from ember.frontend.outputs import dataclasses_as_dicts, describe
from ember.frontend.user_calls import UserCall
from ember.progress import quiet_library_deprecations
from ember.source_locations import user_frame, user_line_in_stack_trace
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
    output_tree: Optional[dict] = None  # ember.output_tree: forward's result around `outputs`
    #: "aten.linear at model.py:12" -> the symbolic shapes (dims as "s0", "2*s0", ints) of the
    #: results that op computes there, where one is dynamic: how `ember explain` names dims.
    symbolic_shapes: Dict[str, List[Tuple[DimLike, ...]]] = field(default_factory=dict)


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

    def spec(self, role: str, name: str, value, writes_back=None) -> TensorSpec:
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"'{name}' is a {type(value).__name__}; ember models take and "
                              f"return tensors (and return constants) only")
        return TensorSpec(role, name, _numpy_dtype(value.dtype),
                          tuple(Dim(self.dim(d)) for d in value.shape), writes_back=writes_back)


def _decompositions():
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table
    table = get_decomposition_table()
    from ember.frontend.decompositions import DECOMPOSITIONS
    keep = {getattr(torch.ops.aten, n) for n in KEEP_WHOLE}
    table = {op: fn for op, fn in table.items()
             if getattr(op, "overloadpacket", None) not in keep}
    # ember's own (decompositions.py) win; where one declines (NotImplemented), the op gets
    # torch-mlir's decomposition if there is one, else stays whole.
    return {**table, **{op: _either(fn, table[op]) if op in table else fn
                        for op, fn in DECOMPOSITIONS.items()}}


def _either(first, second):
    """A decomposition trying `first`, then `second` when `first` returns NotImplemented."""
    def decompose(*args, **kwargs):
        result = first(*args, **kwargs)
        return second(*args, **kwargs) if result is NotImplemented else result
    return decompose


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
            refused.append(UserCall.of(node).refused(
                user_line_in_stack_trace(node.meta.get("stack_trace")),
                "its output size depends on the input's values (a data-dependent shape); "
                "ember sizes every tensor from the input shapes"))
    if refused:
        raise UnsupportedOpsError(refused)


@contextlib.contextmanager
def in_inference_mode(model: torch.nn.Module):
    """Runs the block with `model` in eval mode, then gives every submodule back the mode it
    had: ember compiles inference graphs, and the caller's module is never left changed. A
    module in train() mode gets a warning (its dropout and batch statistics are not what
    ember compiles)."""
    modes = {m: m.training for m in model.modules()}
    if any(modes.values()):
        try:
            model.eval()
        except NotImplementedError:
            pass  # a graph captured by torch.export (convert_pt2e's): its modes were fixed then
        else:
            warnings.warn("the model is in train() mode; ember compiles it as in eval() mode "
                          "(dropout off, BatchNorm with running statistics) and leaves your "
                          "module as it was", stacklevel=4)
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def export_model(model: torch.nn.Module, example_inputs: Sequence[Any],
                 dynamic_shapes=None) -> ExportedModel:
    """Captures `model` with torch.export and splits it into graph, weights and signature."""
    try:
        with in_inference_mode(model), torch.no_grad(), \
                dataclasses_as_dicts(model) as dataclass_paths, quiet_library_deprecations():
            program = _export(model, tuple(example_inputs), dynamic_shapes)
    except ExportError:
        raise
    except Exception as e:  # torch.export's own messages are detailed; keep them
        raise ExportError(f"torch.export failed: {e}") from e
    _refuse_data_dependent_shapes(program.graph)
    try:
        with quiet_library_deprecations():
            program = program.run_decompositions(_decompositions())
    except Exception as e:
        raise ExportError(f"torch.export failed: {e}") from e
    _drop_runtime_asserts(program.graph_module)

    from torch.export.graph_signature import InputKind
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
    outputs, output_tree = _outputs(program, names, dataclass_paths)

    symbols = {}
    for sym, bounds in program.range_constraints.items():
        if sym not in names.renames:
            continue  # a symbol no input or output shape uses
        symbols[str(names.renames[sym])] = {"min": int(bounds.lower),
                                            "max": _finite_bound(bounds.upper)}
    return ExportedModel(program.graph_module, weight_names, weights, inputs, outputs, symbols,
                         output_tree, _symbolic_shapes(program.graph, names))


def _symbolic_shapes(graph, names: _SymbolNames) -> Dict[str, List[Tuple[DimLike, ...]]]:
    """The distinct symbolic result shapes of the aten calls with a dynamic dim, by "aten op
    at file:line" (the key `describe_origin` makes of a location lowered from the call)."""
    from ember.frontend.user_calls import aten_op_name
    shapes: Dict[str, List[Tuple[DimLike, ...]]] = {}
    for node in graph.nodes:
        value, op = node.meta.get("val"), aten_op_name(node)
        if op is None or not isinstance(value, torch.Tensor) or \
                all(isinstance(d, int) for d in value.shape):
            continue
        line = user_line_in_stack_trace(node.meta.get("stack_trace"))
        shape = tuple(names.dim(d) for d in value.shape)
        found = shapes.setdefault(f"{op} at {line}" if line else op, [])
        if shape not in found:
            found.append(shape)
    return shapes


#: The assertions torch.export leaves in a graph about symbolic sizes: ember checks each call's
#: input shapes against the exported ranges at the artifact's entry instead.
_RUNTIME_ASSERTS = ("_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range",
                    "sym_constrain_range_for_size")


def _drop_runtime_asserts(graph_module) -> None:
    """Removes torch.export's run-time assertions on symbolic sizes (and the size arithmetic
    only they used): the deferred guards `_export` asks for and the range asserts export
    inserts, none of which ember's importer or kernels take."""
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and \
                getattr(node.target, "__name__", "").split(".")[0] in _RUNTIME_ASSERTS:
            graph.erase_node(node)
    graph.eliminate_dead_code()
    graph_module.recompile()


def _export(model, args: tuple, dynamic_shapes):
    """torch.export, non-strict first (it traces more Python); a model that turns tensor data
    into Python numbers (`.item()`, `int(t)`) fails there on a data-dependent guard, and is
    tried again under strict export (dynamo), which captures such scalars symbolically.

    A guard torch's symbolic reasoning cannot prove over a dim's whole range (a Llama decode
    step's grouped-query `repeat_kv` reshape of the cache: `min(16 + 16 p, 32 + 32 p) ==
    16 + 16 p`, true for every p >= 0) fails export with "Constraints violated"; it is tried
    again with such guards deferred to run-time asserts, which ember drops (the shapes a call
    may take are checked at the artifact's entry)."""
    try:
        return torch.export.export(model, args, dynamic_shapes=dynamic_shapes, strict=False)
    except Exception as non_strict:
        if "Constraints violated" in str(non_strict):
            return torch.export.export(model, args, dynamic_shapes=dynamic_shapes, strict=False,
                                       prefer_deferred_runtime_asserts_over_guards=True)
        if not _is_data_dependent(non_strict):
            raise
        try:
            return torch.export.export(model, args, dynamic_shapes=dynamic_shapes, strict=True)
        except Exception as strict:
            where = user_frame(non_strict.__traceback__) or "an unknown line"
            raise ExportError(
                f"torch.export cannot capture the model: {where} turns tensor data into a "
                f"Python number (as .item() or int(tensor) do) and uses it where the graph "
                f"needs a fixed value (a shape, a branch, a Python int). Neither non-strict "
                f"export ({type(non_strict).__name__}: {_first_line(non_strict)}) nor strict "
                f"export ({type(strict).__name__}: {_first_line(strict)}) could trace it. "
                f"Keep the value a tensor (e.g. x * t instead of x * t.item(), torch.where or "
                f"torch.cond instead of an if), or compute it outside the model and pass it "
                f"in.") from strict


def _is_data_dependent(error: BaseException) -> bool:
    """Whether export failed on a value computed from tensor data (torch raises
    GuardOnDataDependentSymNode, or a UserError quoting the data-dependent expression)."""
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
    while error is not None:
        if isinstance(error, GuardOnDataDependentSymNode) or "data-dependent" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _first_line(error: BaseException) -> str:
    return next((line for line in str(error).splitlines() if line.strip()), "")


def _outputs(program, names: "_SymbolNames", dataclass_paths):
    """The compiled graph's outputs and the output tree.

    torch.export lists the model's mutations first (the new value of each buffer and input
    that forward changes in place, `x.copy_(y)` or `self.count += 1`), then forward's result.
    Mutations stay outputs, each marked with what the runtime writes it back to; of the
    result, tensors are outputs and constants (an int, None) live only in the output tree, so
    the graph's output op is rewritten to return tensors alone."""
    from torch.export.graph_signature import OutputKind
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    write_back = {OutputKind.BUFFER_MUTATION: "constant",
                  OutputKind.USER_INPUT_MUTATION: "input"}
    outputs, tensors, leaves = [], [], []
    for spec, value in zip(program.graph_signature.output_specs, output_node.args[0]):
        val = value.meta.get("val") if isinstance(value, torch.fx.Node) else None
        if spec.kind in write_back:
            outputs.append(names.spec("output", f"mutated.{spec.target}", val,
                                      writes_back=(write_back[spec.kind], spec.target)))
        elif spec.kind != OutputKind.USER_OUTPUT:
            raise ExportError(f"the model's output {spec.kind.name} of '{spec.target}' is not "
                              f"supported; ember compiles inference graphs")
        elif isinstance(value, torch.fx.Node):
            k = sum("tensor" in leaf for leaf in leaves)
            leaves.append({"tensor": len(outputs)})
            outputs.append(names.spec("output", f"output_{k}", val))
        elif isinstance(value, (int, float, bool, str, type(None))):
            leaves.append({"constant": value})
            continue
        else:
            raise ExportError(f"the model returns a {type(value).__name__} ({value!r}); ember "
                              f"returns tensors and int, float, bool, str or None constants")
        tensors.append(value)
    output_node.args = (tuple(tensors),)
    tree = describe(program.call_spec.out_spec, leaves, dataclass_paths)
    return outputs, tree
