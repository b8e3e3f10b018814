"""Errors the frontend raises, phrased so a user can act on them.

An op that cannot be compiled is reported as the call the user wrote (the FX node torch.export
recorded at that source location, found through `user_calls`), not as whatever torch-mlir
turned it into, with its line and the reason (an op without a lowering, complex tensors,
mixed dtypes into a product)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

#: Frames inside these packages are never "the user's line".
_LIBRARY_MARKERS = ("/torch/", "/torch_mlir/", "/ember/", "site-packages/", "<frozen")


#: The reason for an op that neither ember nor torch-mlir's linalg lowering handles.
NO_LOWERING = "no ember conversion and no linalg lowering"


@dataclass
class UnsupportedOp:
    aten_op: str               # the op the user's call became ("aten.linear", "aten.nonzero")
    source: Optional[str]      # "file.py:line" of the user's code, when known
    reason: str = ""
    call: str = ""             # how the user called it ("linear in module 'fc' (Linear)")

    def describe(self) -> str:
        where = self.source or "unknown source location"
        call = f" ({self.call})" if self.call else ""
        return f"  {self.aten_op}{call} at {where}" + (f": {self.reason}" if self.reason else "")


class UnsupportedOpsError(RuntimeError):
    """The model uses ops that neither ember's conversion nor the linalg fallback handles."""

    def __init__(self, ops: List[UnsupportedOp]):
        self.ops = ops
        lines = [f"ember cannot compile {len(ops)} op(s) of this model:"]
        lines += [op.describe() for op in ops]
        lines.append("hint: rewrite these calls with supported ops (docs/op_table.md lists them), "
                     "or file an issue naming the op; the linalg fallback covers what "
                     "torch-mlir's TorchToLinalg lowers.")
        super().__init__("\n".join(lines))


class ExportError(RuntimeError):
    """torch.export could not capture the model."""


_FILE_LINE = re.compile(r'"([^"]+)":(\d+):(\d+)')
_TRACEBACK_FRAME = re.compile(r'File "([^"]+)", line (\d+),')
#: Ops whose tensors must share one dtype (PyTorch promotes elementwise ops' operands, not these).
_NO_PROMOTION = ("aten.linear", "aten.mm", "aten.bmm", "aten.matmul", "aten.addmm",
                 "aten.baddbmm", "aten.convolution", "aten.conv1d", "aten.conv2d", "aten.conv3d")
#: FX nodes that are plumbing of a call (tuple items, symbolic sizes and their guards), not a
#: call: Python functions on symbolic ints, named without an "aten." prefix.
_PLUMBING_TARGETS = ("getitem", "sym_size", "sym_numel", "sym_stride", "_assert_scalar",
                     "_assert_tensor_metadata", "ge", "le", "gt", "lt", "eq", "ne")


def user_source_line(location_text: str) -> Optional[str]:
    """The innermost user frame ("file.py:12") from an MLIR location's text, if any.

    torch-mlir encodes an FX node's stack as nested `callsite(callee at caller)` locations;
    frames inside torch, torch-mlir or ember are library code, not the line to show.
    """
    frames = [(f, int(line)) for f, line, _ in _FILE_LINE.findall(location_text)]
    user = [fr for fr in frames if not any(m in fr[0] for m in _LIBRARY_MARKERS)]
    chosen = user[0] if user else (frames[0] if frames else None)
    return f"{chosen[0]}:{chosen[1]}" if chosen else None


@dataclass
class UserCall:
    """One call in the user's model as torch.export recorded it (an FX node)."""
    aten_op: str                 # "aten.linear", "aten._linalg_svd"
    called_as: str               # the Python function the user called ("linear", "nonzero")
    module: str                  # the innermost nn.Module around it ("fc (Linear)"), or ""
    input_dtypes: List[str]      # of its tensor inputs, in order ("int64", "float32")
    output_dtypes: List[str]

    def complex_dtypes(self) -> List[str]:
        return sorted({d for d in self.input_dtypes + self.output_dtypes
                       if d.startswith("complex")})

    def reason(self) -> Optional[str]:
        """What about its tensors ember cannot compile, if that is the cause."""
        complex_ = self.complex_dtypes()
        if complex_:
            return f"complex tensors ({', '.join(complex_)}) are not supported by this op " \
                   f"(ember compiles complex add, sub, mul, abs, real, imag, view_as_real, " \
                   f"view_as_complex and complex)"
        if self.aten_op in _NO_PROMOTION and len(set(self.input_dtypes)) > 1:
            return f"its inputs have different dtypes ({', '.join(self.input_dtypes)}), which " \
                   f"it does not promote (PyTorch eager rejects this too): cast them to one " \
                   f"dtype, e.g. with .float()"
        return None

    @property
    def call(self) -> str:
        return f"called as {self.called_as}" + (f" in module {self.module}" if self.module else "")


