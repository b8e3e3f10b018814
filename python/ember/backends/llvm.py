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


#: Dialects whose ops MLIR translates to LLVM IR (each registers a translation interface).
TRANSLATABLE_DIALECTS = frozenset({"llvm", "omp", "nvvm", "rocdl", "gpu", "amx", "x86vector",
                                   "arm_neon", "arm_sve", "arm_sme"})


class TranslationError(RuntimeError):
    """The module holds ops LLVM translation cannot take: an earlier stage left them
    unlowered (an ember bug, not the user's)."""


def translate_to_llvm_ir(module: ir.Module) -> str:
    """The LLVM IR text of an LLVM-dialect module.

    The module is checked first: MLIR 22's Python binding prints the null module a failed
    translation returns, which kills the process instead of raising."""
    leftovers = untranslatable_ops(module)
    if leftovers:
        names = ", ".join(dict.fromkeys(name for name, _ in leftovers))
        raise TranslationError(
            f"LLVM translation cannot take {len(leftovers)} op(s) the stages before it left "
            f"unlowered: {names} (the first at {leftovers[0][1]}); this is an ember bug: "
            f"please report it with the model (EMBER_DUMP_DIR=<dir> keeps every stage's IR)")
    with module.context:
        return str(llvm_dialect.translate_module_to_llvmir(module.operation))


def untranslatable_ops(module: ir.Module) -> list:
    """(op name, location) of the ops in `module` that LLVM translation rejects, in order."""
    found = []

    def visit(op):
        name = op.name
        if name.partition(".")[0] not in TRANSLATABLE_DIALECTS and name != "builtin.module":
            found.append((name, str(op.location)))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


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
