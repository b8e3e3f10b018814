"""PyTorch -> ember dialect module text, through torch-mlir (in torch-mlir's own MLIR build).

    ExportedModel --FX import--> torch dialect --backend contract--> torch --torch-to-ember-->
    torch + ember --TorchToLinalg (the fallback)--> ember + linalg --generic text--> compiler

torch-mlir's MLIR (LLVM 24) is used only here. The compiler receives generic-form text, which
MLIR 22 parses; weights are function arguments turned into `ember.weight` ops, so no weight
data is ever printed. Ops that neither ember nor the fallback lowers are reported all at once.
"""
from __future__ import annotations

from typing import List

from ember.frontend.errors import UnsupportedOp, UnsupportedOpsError, user_source_line
from ember.frontend.export import KEEP_WHOLE, TORCH_MLIR_NAMES, ExportedModel
from ember.frontend.torch_to_ember import Converter
from ember.progress import announce

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


def _run(module, pipeline: str, what: str) -> None:
    from torch_mlir.passmanager import PassManager
    announce(stage="frontend", step=f"torch-mlir {what}")
    with module.context:
        try:
            PassManager.parse(f"builtin.module({pipeline})").run(module.operation)
        except Exception as e:
            leftovers = _leftover_torch_ops(module)
            if leftovers:
                raise UnsupportedOpsError(leftovers) from e
            raise RuntimeError(f"torch-mlir failed during {what}: {e}") from e


def _leftover_torch_ops(module) -> List[UnsupportedOp]:
    from torch_mlir import ir
    found: List[UnsupportedOp] = []

    def visit(op):
        name = op.name
        if name.startswith("torch.") and not name.startswith("torch.constant") and \
                name not in ("torch.prim.ListConstruct",):
            aten = name.replace("torch.", "", 1)
            found.append(UnsupportedOp(aten, user_source_line(str(op.location)),
                                       "no ember conversion and no linalg lowering"))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


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
    announce(stage="frontend", step="torch-mlir FX import")
    importer = FxImporter(context=context)
    importer.import_stateless_graph(exported.graph_module.graph, func_name="main")
    module = importer.module
    legal = ",".join(f"aten.{TORCH_MLIR_NAMES.get(n, n)}" for n in KEEP_WHOLE)
    _run(module, "func.func(torch-match-quantized-custom-ops),"
                 f"torchdynamo-export-to-torch-backend-pipeline{{backend-legal-ops={legal}}}",
         "torch backend contract")
    announce(stage="frontend", step="torch-to-ember conversion")
    with context:
        Converter(ir).convert_module(module, exported.weight_names)
    # Ops kept whole for ember but declined by the converter get torch-mlir's decomposition.
    _run(module, "func.func(torch-decompose-complex-ops),func.func(canonicalize)",
         "decomposition")
    _run(module, ",".join(TORCH_TO_LINALG), "lowering to linalg")
    leftovers = _leftover_torch_ops(module)
    if leftovers:
        raise UnsupportedOpsError(leftovers)
    return module.operation.get_asm(print_generic_op_form=True, enable_debug_info=True)
