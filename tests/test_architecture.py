"""The layering the code promises, checked on the sources: packages import each other without
cycles, no module imports another's underscore names, no pass runs passes of its own, and the
runtime and artifact reader load without the compiler's MLIR."""
from __future__ import annotations

import ast
import collections
import os
import subprocess
import sys
from typing import Dict, Iterator, Set, Tuple

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")


def _modules() -> Iterator[Tuple[str, ast.Module]]:
    """(dotted module name, parsed source) of every module of the ember package."""
    for folder, _, files in os.walk(os.path.join(PACKAGE, "ember")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                with open(path) as f:
                    yield dotted.removesuffix(".__init__"), ast.parse(f.read(), path)


def _imports(tree: ast.Module) -> Iterator[ast.ImportFrom | ast.Import]:
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def _imported_modules(node) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.module:
        yield node.module


def _unit(module: str) -> str:
    """The architectural unit of a module: its package under ember (backends split by
    family)."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "backends" and parts[2] in ("cpu", "gpu"):
        return ".".join(parts[1:3])
    return parts[1] if len(parts) > 1 else parts[0]


def test_packages_import_each_other_without_cycles():
    edges: Dict[str, Set[str]] = collections.defaultdict(set)
    for module, tree in _modules():
        for node in _imports(tree):
            for target in _imported_modules(node):
                if target.startswith("ember.") and _unit(target) != _unit(module):
                    edges[_unit(module)].add(_unit(target))

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            unit = stack.pop()
            if unit == goal:
                return True
            if unit not in seen:
                seen.add(unit)
                stack.extend(edges.get(unit, ()))
        return False
    cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a)})
    assert not cycles, f"packages importing each other: {cycles}"


def test_no_module_imports_another_modules_private_names():
    found = [f"{module}: {node.module}.{alias.name}"
             for module, tree in _modules() for node in _imports(tree)
             if isinstance(node, ast.ImportFrom) and node.module and
             node.module.startswith("ember")
             for alias in node.names
             if alias.name.startswith("_") and not alias.name.endswith("__")]
    assert not found


PASS_PACKAGES = ("ember.transforms", "ember.lowering", "ember.backends", "ember.kit")


def test_no_pass_runs_passes_of_its_own():
    """Passes never build an MLIR PassManager: stage tables order every pass."""
    found = [module for module, tree in _modules() if module.startswith(PASS_PACKAGES)
             for node in _imports(tree) for target in _imported_modules(node)
             if target.startswith("mlir.passmanager")]
    assert not found


@pytest.mark.parametrize("entry", ["ember.runtime", "ember.artifact.store",
                                   "ember.artifact.launch_plan"])
def test_runtime_loads_without_the_compiler(entry):
    """The runtime (and the artifact reader) must run where only numpy is installed."""
    blocked = ["mlir", "torch_mlir", "llvmlite"]
    code = ("import sys\n"
            f"for name in {blocked!r}: sys.modules[name] = None\n"
            f"import {entry}\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=PACKAGE))
    assert proc.returncode == 0, proc.stderr
