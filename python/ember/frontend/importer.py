"""PyTorch -> ember dialect module text, through torch-mlir (in torch-mlir's own MLIR build).

    ExportedModel --FX import--> torch dialect --backend contract--> torch --torch-to-ember-->
    torch + ember --TorchToLinalg (the fallback)--> ember + linalg --generic text--> compiler

torch-mlir's MLIR (LLVM 24) is used only here. The compiler receives generic-form text, which
MLIR 22 parses; weights are function arguments turned into `ember.weight` ops, so no weight
data is ever printed. Ops that neither ember nor the fallback lowers are reported all at once.
"""
from __future__ import annotations

from typing import Dict, List

from ember.frontend.errors import (UnsupportedOp, UnsupportedOpsError, UserCall, blame,
                                   complex_calls, unsupported_complex_calls, user_calls)
from ember.frontend.export import KEEP_WHOLE, TORCH_MLIR_NAMES, ExportedModel
from ember.frontend.torch_to_ember import Converter

#: torch-mlir's backend-to-linalg pipeline, without the TMTensor conversion (its ops have no
#: MLIR 22 counterpart) and without the final contract check (ember ops are legal here).
TORCH_TO_LINALG = (
    "func.func(torch-restructure-non-constant-axes)",
    "func.func(torch-fuse-quantized-ops)",
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


def _run(module, pipeline: str, what: str, calls: Dict[tuple, List[UserCall]]) -> None:
    from torch_mlir.passmanager import PassManager
    with module.context:
        try:
            PassManager.parse(f"builtin.module({pipeline})").run(module.operation)
        except Exception as e:
            leftovers = _leftover_torch_ops(module, calls) or \
                complex_calls(calls)
            if leftovers:
                raise UnsupportedOpsError(leftovers) from e
            raise RuntimeError(f"torch-mlir failed during {what}: {e}") from e


def _leftover_torch_ops(module, calls: Dict[tuple, List[UserCall]]) -> List[UnsupportedOp]:
    """The torch ops no lowering took, blamed on the user's calls (errors.blame)."""
    from torch_mlir import ir
    found: List[tuple] = []

    def visit(op):
        name = op.name
        if name.startswith("torch.") and not name.startswith("torch.constant") and \
                name not in ("torch.prim.ListConstruct", "torch.vtensor.literal"):
            if name == "torch.operator":   # an op torch-mlir has no definition of
                name = ir.StringAttr(op.attributes["name"]).value
            found.append((name.replace("torch.", "", 1), str(op.location)))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return blame(found, calls)


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


def import_to_text(exported: ExportedModel) -> str:
    """The model as ember-dialect (+ linalg fallback) module text in generic op form."""
    from torch_mlir import ir
    from torch_mlir.dialects import irdl, torch as torch_d
    from torch_mlir.extras.fx_importer import FxImporter

    from ember.dialect import load as load_dialect

    context = ir.Context()
    torch_d.register_dialect(context)
    _load_torch_conversion_dialect(context)
    load_dialect(context, ir, irdl)
    importer = FxImporter(context=context)
    importer.import_stateless_graph(exported.graph_module.graph, func_name="main")
    module = importer.module
    calls = user_calls(exported.graph_module.graph)
    refused = unsupported_complex_calls(calls)
    if refused:
        raise UnsupportedOpsError(refused)
    legal = ",".join(f"aten.{TORCH_MLIR_NAMES.get(n, n)}" for n in KEEP_WHOLE)
    _run(module, "func.func(torch-match-quantized-custom-ops),"
                 f"torchdynamo-export-to-torch-backend-pipeline{{backend-legal-ops={legal}}}",
         "torch backend contract", calls)
    with context:
        Converter(ir).convert_module(module, exported.weight_names)
    # Ops kept whole for ember but declined by the converter get torch-mlir's decomposition.
    _run(module, "func.func(torch-decompose-complex-ops),func.func(canonicalize)",
         "decomposition", calls)
    _run(module, ",".join(TORCH_TO_LINALG), "lowering to linalg", calls)
    leftovers = _leftover_torch_ops(module, calls)
    if leftovers:
        raise UnsupportedOpsError(leftovers)
    return module.operation.get_asm(print_generic_op_form=True, enable_debug_info=True)
