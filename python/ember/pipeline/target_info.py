"""TargetInfo: the facts about a target that passes and code generators may read.

A target (ember.backends) builds one frozen TargetInfo; passes read it from their PassContext and
never probe the machine or inspect a Target object. The compiler stamps it on the module as the
`ember.target` attribute, so an IR dump or a saved repro carries the facts it was compiled with,
and `ember-opt` reads them back (or rebuilds them from `--target=<spec>`, the same strings
`ember.compile` takes). Only the target modules know how the facts are found (LLVM's host query,
sysfs, presets); everything below them receives them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlir import ir

#: The module attribute that carries a TargetInfo.
TARGET_ATTR = "ember.target"


@dataclass(frozen=True)
class TargetInfo:
    """What a target is, as far as code generation needs to know."""
    kind: str                       # "host", "aarch64", "cuda", "rocm"
    spec: str                       # the target string that rebuilds it (`ember-opt --target=`)
    triple: str = ""                # LLVM target triple
    cpu: str = ""                   # LLVM CPU name (CPU targets)
    features: str = ""              # LLVM features the code may use (CPU targets; those a
                                    # named CPU implies when none were given)
    arch: str = ""                  # GPU chip: sm_90, gfx942
    vector_lanes: int = 0           # f32 lanes of one vector register (CPU targets)
    vector_registers: int = 0       # architectural vector registers
    l1d: int = 0                    # bytes, per core
    l2: int = 0                     # bytes, per core
    l3: int = 0                     # bytes, shared
    cores: int = 1                  # cores parallel schedules plan for
    openmp: bool = False            # parallel loops run on OpenMP threads (libomp linked)
    warp_size: int = 0              # lanes of a warp / wavefront (GPU targets)
    tensor_cores: bool = False      # f16/bf16 GEMMs may use mma.sync (NVIDIA sm_80+)

    @property
    def is_gpu(self) -> bool:
        return self.warp_size > 0

    @property
    def enabled_features(self) -> frozenset:
        """The features turned on in `features` ("+avx2,-avx512f" -> {"avx2"})."""
        return enabled_features(self.features)

    def to_attr(self) -> ir.DictAttr:
        """The facts as a dictionary attribute (in the current MLIR context)."""
        entries = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                entries[f.name] = ir.BoolAttr.get(value)
            elif isinstance(value, int):
                entries[f.name] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)
            else:
                entries[f.name] = ir.StringAttr.get(value)
        return ir.DictAttr.get(entries)

    @classmethod
    def from_attr(cls, attr: ir.Attribute) -> "TargetInfo":
        """The inverse of `to_attr`; a missing or mistyped entry is a ValueError."""
        if not isinstance(attr, ir.DictAttr):
            raise ValueError(f"{TARGET_ATTR} must be a dictionary of target facts (as ember "
                             f"stamps it), got {attr}")
        entries = ir.DictAttr(attr)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in entries:
                if f.default is dataclasses.MISSING:
                    raise ValueError(f"{TARGET_ATTR} lacks '{f.name}'")
                continue
            entry = entries[f.name]
            if isinstance(entry, ir.BoolAttr):
                values[f.name] = entry.value
            elif isinstance(entry, ir.IntegerAttr):
                values[f.name] = entry.value
            elif isinstance(entry, ir.StringAttr):
                values[f.name] = entry.value
            else:
                raise ValueError(f"{TARGET_ATTR}: '{f.name}' has an unexpected value {entry}")
        return cls(**values)

    def stamp(self, module: ir.Module) -> None:
        """Records the facts on `module` (so dumps and repros carry them)."""
        with module.context:
            module.operation.attributes[TARGET_ATTR] = self.to_attr()

    @classmethod
    def stamped_on(cls, module: ir.Module):
        """The TargetInfo stamped on `module`, or None."""
        attrs = module.operation.attributes
        return cls.from_attr(attrs[TARGET_ATTR]) if TARGET_ATTR in attrs else None


def enabled_features(features: str) -> frozenset:
    """The names an LLVM feature string turns on ("+avx2,+fma,-sse4a" -> {"avx2", "fma"})."""
    return frozenset(f[1:] for f in features.split(",") if f.startswith("+"))
