"""What a model returns, beyond its tensors: the output tree (ember.output_tree) of an export.

torch.export flattens `forward`'s result with torch's pytree: its out_spec is the structure and
each leaf is a tensor the graph computes or a constant the graph does not (an int, None). This
turns the two into ember's JSON description. Dataclasses are not pytree nodes unless registered
(and registering them would change the caller's process), so while exporting, a forward hook
on the model hands torch.export each returned dataclass as a dict of its fields and remembers
where it was; the description names the class again. (Under strict export the hook runs inside
dynamo, which does not replay that bookkeeping: a dataclass then comes back as a dict.)
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Dict, Iterator, List, Mapping, Tuple

from ember.frontend.errors import ExportError
from ember.output_tree import class_name, is_namedtuple_class, is_structseq_class

Path = Tuple[Any, ...]


@contextlib.contextmanager
def dataclasses_as_dicts(model) -> Iterator[Dict[Path, type]]:
    """While active, `model` returns each dataclass as a dict of its fields; yields the map
    path -> class that the calls fill. The hook is removed afterwards."""
    found: Dict[Path, type] = {}

    def plain(value, path: Path):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found[path] = type(value)
            return {f.name: plain(getattr(value, f.name), path + (f.name,))
                    for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {k: plain(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and not is_namedtuple_class(type(value)):
            return type(value)(plain(v, path + (i,)) for i, v in enumerate(value))
        if isinstance(value, tuple):
            return type(value)(*(plain(v, path + (i,)) for i, v in enumerate(value)))
        return value

    handle = model.register_forward_hook(lambda module, args, out: plain(out, ()))
    try:
        yield found
    finally:
        handle.remove()


def describe(out_spec, leaves: List[dict], dataclass_paths: Mapping[Path, type]) -> dict:
    """The output tree of torch's `out_spec` whose leaves, in order, are `leaves` (each
    {"tensor": index among the graph's outputs} or {"constant": value})."""
    return _node(out_spec, iter(leaves), (), dataclass_paths)


def _node(spec, leaves, path: Path, dataclass_paths) -> dict:
    if spec.is_leaf():
        return next(leaves)
    children = spec.children()
    kind = spec.type
    if kind is type(None):
        return {"constant": None}
    if isinstance(spec.context, type) and is_namedtuple_class(spec.context):
        cls = spec.context
        return {"namedtuple": class_name(cls), "fields": list(cls._fields),
                "items": [_node(c, leaves, path + (i,), dataclass_paths)
                          for i, c in enumerate(children)]}
    if isinstance(kind, type) and is_structseq_class(kind):
        return {"namedtuple": class_name(kind), "fields": list(kind.__match_args__),
                "items": [_node(c, leaves, path + (i,), dataclass_paths)
                          for i, c in enumerate(children)]}
    if kind in (tuple, list):
        return {kind.__name__: [_node(c, leaves, path + (i,), dataclass_paths)
                                for i, c in enumerate(children)]}
    if issubclass(kind, dict):
        keys = list(spec.context)
        items = [[k, _node(c, leaves, path + (k,), dataclass_paths)]
                 for k, c in zip(keys, children)]
        cls = dataclass_paths.get(path)
        if cls is not None:
            return {"dataclass": class_name(cls), "fields": items}
        bad = [k for k in keys if not isinstance(k, (int, str, bool))]
        if bad:
            raise ExportError(f"the model returns a dict with keys {bad}; ember keeps int and "
                              f"str keys only")
        return {"dict": items}
    raise ExportError(f"the model returns a {kind.__qualname__}; ember returns tensors, "
                      f"constants and None inside tuples, lists, dicts, namedtuples and "
                      f"dataclasses")
