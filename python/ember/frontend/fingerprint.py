"""A compile's fingerprint, computed without tracing the model: the compile cache's key.

A warm compile must cost less than torch.export's own start-up, so the key is not the exported
graph but what the graph is made from: the code of every module class in the model (the whole
source file each is defined in, which holds the helpers its forward calls) and the code a module
carries itself (an FX GraphModule's generated forward, functions set on an instance), the modules'
structure and plain attributes (`eps`, `scale`, flags), every parameter and buffer's bytes, the
example inputs' shapes and dtypes, the dynamic dims, the compile options (quantization schemes
with their calibration data and supplied codes), the target, and the versions of ember (its
installed files), torch, torch-mlir and of the packages the model's classes come from. A model
whose code cannot be read (built in a REPL, say) has no fingerprint and is not cached.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import sys
from typing import Any, Optional, Sequence

import numpy as np
import torch

_PLAIN = (bool, int, float, str, type(None))


class Unfingerprintable(Exception):
    """Something the compile depends on has no stable description."""


def fingerprint(model, example_inputs: Sequence[Any], options, target_spec: str) -> Optional[str]:
    """The hex key of compiling `model` on inputs like `example_inputs` with `options`, or None
    when the model cannot be fingerprinted (never a key that could match a different compile)."""
    h = hashlib.sha256()
    try:
        _add(h, "versions", _versions(model))
        _add(h, "target", target_spec)
        _add(h, "options", _describe(options))
        _add(h, "inputs", _describe(list(example_inputs), with_data=False))
        for name, module in model.named_modules():
            _add(h, "module", name, _class_code(type(module)), _instance_code(module),
                 {k: _describe(v) for k, v in sorted(vars(module).items())
                  if isinstance(v, _PLAIN + (tuple, list)) and not k.startswith("_")})
            tensors = {**module._parameters, **module._buffers,     # non-persistent ones too
                       **{k: v for k, v in vars(module).items() if isinstance(v, torch.Tensor)}}
            for key, tensor in sorted(tensors.items()):
                if tensor is not None:
                    _add(h, "tensor", name, key)
                    _add_tensor(h, tensor)
    except Unfingerprintable:
        return None
    return h.hexdigest()


def _add(h, *parts) -> None:
    h.update(repr(parts).encode())
    h.update(b"\0")


def _add_tensor(h, tensor: torch.Tensor) -> None:
    t = tensor.detach()
    if t.device.type != "cpu" or t.is_sparse or getattr(t, "is_quantized", False):
        raise Unfingerprintable(f"a {t.device.type} / sparse / quantized tensor")
    _add(h, str(t.dtype), tuple(t.shape))
    # hashed in place (a 0-d tensor, BatchNorm's num_batches_tracked, flattened for its bytes)
    if t.numel():
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())


def _describe(value, with_data: bool = True):
    """A repr-able description of an option or input value: tensors by shape and dtype (and,
    `with_data`, their bytes' hash), dataclasses field by field, Dims by name and range."""
    if isinstance(value, torch.Tensor):
        if not with_data:
            return ("tensor", str(value.dtype), tuple(value.shape))
        h = hashlib.sha256()
        _add_tensor(h, value)
        return ("tensor", h.hexdigest())
    if isinstance(value, np.ndarray):
        return _describe(torch.from_numpy(np.ascontiguousarray(value)), with_data)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__qualname__,
                {f.name: _describe(getattr(value, f.name), with_data)
                 for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {str(k): _describe(v, with_data) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, (list, tuple)):
        return [_describe(v, with_data) for v in value]
    if isinstance(value, _PLAIN):
        return value
    if type(value).__name__ in ("Dim", "_Dim", "_DimHint", "DimHint") or \
            type(value).__module__.startswith("torch.export"):
        return ("dim", str(value), getattr(value, "min", None), getattr(value, "max", None))
    if isinstance(value, torch.dtype):
        return str(value)
    raise Unfingerprintable(f"an option or input of type {type(value).__name__}")


def _class_code(cls) -> str:
    """The source file a module class is defined in (its forward's helpers included)."""
    if cls.__module__.startswith("torch.nn."):
        return cls.__qualname__                 # pinned by torch's version
    try:
        path = inspect.getsourcefile(cls)
        with open(path, "rb") as f:
            return cls.__qualname__ + hashlib.sha256(f.read()).hexdigest()
    except (TypeError, OSError):
        raise Unfingerprintable(f"no source for {cls.__qualname__}") from None


def _instance_code(module) -> str:
    """Code a module carries itself rather than in its class: an FX GraphModule's generated
    forward (a torch.compile graph, a loaded .pt2 program: the class is the same for every
    graph), and functions set on the instance (`module.forward = ...`)."""
    parts = [module.code] if isinstance(module, torch.fx.GraphModule) else []
    for key, value in sorted(vars(module).items()):
        if callable(value) and not isinstance(value, (torch.nn.Module, type)):
            try:
                parts.append(f"{key}:{inspect.getsource(value)}")
            except (TypeError, OSError):
                raise Unfingerprintable(f"no source for the callable attribute {key}") from None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def _versions(model) -> tuple:
    """ember's installed files (size and mtime: an edited checkout changes them), torch's and
    torch-mlir's versions, and those of the top-level packages the model's classes come from."""
    import ember
    root = os.path.dirname(os.path.abspath(ember.__file__))
    files = []
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith((".py", ".c", ".h")):
                stat = os.stat(os.path.join(directory, name))
                files.append((os.path.relpath(os.path.join(directory, name), root),
                              stat.st_size, stat.st_mtime_ns))
    packages = sorted({type(m).__module__.split(".")[0] for m in model.modules()})
    versions = [(p, getattr(sys.modules.get(p), "__version__", None)) for p in packages]
    from importlib import metadata
    try:
        torch_mlir = metadata.version("torch-mlir")
    except metadata.PackageNotFoundError:
        torch_mlir = None
    return (ember.__version__, torch.__version__, torch_mlir, tuple(versions),
            hashlib.sha256(repr(sorted(files)).encode()).hexdigest())
