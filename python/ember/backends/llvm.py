"""LLVM IR -> object code with llvmlite (LLVM 22), shared by every LLVM-based target.

LLVM IR always comes from the compiler's `mlir` 22 package (never from torch-mlir's LLVM 24,
whose IR text LLVM 22 rejects). Objects are emitted with position-independent code so they can
be linked into shared libraries.
"""
from __future__ import annotations

import ctypes
import functools
import os

from mlir import ir


@functools.lru_cache(maxsize=None)
def _binding():
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    return llvm


class TranslationError(RuntimeError):
    """MLIR could not translate the module to LLVM IR: an earlier stage left ops without an
    LLVM lowering (an ember bug, not the user's)."""


def translate_to_llvm_ir(module: ir.Module) -> str:
    """The LLVM IR text of an LLVM-dialect module; TranslationError, with MLIR's diagnostics,
    when MLIR cannot translate it.

    The `mlir` binding's translate_module_to_llvmir prints the null module a failed translation
    returns, which kills the process; this calls the C functions it wraps and checks the
    result in between."""
    api = _c_api()
    errors = []

    def record(diagnostic) -> bool:
        if diagnostic.severity == ir.DiagnosticSeverity.ERROR:
            errors.append(f"{diagnostic.location}: {diagnostic.message}")
        return True             # handled: it goes into the exception, not on stderr
    handler = module.context.attach_diagnostic_handler(record)
    llvm_context = api.LLVMContextCreate()
    try:
        llvm_module = api.mlirTranslateModuleToLLVMIR(_MlirOperation(_pointer(module.operation)),
                                                      llvm_context)
        if not llvm_module:
            shown = "\n  ".join(errors[:5]) + (f"\n  (and {len(errors) - 5} more)"
                                                if len(errors) > 5 else "")
            raise TranslationError(
                f"MLIR cannot translate the module to LLVM IR: the stages before left ops "
                f"without an LLVM lowering; this is an ember bug: please report it with the "
                f"model (EMBER_DUMP_DIR=<dir> keeps every stage's IR).\n  {shown}")
        text = api.LLVMPrintModuleToString(llvm_module)
        try:
            return ctypes.string_at(text).decode()
        finally:
            api.LLVMDisposeMessage(text)
            api.LLVMDisposeModule(llvm_module)
    finally:
        api.LLVMContextDispose(llvm_context)
        handler.detach()


class _MlirOperation(ctypes.Structure):
    """MLIR's C API handle of an operation (`MlirOperation`)."""
    _fields_ = [("ptr", ctypes.c_void_p)]


def _pointer(operation) -> int:
    """The C pointer behind an `mlir.ir.Operation` (the bindings' documented `_CAPIPtr`
    capsule)."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get(operation._CAPIPtr, b"mlir.ir.Operation._CAPIPtr")


@functools.lru_cache(maxsize=None)
def _c_api():
    """MLIR's C API library that the `mlir` bindings load, with LLVM's C API (libLLVM, which
    it links) reached through it. Called holding the GIL (PyDLL): translation reports its
    diagnostics to a Python handler."""
    import mlir._mlir_libs
    api = ctypes.PyDLL(os.path.join(os.path.dirname(mlir._mlir_libs.__file__),
                                   "libMLIRPythonCAPI.so"))
    pointer = ctypes.c_void_p
    for name, result, arguments in (
            ("mlirTranslateModuleToLLVMIR", pointer, [_MlirOperation, pointer]),
            ("LLVMContextCreate", pointer, []),
            ("LLVMContextDispose", None, [pointer]),
            ("LLVMPrintModuleToString", pointer, [pointer]),
            ("LLVMDisposeMessage", None, [pointer]),
            ("LLVMDisposeModule", None, [pointer])):
        function = getattr(api, name)
        function.restype, function.argtypes = result, arguments
    return api


def host_cpu() -> tuple:
    """(triple, cpu name, feature string) of the machine we run on."""
    llvm = _binding()
    return llvm.get_process_triple(), llvm.get_host_cpu_name(), \
        llvm.get_host_cpu_features().flatten()


def emit_object(llvm_ir: str, *, triple: str, cpu: str = "", features: str = "",
                opt_level: int = 3) -> bytes:
    """Optimizes `llvm_ir` at `opt_level` and emits an ELF object for `triple`/`cpu`."""
    llvm = _binding()
    mod = llvm.parse_assembly(llvm_ir)
    mod.triple = triple
    mod.verify()
    target = llvm.Target.from_triple(triple)
    machine = target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                           reloc="pic", codemodel="default")
    mod.data_layout = str(machine.target_data)
    _optimize(llvm, mod, machine, opt_level)
    return machine.emit_object(mod)


def _optimize(llvm, mod, machine, opt_level: int) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(machine, pto)
    pm = pb.getModulePassManager()
    pm.run(mod, pb)
