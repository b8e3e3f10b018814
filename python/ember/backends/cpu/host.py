"""The host CPU target: this machine's triple, CPU and features, code as a shared library.

Everything but the host's own facts (its triple, CPU and features from LLVM, the vector shape
of x86 CPUs named without features, caches and cores from sysfs, libomp from LLVM's packages)
is the shared CPU target of target.py: its stages, link step, GEMM traits and OpenMP switch.
"""
from __future__ import annotations

import functools
import os

from ember.backends.cpu.microkernel import CpuTraits
from ember.backends.cpu.target import CpuOptions, CpuTarget
from ember.backends.llvm import host_cpu

#: Vector features of CPUs named without a feature string (LLVM then uses the CPU's own), for
#: the GEMM schedule's vector shape (AVX-512: 16 f32 lanes, 32 registers; AVX2: 8, 16) and the
#: int8 kernels' dot product (VNNI, AVX-512BW or AVX2; see ember.backends.cpu.int8_dot) and
#: tiles (AMX-INT8 and AMX-BF16, ember.backends.cpu.amx_tiles).
_AVX2 = "+avx2,+fma"
_AVX_VNNI = _AVX2 + ",+avxvnni"
_AVX512 = _AVX2 + ",+avx512f,+avx512bw,+avx512vl"
_AVX512_VNNI = _AVX512 + ",+avx512vnni"
_AMX = _AVX512_VNNI + ",+avx512bf16,+amx-tile,+amx-int8,+amx-bf16"
_CPU_FEATURES = {
    **dict.fromkeys(("skylake-avx512", "x86-64-v4"), _AVX512),
    **dict.fromkeys(("znver4", "znver5", "cascadelake", "cooperlake", "icelake-server",
                     "icelake-client", "tigerlake", "rocketlake"), _AVX512_VNNI),
    **dict.fromkeys(("sapphirerapids", "emeraldrapids", "graniterapids"), _AMX),
    **dict.fromkeys(("haswell", "broadwell", "skylake", "znver1", "znver2", "znver3",
                     "x86-64-v3"), _AVX2),
    **dict.fromkeys(("alderlake", "raptorlake"), _AVX_VNNI),
}


#: (LLVM feature, gcc __builtin_cpu_supports name) of the instruction sets ember's kernels
#: choose from, checked before an artifact runs.
_CHECKED_FEATURES = (("avx2", "avx2"), ("fma", "fma"), ("avx512f", "avx512f"),
                     ("avx512bw", "avx512bw"), ("avx512vl", "avx512vl"),
                     ("avx512vnni", "avx512vnni"), ("avxvnni", "avxvnni"),
                     ("avx512bf16", "avx512bf16"), ("amx-tile", "amx-tile"),
                     ("amx-int8", "amx-int8"), ("amx-bf16", "amx-bf16"))


def _sysfs_caches() -> dict:
    """{'l1d': bytes, 'l2': bytes, 'l3': bytes} from Linux sysfs (missing entries omitted)."""
    found = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = os.listdir(base)
    except OSError:
        return found
    for entry in entries:
        path = os.path.join(base, entry)
        try:
            level = open(os.path.join(path, "level")).read().strip()
            kind = open(os.path.join(path, "type")).read().strip()
            size = open(os.path.join(path, "size")).read().strip()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024 * 1024}.get(size[-1:], 1)
        value = int(size.rstrip("KM")) * scale
        key = {"1": "l1d" if kind in ("Data", "Unified") else None, "2": "l2", "3": "l3"}.get(level)
        if key:
            found[key] = value
    return found


@functools.lru_cache(maxsize=None)
def host_traits() -> CpuTraits:
    """This machine's caches (sysfs) and cores (its vector shape comes from the features)."""
    return CpuTraits(cores=os.cpu_count() or 1, **_sysfs_caches())


#: The host's options are the shared CPU options; "" and 0 mean this machine's values.
HostOptions = CpuOptions


class HostTarget(CpuTarget):
    kind = "host"
    Options = HostOptions
    libomp_globs = ("/usr/lib/llvm-*/lib/libomp.so",)
    libomp_hint = "apt-get install libomp-dev"

    def __init__(self, options: HostOptions):
        super().__init__(options)
        triple, cpu, features = host_cpu()
        self.triple = triple
        self.cpu = options.cpu or cpu
        self.features = options.features or (features if not options.cpu else "")

    def default_traits(self) -> CpuTraits:
        """This machine's caches (sysfs) and cores."""
        return host_traits()

    def vector_features(self) -> str:
        return self.features or _CPU_FEATURES.get(self.cpu, "")

    def cpu_check(self) -> str:
        """A run on a CPU without the vector, VNNI or AMX instructions the code was generated
        for returns CPU_MISMATCH instead of dying of SIGILL (an artifact built for another
        x86 CPU, `host:cpu=...`); AMX also needs the tile state Linux granted at load."""
        needed = [name for feature, name in _CHECKED_FEATURES
                  if feature in self.info.enabled_features]
        if not needed:
            return ""
        tests = " && ".join(f'__builtin_cpu_supports("{name}")' for name in needed)
        amx = "amx-tile" in needed
        return ("#include <sys/syscall.h>\n#include <unistd.h>\n" if amx else "") + (
            "static int ember_cpu_ok(void) {\n"
            "  __builtin_cpu_init();\n"
            f"  if (!({tests})) return 0;\n" + (
                "  unsigned long permitted = 0;   /* ARCH_GET_XCOMP_PERM: XTILEDATA granted */\n"
                "  if (syscall(SYS_arch_prctl, 0x1022, &permitted) || "
                "!(permitted & (1UL << 18))) return 0;\n" if amx else "") +
            "  return 1;\n}\n")
