"""torch-mlir's own linalg path, run end to end: the reference column of the operator suite.

`run_torch_mlir(module, inputs, dynamic_shapes)` imports the module with
`torch_mlir.fx.export_and_import(..., output_type="linalg-on-tensors")` (torch-mlir's default
decomposition table, as a new user gets it), lowers the linalg-on-tensors IR to LLVM with the
pass list of torch-mlir's RefBackend (projects/pt1/.../refbackend.py), using torch-mlir's own
MLIR build, and runs it in torch-mlir's ExecutionEngine.

One deliberate difference from RefBackend (as of torch-mlir's main in 2026-08): RefBackend
rewrites the calling convention to unranked memrefs
and a return callback (refback-munge-calling-conventions), whose type list has no bf16. This
module calls the function through its plain C interface (ranked memref descriptors, results in
a struct behind the first argument) instead, so bf16 cases are not lost to the harness. Inputs
go in as torch storage pointers and outputs are copied out byte for byte, so every element type
torch has a dtype for works the same way.

Errors carry the stage that failed ("export", "lower to linalg", "lower to llvm", "execute"),
so the report can count "lowered to linalg" separately from "ran and matched".
"""
from __future__ import annotations

import ctypes
from typing import List, Sequence

import torch

#: RefBackend's lowering pipeline (with runtime verification, its default) minus its
#: calling-convention munging (see the module doc).
LLVM_PIPELINE = ",".join([
    "func.func(linalg-generalize-named-ops)",
    "func.func(linalg-fuse-elementwise-ops)",
    "convert-shape-to-std",
    "sparse-assembler{direct-out}",
    "sparsification-and-bufferization",
    "sparse-storage-specifier-to-llvm",
    "func.func(expand-realloc)",
    "func.func(refback-generalize-tensor-pad)",
    "func.func(refback-generalize-tensor-concat)",
    "func.func(tm-tensor-bufferize)",
    "one-shot-bufferize{copy-before-write bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map}",
    "refback-mlprogram-bufferize",
    "func.func(buffer-deallocation-pipeline)",
    "inline",
    "func.func(tm-tensor-to-loops)",
    "func.func(refback-munge-memref-copy)",
    "func.func(convert-linalg-to-loops)",
    "func.func(lower-affine)",
    "convert-scf-to-cf",
    "generate-runtime-verification",
    "func.func(refback-expand-ops-for-llvm)",
    "func.func(arith-expand)",
    "func.func(convert-math-to-llvm)",
    "convert-math-to-libm",
    "expand-strided-metadata",
    "finalize-memref-to-llvm",
    "lower-affine",
    "convert-scf-to-cf",
    "convert-bufferization-to-memref",
    "finalize-memref-to-llvm",
    "func.func(convert-arith-to-llvm)",
    "convert-vector-to-llvm",
    "convert-func-to-llvm",
    "convert-cf-to-llvm",
    "convert-complex-to-llvm",
    "reconcile-unrealized-casts",
])

#: MLIR element type (as printed) -> torch dtype of the same bytes.
ELEMENT_DTYPES = {
    "f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64,
    "i1": torch.bool, "i8": torch.int8, "i16": torch.int16, "i32": torch.int32,
    "i64": torch.int64, "complex<f32>": torch.complex64, "complex<f64>": torch.complex128,
}

FUNC_NAME = "forward"


class StageError(Exception):
    """A failure of one stage of torch-mlir's path; `stage` names it, and the message is the
    exception's and then the first MLIR error diagnostic (torch-mlir prints those to stderr
    and raises a generic "Failure while executing pass pipeline")."""

    def __init__(self, stage: str, error: BaseException, diagnostics: Sequence[str] = ()):
        from benchmarks.op_suite_cases import error_summary
        message = f"{type(error).__name__}: {error_summary(error, 150)}"
        if diagnostics:
            message += f" | {diagnostics[0][:200]}"
        super().__init__(message)
        self.stage = stage


def _context_collecting_errors():
    """A torch-mlir context whose error diagnostics are kept in the returned list."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d
    context, errors = ir.Context(), []
    torch_d.register_dialect(context)

    def keep(diagnostic):
        if diagnostic.severity == ir.DiagnosticSeverity.ERROR:
            errors.append(str(diagnostic.message).splitlines()[0] if str(diagnostic.message)
                          else "")
        return False  # still printed, as a user would see it
    context.attach_diagnostic_handler(keep)
    return context, errors


def _descriptor_type(rank: int):
    """A ranked memref descriptor with an untyped data pointer (the C interface's layout)."""
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
              ("offset", ctypes.c_longlong)]
    if rank:
        fields += [("shape", ctypes.c_longlong * rank), ("strides", ctypes.c_longlong * rank)]
    return type(f"MemRef{rank}", (ctypes.Structure,), {"_fields_": fields})


