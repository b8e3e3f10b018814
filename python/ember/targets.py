"""The table of code generation targets (ember.backends.cpu / gpu), each a table of stages.

`get_target("host")` or `get_target("host", cpu="znver3")` returns a Target. Adding a target
means adding a module under ember/backends and one line to TARGETS; no other target changes.
"""
from __future__ import annotations

from typing import Dict, Type

from ember.backends.base import Target
from ember.backends.cpu.aarch64 import AArch64Target
from ember.backends.gpu.cuda import CudaTarget
from ember.backends.cpu.host import HostTarget
from ember.backends.gpu.rocm import RocmTarget

#: kind -> Target class.
TARGETS: Dict[str, Type[Target]] = {
    HostTarget.kind: HostTarget,
    CudaTarget.kind: CudaTarget,
    RocmTarget.kind: RocmTarget,
    AArch64Target.kind: AArch64Target,
}


def get_target(spec="host", **options) -> Target:
    """A Target from a kind name (optionally `kind:key=value,...`) or a Target instance."""
    if isinstance(spec, Target):
        return spec
    kind, _, rest = str(spec).partition(":")
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options.setdefault(key.strip(), value.strip())
    if kind not in TARGETS:
        raise ValueError(f"unknown target '{kind}'; known targets: {', '.join(sorted(TARGETS))}")
    return TARGETS[kind].from_options(**options)
