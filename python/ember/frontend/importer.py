"""PyTorch -> ember dialect module text, through torch-mlir (in torch-mlir's own MLIR build).

    ExportedModel --FX import--> torch dialect --backend contract--> torch --torch-to-ember-->
    torch + ember --TorchToTMTensor, TorchToLinalg (the fallback)--> ember + linalg + tm_tensor
    --TMTensor to loops--> ember + linalg + scf --generic text--> compiler

torch-mlir's MLIR (LLVM 24) is used only here. The compiler receives generic-form text, which
MLIR 22 parses; weights are function arguments turned into `ember.weight` ops, so no weight
data is ever printed. Ops that neither ember nor the fallback lowers are reported all at once.
"""
from __future__ import annotations

import re
from typing import List, Set, Tuple

from ember.frontend.errors import UnsupportedOp, UnsupportedOpsError
from ember.frontend.export import KEEP_WHOLE, TORCH_MLIR_NAMES, ExportedModel
from ember.frontend.tm_tensor_to_loops import lower_tm_tensor_ops
from ember.frontend.torch_to_ember import Converter
from ember.frontend.user_calls import (UserCalls, aten_op_name, blame, complex_calls,
                                       unsupported_complex_calls, user_calls)
from ember.progress import announce
from ember.source_locations import user_line_in_stack_trace

#: torch-mlir's backend-to-linalg pipeline without the final contract check (ember ops are
#: legal here). The TMTensor ops it makes have no MLIR 22 counterpart: tm_tensor_to_loops.py
#: turns them into loops afterwards.
TORCH_TO_LINALG = (
    "func.func(torch-restructure-non-constant-axes)",
    "func.func(torch-fuse-quantized-ops)",
    "func.func(convert-torch-to-tmtensor)",
    "func.func(canonicalize)",
    "func.func(convert-torch-to-linalg)",
    "func.func(canonicalize)",
    "func.func(convert-torch-to-scf)",
    "func.func(convert-torch-to-arith)",
    "func.func(convert-torch-to-tensor)",
    "convert-torch-conversion-to-mlprogram",
    "func.func(memref-expand)",
    "func.func(canonicalize)",
    "func.func(resolve-shaped-type-result-dims)",
    "func.func(cse)",
    "torch-func-backend-type-conversion",
    "func.func(canonicalize)",
    "func.func(torch-finalizing-backend-type-conversion)",
)
#: Partial conversions that fail as a whole (nothing converted) when one op they target fails.
ALL_OR_NOTHING = ("func.func(convert-torch-to-tmtensor)", "func.func(convert-torch-to-linalg)")


def _data_dependent_scalars() -> tuple:
    import torch
    return (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default)


def _run(module, pipeline: str, what: str, calls: UserCalls, all_or_nothing: bool = False) -> None:
    """Runs a torch-mlir pipeline; when it fails, reports the torch ops left (or, when none is,
    the calls on complex tensors, which make torch-mlir's lowering fail without naming an op).
    A pipeline that fails `all_or_nothing` (the backend contract, a conversion in
    ALL_OR_NOTHING) leaves every op it would have handled behind: only the ops its
    diagnostics name, and ops torch-mlir does not know, are the model's problem."""
    from torch_mlir.passmanager import PassManager
    announce(stage="frontend", step=f"torch-mlir {what}")
    with module.context:
        try:
            PassManager.parse(f"builtin.module({pipeline})").run(module.operation)
        except Exception as e:
            leftovers = _leftover_ops(module, calls,
                                      _rejected_op_names(e) if all_or_nothing else ()) or \
                complex_calls(calls)
            if leftovers:
                raise UnsupportedOpsError(leftovers) from e
            raise RuntimeError(f"torch-mlir failed during {what}: {e}") from e


#: Torch ops that only carry values (constants, lists); a user's model never "uses" them.
_PLUMBING = ("torch.constant.", "torch.vtensor.literal", "torch.prim.ListConstruct")
_REJECTED = re.compile(r"failed to legalize operation '([\w.]+)'|name = \"([\w.]+)\"")


def _rejected_op_names(error) -> Set[str]:
    """Names of the ops a failed conversion says it could not legalize (for `torch.operator`,
    the ATen name it carries)."""
    names: Set[str] = set()
    for diagnostic in getattr(error, "error_diagnostics", ()):
        text = "\n".join([diagnostic.message] + [str(n.message) for n in diagnostic.notes])
        for legalize, operator in _REJECTED.findall(text):
            names.add(legalize or operator)
    return names


def _op_name(op) -> str:
    """The op's name, `torch.operator` (an op torch-mlir does not know) by the name it holds."""
    if op.name == "torch.operator":
        from torch_mlir import ir
        return ir.StringAttr(op.attributes["name"]).value
    return op.name


def _leftover_ops(module, calls: UserCalls, rejected=()) -> List[UnsupportedOp]:
    """The torch and TMTensor ops left in `module`, blamed on the user's calls they were lowered
    from (user_calls.blame); with `rejected` names, only those and unknown ops
    (`torch.operator`) if any is left."""
    from torch_mlir import ir
    found: List = []

    def visit(op):
        name = _op_name(op)
        if name.startswith(("torch.", "tm_tensor.")) and not name.startswith(_PLUMBING):
            found.append((name, op))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    blamed = [(name, op) for name, op in found
              if rejected and (name in rejected or op.name == "torch.operator")]
    return blame([(name.replace("torch.", "", 1), str(op.location), _why(op, bool(blamed)))
                  for name, op in blamed or found], calls)