def _descriptor_of(tensor: torch.Tensor):
    desc = _descriptor_type(tensor.dim())()
    desc.allocated = desc.aligned = tensor.data_ptr()
    desc.offset = 0
    if tensor.dim():
        desc.shape = (ctypes.c_longlong * tensor.dim())(*tensor.shape)
        desc.strides = (ctypes.c_longlong * tensor.dim())(*tensor.stride())
    return desc


def _tensor_from(desc, rank: int, dtype: torch.dtype) -> torch.Tensor:
    """Copies the memref `desc` describes into a new tensor."""
    shape = list(desc.shape) if rank else []
    strides = list(desc.strides) if rank else []
    if any(s == 0 for s in shape):
        return torch.empty(shape, dtype=dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    raw = ctypes.string_at(desc.aligned + desc.offset * itemsize, span * itemsize)
    flat = torch.frombuffer(bytearray(raw), dtype=dtype)
    return torch.as_strided(flat, shape, strides).clone()


def _result_signature(module) -> List[tuple]:
    """(rank, element type) of each result of @forward, read from the tensor-level IR."""
    from torch_mlir import ir
    for op in module.body.operations:
        if op.operation.name == "func.func" and \
                ir.StringAttr(op.attributes["sym_name"]).value == FUNC_NAME:
            types = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value).results
            op.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
            return [(ir.ShapedType(t).rank, str(ir.ShapedType(t).element_type)) for t in types]
    raise RuntimeError(f"no @{FUNC_NAME} in the imported module")


def run_torch_mlir(module: torch.nn.Module, inputs: Sequence[torch.Tensor],
                   dynamic_shapes=None, lowered_callback=None) -> List[torch.Tensor]:
    """Imports, lowers and runs `module` on `inputs` with torch-mlir alone; returns the outputs.
    `lowered_callback()` is called once the linalg-on-tensors import succeeded."""
    import torch_mlir.fx as fx
    from torch_mlir.extras.fx_importer import FxImporter
    from torch_mlir.execution_engine import ExecutionEngine
    from torch_mlir.passmanager import PassManager

    try:
        program = torch.export.export(module, tuple(inputs), dynamic_shapes=dynamic_shapes)
    except Exception as e:
        raise StageError("export", e) from e
    context, diagnostics = _context_collecting_errors()
    try:
        mlir_module = fx.export_and_import(program, output_type="linalg-on-tensors",
                                           func_name=FUNC_NAME,
                                           fx_importer=FxImporter(context=context))
    except Exception as e:
        raise StageError("lower to linalg", e, diagnostics) from e
    if lowered_callback is not None:
        lowered_callback()
    try:
        with context:
            signature = _result_signature(mlir_module)
            unknown = [t for _, t in signature if t not in ELEMENT_DTYPES]
            if unknown:
                raise TypeError(f"result element type {unknown[0]} has no torch dtype")
            PassManager.parse(f"builtin.module({LLVM_PIPELINE})").run(mlir_module.operation)
            engine = ExecutionEngine(mlir_module)
    except Exception as e:
        raise StageError("lower to llvm", e, diagnostics) from e

    try:
        args = [t.contiguous() for t in inputs]
        result_types = [_descriptor_type(rank) for rank, _ in signature]
        results = type("Results", (ctypes.Structure,),
                       {"_fields_": [(f"r{i}", t) for i, t in enumerate(result_types)]})()
        arg_descs = [_descriptor_of(t) for t in args]
        # One result or several, the C interface writes them through one pointer to their
        # struct (a one-field struct has its field's layout).
        packed = [ctypes.pointer(ctypes.pointer(results))] if signature else []
        packed += [ctypes.pointer(ctypes.pointer(d)) for d in arg_descs]
        engine.invoke(FUNC_NAME, *packed)
        return [_tensor_from(getattr(results, f"r{i}"), rank, ELEMENT_DTYPES[t])
                for i, (rank, t) in enumerate(signature)]
    except Exception as e:
        raise StageError("execute", e) from e
