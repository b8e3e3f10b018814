"""LLVM IR -> object code with llvmlite (LLVM 22), shared by every LLVM-based target.

LLVM IR always comes from the compiler's `mlir` 22 package (never from torch-mlir's LLVM 24,
whose IR text LLVM 22 rejects). Objects are emitted with position-independent code so they can
be linked into shared libraries.
"""
from __future__ import annotations

import functools

from mlir import ir
from mlir.dialects import llvm as llvm_dialect


@functools.lru_cache(maxsize=None)
def _binding():
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    return llvm


def translate_to_llvm_ir(module: ir.Module) -> str:
    """The LLVM IR text of an LLVM-dialect module."""
    with module.context:
        return str(llvm_dialect.translate_module_to_llvmir(module.operation))


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
