"""The structure of a model's outputs, as JSON: what `forward` returned around its tensors.

A torch model may return a dict, a dataclass, a (named) tuple holding Python constants or
None, or any nesting of these; the compiled code only produces the tensors. The frontend
describes the rest (ember.frontend.outputs), the artifact keeps the description in its manifest
(`output_tree`), and the runtime puts the tensors back into it (`rebuild`), so a compiled model
returns what the torch model returned. Node forms:

    {"tensor": k}                                 output k of the manifest's outputs
    {"constant": value}                           a JSON scalar (int, float, bool, str, null)
    {"tuple": [node, ...]}, {"list": [node, ...]}
    {"dict": [[key, node], ...]}                  keys are JSON scalars, in insertion order
    {"namedtuple": "module:QualName", "fields": [name, ...], "items": [node, ...]}
    {"dataclass": "module:QualName", "fields": [[name, node], ...]}

Classes are looked up among the modules this process has already imported; an artifact never
makes the runtime import anything. Where a class is not found (the artifact runs in a process
that lacks it), a namedtuple comes back as a tuple and a dataclass as a dict, with a warning.
Like ember.tensor_spec this imports neither MLIR nor torch, so every stage can use it.
"""
from __future__ import annotations

import dataclasses
import sys
import warnings
from typing import Any, Iterator, Mapping, Optional, Sequence

_SCALARS = (int, float, bool, str, type(None))


class OutputTreeError(ValueError):
    """A malformed output tree (names the offending node)."""


def tensor_leaves(tree: Mapping) -> Iterator[int]:
    """The tensor indices the tree refers to, in order (validating the tree as it goes)."""
    if not isinstance(tree, Mapping):
        raise OutputTreeError(f"output tree node {tree!r} is not an object")
    if "tensor" in tree:
        k = tree["tensor"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise OutputTreeError(f"output tree node {tree!r}: tensor index must be an int >= 0")
        yield k
    elif "constant" in tree:
        if not isinstance(tree["constant"], _SCALARS):
            raise OutputTreeError(f"output tree constant {tree['constant']!r} is not a scalar")
    elif "tuple" in tree or "list" in tree:
        for child in tree.get("tuple", tree.get("list")):
            yield from tensor_leaves(child)
    elif "dict" in tree:
        for _, child in tree["dict"]:
            yield from tensor_leaves(child)
    elif "namedtuple" in tree:
        for child in tree["items"]:
            yield from tensor_leaves(child)
    elif "dataclass" in tree:
        for _, child in tree["fields"]:
            yield from tensor_leaves(child)
    else:
        raise OutputTreeError(f"output tree node {tree!r} has an unknown kind")


def validate(tree: Mapping, num_outputs: int) -> None:
    """The tree is well formed and refers to distinct outputs among the `num_outputs`. (Outputs
    it leaves out are not part of forward's result: the new values of mutated inputs and
    buffers.)"""
    try:
        found = list(tensor_leaves(tree))
    except (TypeError, ValueError, KeyError) as exc:
        raise OutputTreeError(f"malformed output tree: {exc}") from None
    if len(set(found)) != len(found) or any(k >= num_outputs for k in found):
        raise OutputTreeError(f"the output tree refers to outputs {found}; the model has "
                              f"{num_outputs} outputs, each to be used once")


def rebuild(tree: Mapping, tensors: Sequence[Any]) -> Any:
    """The value `forward` returned: `tree` with its tensor leaves taken from `tensors`."""
    if "tensor" in tree:
        return tensors[tree["tensor"]]
    if "constant" in tree:
        return tree["constant"]
    if "tuple" in tree:
        return tuple(rebuild(child, tensors) for child in tree["tuple"])
    if "list" in tree:
        return [rebuild(child, tensors) for child in tree["list"]]
    if "dict" in tree:
        return {key: rebuild(child, tensors) for key, child in tree["dict"]}
    if "namedtuple" in tree:
        items = [rebuild(child, tensors) for child in tree["items"]]
        cls = _find_class(tree["namedtuple"], "tuple")
        if cls is None:
            return tuple(items)
        return cls(items) if is_structseq_class(cls) else cls(*items)
    fields = {name: rebuild(child, tensors) for name, child in tree["fields"]}
    cls = _find_class(tree["dataclass"], "dict")
    if cls is None or not dataclasses.is_dataclass(cls):
        return fields
    obj = cls.__new__(cls)              # the fields exactly as returned, even init=False ones
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def class_name(cls: type) -> str:
    """How a tree names `cls`: "module:QualName"."""
    return f"{cls.__module__}:{cls.__qualname__}"


def is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def is_structseq_class(cls: type) -> bool:
    """A C struct sequence (torch.return_types.sort, max, ...): a named tuple built from one
    sequence, whose field names are its `__match_args__`."""
    return issubclass(cls, tuple) and hasattr(cls, "n_sequence_fields")


_warned = set()


def _find_class(name: str, fallback: str) -> Optional[type]:
    """The class `name` ("module:QualName") from an already imported module, or None."""
    module_name, _, qualname = name.partition(":")
    obj = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type):
        return obj
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"the model returned a {name}, which this process has not imported; "
                      f"it comes back as a {fallback} (import its module before calling to get "
                      f"the class)", RuntimeWarning, stacklevel=4)
    return None

