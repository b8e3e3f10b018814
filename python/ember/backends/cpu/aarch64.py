"""The AArch64 target: cross-compiles a model into an AArch64 Linux `model.so` on any machine.

    ember.compile(model, inputs, target="aarch64")                          # generic, NEON
    ember.compile(model, inputs, target="aarch64:preset=ampere-altra")      # a named machine
    ember.compile(model, inputs, target="aarch64:cpu=neoverse-v1,features=+sve")
    get_target("aarch64", features="+sve,+bf16", vector_bits=512)           # as keywords

In a target string, options are separated by commas, so several features are joined with '+'
(`features=+sve+i8mm`); as a keyword the usual LLVM spelling `+sve,+i8mm` works too.

The library is the host target's (cpu.py: same stages, C runtime, ABI), built for triple
`aarch64-unknown-linux-gnu` by llvmlite and linked by a cross compiler (default
`aarch64-linux-gnu-gcc`). Only the target's facts differ:
  - the GEMM micro-kernels plan for 32 vector registers of 4 f32 lanes (NEON), or, when the
    features enable SVE, of `vector_bits / 32` lanes: every function then carries
    `vscale_range(vector_bits / 128, 16)`, which lets LLVM lower the fixed-width vectors to
    SVE instructions; such code needs an SVE vector length of at least `vector_bits`, which
    every run checks first (on a CPU with shorter vectors, or none, the run fails with status
    3, cpu.CPU_MISMATCH);
  - caches and cores come from a preset (PRESETS) or the options, else CpuTraits' defaults
    (this machine's say nothing about the one it targets);
  - OpenMP: the cross sysroot has no libomp, so the generated parallel loops stay serial
    unless `cc` finds a libomp for AArch64 (`openmp=on` then insists on one);
  - the artifact cannot run in this process unless it is AArch64: `compile` returns a model
    that says so when called; save() it and run it there, or under qemu-aarch64 with
    examples/c/run_model.c (README.md, "Targets: aarch64").
CPU and feature names are checked against LLVM's own list for the triple.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Tuple

from mlir import ir

from ember.backends.cpu.target import CpuOptions, CpuTarget

TRIPLE = "aarch64-unknown-linux-gnu"
#: NEON's vector width; also the SVE vector length unit (LLVM's vscale counts 128-bit blocks).
NEON_BITS = 128
#: The architectural maximum SVE vector length.
MAX_SVE_BITS = 2048

#: Named machines: option values used wherever the caller leaves an option at its default.
PRESETS: Dict[str, Dict[str, object]] = {
    # Ampere Altra: 80 Neoverse N1 cores, 64 KiB L1d, 1 MiB L2 per core, 32 MiB SLC.
    "ampere-altra": dict(cpu="neoverse-n1", features="+neon,+dotprod", vector_bits=NEON_BITS,
                         l1d_kb=64, l2_kb=1024, l3_kb=32 * 1024, cores=80),
    # AWS Graviton3: 64 Neoverse V1 cores with 256-bit SVE, 64 KiB L1d, 1 MiB L2, 32 MiB L3.
    "graviton3": dict(cpu="neoverse-v1", features="+neon,+sve,+dotprod,+i8mm,+bf16",
                      vector_bits=256, l1d_kb=64, l2_kb=1024, l3_kb=32 * 1024, cores=64),
}
#: SVE vector length of CPUs whose SVE is wider than NEON (the default of `vector_bits` when
#: the features enable SVE); other SVE CPUs (Neoverse N2/V2, ...) have 128-bit SVE.
SVE_BITS = {"neoverse-v1": 256, "a64fx": 512}
#: Features that make SVE available.
SVE_FEATURES = ("sve", "sve2")


@dataclass(frozen=True)
class AArch64Options(CpuOptions):
    cpu: str = ""                       # LLVM AArch64 CPU name; "": the preset's, or generic
    cc: str = "aarch64-linux-gnu-gcc"   # the cross compiler that links the library
    preset: str = ""                    # a name in PRESETS


def parse_features(text: str) -> List[str]:
    """LLVM features (`+sve`, `-bf16`) from a string separated by commas or joined by '+'."""
    items = [item for piece in str(text).split(",")
             for item in re.split(r"(?=\+)", piece.strip()) if item]
    for item in items:
        if item[0] not in "+-" or len(item) < 2:
            raise ValueError(f"aarch64 feature {item!r} needs a '+' (enable) or '-' (disable) "
                             f"sign, e.g. '+{item.lstrip('+-')}'")
    return items


@functools.lru_cache(maxsize=None)
def llvm_names(triple: str) -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """(CPU names, feature names) that LLVM knows for `triple`: its `-mcpu=help` listing,
    which LLVM prints to stderr, so it is taken in a child process."""
    script = ("import llvmlite.binding as llvm\n"
              "llvm.initialize_all_targets()\n"
              f"llvm.Target.from_triple({triple!r}).create_target_machine(cpu='help')\n")
    listing = subprocess.run([sys.executable, "-c", script], capture_output=True,
                             text=True).stderr
    sections: Dict[str, set] = {"CPUs": set(), "features": set()}
    current = None
    for line in listing.splitlines():
        header = re.match(r"Available (CPUs|features) for this target:", line)
        entry = re.match(r"  (\S+)\s+- ", line)
        if header:
            current = sections[header.group(1)]
        elif entry and current is not None:
            current.add(entry.group(1))
    if not sections["CPUs"]:
        raise RuntimeError(f"LLVM lists no CPUs for {triple}; its output was:\n{listing}")
    return frozenset(sections["CPUs"]), frozenset(sections["features"])


def _check_name(kind: str, name: str, known: FrozenSet[str]) -> None:
    if name in known:
        return
    close = difflib.get_close_matches(name, sorted(known), n=4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown aarch64 {kind} {name!r}{hint} (LLVM knows {len(known)} "
                     f"{kind}s for {TRIPLE})")


class AArch64Target(CpuTarget):
    kind = "aarch64"
    Options = AArch64Options
    libomp_hint = "put an AArch64 libomp.so into the cross sysroot (/usr/aarch64-linux-gnu/lib)"

    @classmethod
    def from_options(cls, **options) -> "AArch64Target":
        stray = [key for key in options if key[:1] in "+-"]
        if stray:
            raise ValueError(f"features {stray} stand alone in the target string, whose options "
                             f"are separated by commas: join features with '+', e.g. "
                             f"features={options.get('features', '')}{''.join(stray)}")
        return super().from_options(**options)

    def __init__(self, options: AArch64Options):
        super().__init__(options)
        self.triple = TRIPLE
        self.cpu = self.options.cpu or "generic"
        feature_list = parse_features(self.options.features)
        cpus, features = llvm_names(TRIPLE)
        _check_name("cpu", self.cpu, cpus)
        for item in feature_list:
            _check_name("feature", item[1:], features)
        self.features = ",".join(feature_list)
        enabled = set()
        for item in feature_list:
            (enabled.add if item[0] == "+" else enabled.discard)(item[1:])
        self.sve = any(name in enabled for name in SVE_FEATURES)
        self.bits = self._resolve_vector_bits()

    def complete_options(self, options: AArch64Options) -> AArch64Options:
        """The preset's values filled into the options left at their defaults."""
        if not options.preset:
            return options
        if options.preset not in PRESETS:
            raise ValueError(f"unknown aarch64 preset {options.preset!r}; presets: "
                             f"{', '.join(sorted(PRESETS))}")
        defaults = AArch64Options()
        return dataclasses.replace(options, **{
            key: value for key, value in PRESETS[options.preset].items()
            if getattr(options, key) == getattr(defaults, key)})

    def _resolve_vector_bits(self) -> int:
        bits = self.options.vector_bits
        if not bits:
            return SVE_BITS.get(self.cpu, NEON_BITS) if self.sve else NEON_BITS
        if not self.sve and bits != NEON_BITS:
            raise ValueError(f"aarch64 vector_bits={bits} needs SVE (NEON vectors are "
                             f"{NEON_BITS} bits): add features=+sve")
        if bits % NEON_BITS or bits & (bits - 1) or not NEON_BITS <= bits <= MAX_SVE_BITS:
            raise ValueError(f"aarch64 vector_bits={bits}: SVE vector lengths are powers of two "
                             f"from {NEON_BITS} to {MAX_SVE_BITS}")
        return bits

    def vector_bits(self) -> int:
        return self.bits

    def prepare_llvm_dialect(self, module) -> None:
        """With SVE, tells LLVM every function runs at an SVE vector length of at least
        `vector_bits` (`vscale_range`), so it lowers fixed-width vectors up to that width to
        SVE instructions (at 128 bits it keeps NEON's)."""
        if not self.sve:
            return
        attr = ir.Attribute.parse(f"#llvm.vscale_range<minRange = {self.bits // NEON_BITS}, "
                                  f"maxRange = {MAX_SVE_BITS // NEON_BITS}>")
        for op in module.body.operations:
            if op.operation.name == "llvm.func" and op.regions[0].blocks:
                op.attributes["vscale_range"] = attr

    def cpu_check(self) -> str:
        """With SVE, a run on a CPU without SVE or with vectors shorter than `vector_bits`
        returns CPU_MISMATCH instead of faulting or computing garbage."""
        if not self.sve:
            return ""
        return ("#include <sys/auxv.h>\n"
                "#include <sys/prctl.h>\n"
                "static int ember_cpu_ok(void) {\n"
                "  int vl = (getauxval(AT_HWCAP) & HWCAP_SVE) ? prctl(PR_SVE_GET_VL) : -1;\n"
                f"  return vl >= 0 && (vl & PR_SVE_VL_LEN_MASK) * 8 >= {self.bits};\n"
                "}\n")

    def why_not_loadable(self):
        """Off AArch64 the library cannot load (run it under qemu through the C runtime)."""
        if platform.machine().lower() not in ("aarch64", "arm64"):
            return (f"it is an AArch64 library ({self.triple}) and this machine is "
                    f"{platform.machine()}")
        return None

    def describe(self) -> dict:
        return {**super().describe(), "features": self.features, "vector_bits": self.bits,
                "sve": self.sve, "preset": self.options.preset or None}