def _frames(text: str, pattern) -> tuple:
    return tuple((f, int(line)) for f, line, *_ in pattern.findall(text))


def _dtypes(nodes) -> List[str]:
    """The dtypes ("float32") of the tensors the FX nodes produce, in order."""
    found = []
    for node in nodes:
        val = node.meta.get("val")
        for t in val if isinstance(val, (tuple, list)) else [val]:
            if hasattr(t, "dtype") and hasattr(t, "shape"):
                found.append(str(t.dtype).replace("torch.", ""))
    return found


def user_calls(graph) -> Dict[tuple, List[UserCall]]:
    """The calls of an exported FX graph by call stack (innermost frame first, the order of
    torch-mlir's `callsite` locations), so that an op left over in torch-mlir's IR can be
    blamed on the call the user wrote rather than on an op it was decomposed into."""
    calls: Dict[tuple, List[UserCall]] = {}
    for node in graph.nodes:
        if node.op != "call_function" or not node.stack_trace:
            continue
        name = str(node.meta.get("original_aten") or getattr(node.target, "__name__", ""))
        if name.split(".")[-1] in _PLUMBING_TARGETS or name.split(".")[0] in _PLUMBING_TARGETS:
            continue
        aten = name.rsplit(".", 1)[0] if name.endswith(".default") else name
        torch_fn = node.meta.get("torch_fn")
        called_as = torch_fn[1].rsplit(".", 1)[-1] if torch_fn else aten.split(".")[-1]
        modules = list((node.meta.get("nn_module_stack") or {}).values())
        module = ""
        if len(modules) > 1:  # the outermost entry is the model itself
            path, kind = modules[-1]
            module = f"'{path}' ({str(getattr(kind, '__name__', kind)).rsplit('.', 1)[-1]})"
        key = tuple(reversed(_frames(node.stack_trace, _TRACEBACK_FRAME)))
        call = UserCall(aten, called_as, module, _dtypes(node.all_input_nodes), _dtypes([node]))
        if call not in calls.setdefault(key, []):
            calls[key].append(call)
    return calls


def blame(left_over: List[tuple], calls: Dict[tuple, List[UserCall]]) -> List[UnsupportedOp]:
    """UnsupportedOps for the ops left in torch-mlir's IR, given as (op name, location text).
    Each is named by the user's call at its location when that is known (the op itself, or the
    one call there that torch-mlir decomposed into it), with the call's dtypes as the reason
    when they are the cause; one entry per call."""
    found: Dict[tuple, UnsupportedOp] = {}
    decomposed: Dict[tuple, List[str]] = {}
    for name, location in left_over:
        source = user_source_line(location)
        candidates = calls.get(_frames(location, _FILE_LINE), [])
        own = [c for c in candidates if c.aten_op == name]
        call = own[0] if own else candidates[0] if len(candidates) == 1 else None
        if call is None:
            found.setdefault((name, source, ""), UnsupportedOp(name, source, NO_LOWERING))
            continue
        key = (call.aten_op, source, call.module)
        found.setdefault(key, UnsupportedOp(call.aten_op, source, call.reason() or "",
                                            call.call))
        if name != call.aten_op and name not in decomposed.setdefault(key, []):
            decomposed[key].append(name)
    for key, op in found.items():
        if not op.reason:
            parts = decomposed.get(key)
            op.reason = NO_LOWERING + (f" (torch-mlir decomposed it into {', '.join(parts)}, "
                                       f"which have none)" if parts else "")
    return list(found.values())


#: The calls ember compiles on complex tensors (decompositions.py turns the arithmetic into
#: real arithmetic on the parts). torch-mlir's lowering of others emits invalid IR or aborts
#: the process (a complex sum), so those are refused before it runs.
COMPLEX_OPS = frozenset({"aten.add.Tensor", "aten.sub.Tensor", "aten.mul.Tensor", "aten.abs",
                         "aten.complex", "aten.view_as_real", "aten.view_as_complex",
                         "aten.real", "aten.imag", "aten.view", "aten.t"})


def unsupported_complex_calls(calls: Dict[tuple, List[UserCall]]) -> List[UnsupportedOp]:
    """The calls on complex tensors outside COMPLEX_OPS, as UnsupportedOps."""
    return [op for op in complex_calls(calls) if op.aten_op not in COMPLEX_OPS]


def complex_calls(calls: Dict[tuple, List[UserCall]]) -> List[UnsupportedOp]:
    """The calls on complex tensors, as UnsupportedOps: the cause to report when torch-mlir's
    lowering fails on such a model without naming an op."""
    found = []
    for frames, entries in calls.items():
        for call in entries:
            if call.complex_dtypes():
                location = " ".join(f'"{f}":{line}:0' for f, line in frames)
                found.append(UnsupportedOp(call.aten_op, user_source_line(location),
                                           call.reason() or "", call.call))
    return found