def _why(op, rejected: bool) -> str:
    if op.name == "torch.operator":
        return "an op torch-mlir does not know, and no ember conversion"
    if op.name.startswith("tm_tensor."):
        return "torch-mlir lowers it only to this TMTensor op, which ember does not lower"
    if rejected:
        return "torch-mlir's lowering rejects it with these shapes, dtypes or arguments"
    return "no ember conversion and no torch-mlir lowering"


def _name_locations_by_aten_op(importer) -> None:
    """Wraps every node's location in a name location of its aten op (`loc("aten.embedding"(
    callsite(...)))`). The linalg ops lowered from the node keep that location, so the
    compiler's run-time checks can name the op whose index or divisor was bad. The importer
    asks its context cache for each node's location and offers no hook, so its cache (`_cc`)
    is replaced by one that names them."""
    from torch_mlir import ir
    from torch_mlir.extras.fx_importer import ContextCache

    class NamingCache(ContextCache):
        def get_node_location(self, node):
            loc = super().get_node_location(node)
            op = aten_op_name(node)
            return ir.Location.name(op, childLoc=loc, context=self._c) \
                if op and loc is not None else loc

    importer._cc = NamingCache(importer._c, py_attr_tracker=importer._py_attr_tracker)


def _load_torch_conversion_dialect(context) -> None:
    """Loads `torch_c`, whose casts the converter builds.

    torch-mlir's Python API registers only the torch dialect; torch_c is loaded as a dependent
    dialect when a pass that needs it runs, so run one such pass on an empty module.
    """
    from torch_mlir import ir
    from torch_mlir.passmanager import PassManager
    with context:
        empty = ir.Module.parse("module {}")
        PassManager.parse("builtin.module(func.func(convert-torch-to-arith))").run(empty.operation)


def import_to_text(exported: ExportedModel) -> Tuple[str, List[Tuple[str, str, str]]]:
    """The model as ember-dialect (+ linalg fallback) module text in generic op form, and the
    ATen ops left to the fallback (aten op, location text, why)."""
    from torch_mlir import ir
    from torch_mlir.dialects import irdl, torch as torch_d
    from torch_mlir.extras.fx_importer import FxImporter

    from ember.dialect import load as load_dialect

    context = ir.Context()
    torch_d.register_dialect(context)
    _load_torch_conversion_dialect(context)
    load_dialect(context, ir, irdl)
    announce(stage="frontend", step="torch-mlir FX import")
    importer = FxImporter(context=context)
    _name_locations_by_aten_op(importer)
    graph = exported.graph_module.graph
    # (found before importing: the importer rewrites the graph as it goes)
    calls = user_calls(graph)
    scalars = [user_line_in_stack_trace(node.meta.get("stack_trace"))
               for node in graph.nodes
               if node.op == "call_function" and node.target in _data_dependent_scalars()]
    refused = unsupported_complex_calls(calls)
    if refused:
        raise UnsupportedOpsError(refused)
    try:
        importer.import_stateless_graph(graph, func_name="main")
    except Exception as e:  # the FX importer asserts on what it cannot import
        if scalars:
            raise UnsupportedOpsError([
                UnsupportedOp("aten.item", line,
                              f"turns tensor data into a Python number (.item(), int(t)), "
                              f"whose use torch-mlir cannot import ({e}); keep the value a "
                              f"tensor (x * t rather than x * t.item())")
                for line in scalars]) from e
        raise RuntimeError(f"torch-mlir could not import the exported graph: {e}") from e
    module = importer.module
    legal = ",".join(f"aten.{TORCH_MLIR_NAMES.get(n, n)}" for n in KEEP_WHOLE)
    _run(module, "func.func(torch-match-quantized-custom-ops),"
                 f"torchdynamo-export-to-torch-backend-pipeline{{backend-legal-ops={legal}}}",
         "torch backend contract", calls, all_or_nothing=True)
    announce(stage="frontend", step="torch-to-ember conversion")
    with context:
        mutable = {s.writes_back[1] for s in exported.outputs
                   if s.writes_back and s.writes_back[0] == "constant"}
        converter = Converter(ir)
        converter.convert_module(module, exported.weight_names, mutable)
    # Ops kept whole for ember but declined by the converter get torch-mlir's decomposition.
    _run(module, "func.func(torch-decompose-complex-ops),func.func(canonicalize)",
         "decomposition", calls)
    for stage in TORCH_TO_LINALG:
        _run(module, stage, f"lowering to linalg ({stage})", calls, stage in ALL_OR_NOTHING)
    lower_tm_tensor_ops(module)
    leftovers = _leftover_ops(module, calls)
    if leftovers:
        raise UnsupportedOpsError(leftovers)
    return (module.operation.get_asm(print_generic_op_form=True, enable_debug_info=True),
            converter.fallbacks)
