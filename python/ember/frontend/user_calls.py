"""Which call of the user's model an op of torch-mlir's IR came from, so that an op ember cannot
compile is reported as the call the user wrote (with its module and the dtypes that are the
cause), not as what torch-mlir turned it into.

The importer names every node's location after its aten op (`loc("aten.linear"(callsite(...)))`,
the op the user called even for a node a decomposition made) and torch-mlir keeps that location
on everything it lowers from the node, so (aten op, frames) of a location find the FX node it
came from. No MLIR here: locations arrive as text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ember.frontend.errors import UnsupportedOp
from ember.source_locations import (aten_op, location_frames, stack_trace_frames, user_line,
                                    user_source_line)

#: Ops whose tensors must share one dtype (PyTorch promotes elementwise ops' operands, not these).
_NO_PROMOTION = ("aten.linear", "aten.mm", "aten.bmm", "aten.matmul", "aten.addmm",
                 "aten.baddbmm", "aten.convolution", "aten.conv1d", "aten.conv2d", "aten.conv3d")
#: The calls ember compiles on complex tensors: add, sub, mul and abs as real arithmetic on
#: the parts (decompositions.py), the rest through torch-mlir's linalg lowering, whose generic
#: ops on `complex<f32>` elements the CPU stages run as scalar loops (complex-to-llvm). This is
#: the set the operator suite (benchmarks/op_suite.py) measured correct on complex64: moving
#: data (views, copies, indexing, scatter by index, padding, concatenation, splits), creating
#: tensors like another, products (mm, matmul, bmm, baddbmm) and the 2-norm. torch-mlir's lowering
#: of the others emits invalid IR, crashes (a complex sum aborts) or is absent, so they are
#: refused before it runs.
COMPLEX_OPS = frozenset({
    # arithmetic
    "aten.add.Tensor", "aten.sub.Tensor", "aten.rsub.Tensor", "aten.mul.Tensor", "aten.abs",
    "aten.complex", "aten.polar", "aten.view_as_real", "aten.view_as_complex", "aten.real",
    "aten.imag", "aten.linalg_vector_norm", "aten.linalg_cross", "aten.renorm", "aten.mm",
    "aten.matmul", "aten.bmm", "aten.baddbmm", "aten.stft",
    # views and copies
    "aten.view", "aten._unsafe_view", "aten.t", "aten.t_copy", "aten.transpose.int",
    "aten.transpose_copy.int", "aten.permute", "aten.expand", "aten.expand_copy", "aten.squeeze",
    "aten.squeeze.dims", "aten.squeeze_copy", "aten.unsqueeze", "aten.unsqueeze_copy",
    "aten.select.int", "aten.slice.Tensor", "aten.diagonal", "aten.diagonal_copy",
    "aten.as_strided", "aten.alias_copy", "aten.unfold", "aten.unfold_copy", "aten.clone",
    "aten.copy", "aten._to_copy", "aten.flip", "aten.rot90", "aten.repeat", "aten.triu",
    "aten.tril", "aten.pixel_shuffle", "aten.pixel_unshuffle", "aten.channel_shuffle",
    "aten.diag_embed",
    # joining and splitting
    "aten.cat", "aten.stack", "aten._chunk_cat", "aten.split.Tensor", "aten.split_with_sizes",
    "aten.split_with_sizes_copy", "aten.unsafe_split.Tensor", "aten.unbind.int",
    # indexing
    "aten.index.Tensor", "aten.index_select", "aten.gather", "aten.take", "aten.index_put",
    "aten.index_copy", "aten.masked_scatter", "aten.where.self",
    # padding
    "aten.constant_pad_nd", "aten.replication_pad1d", "aten.replication_pad2d",
    "aten.reflection_pad1d",
    # new tensors
    "aten.empty_like", "aten.new_empty_strided", "aten.zeros_like", "aten.ones_like",
    "aten.zero", "aten.fill.Scalar", "aten.eye", "aten.logspace", "aten.logspace.Tensor_Tensor",
    "aten.scalar_tensor",
})


def aten_op_name(node) -> Optional[str]:
    """"aten.embedding" for an FX node calling an aten op: the op the user called
    (`original_aten`, which a node made by a decomposition keeps), without its overload."""
    target = node.meta.get("original_aten") or node.target
    name = getattr(target, "name", None)
    if node.op != "call_function" or not callable(name):
        return None
    return name().split(".")[0].replace("::", ".")


def _dtypes(nodes) -> List[str]:
    """The dtypes ("float32") of the tensors the FX nodes produce, in order."""
    found = []
    for node in nodes:
        val = node.meta.get("val")
        for t in val if isinstance(val, (tuple, list)) else [val]:
            if hasattr(t, "dtype") and hasattr(t, "shape"):
                found.append(str(t.dtype).replace("torch.", ""))
    return found


@dataclass(frozen=True)
class UserCall:
    """One call in the user's model as torch.export recorded it (an FX node)."""
    aten_op: str                 # "aten.linear", "aten.sum.dim_IntList" (overload unless default)
    called_as: str               # the Python function the user called ("linear", "nonzero")
    module: str                  # the innermost nn.Module around it ("'fc' (Linear)"), or ""
    input_dtypes: Tuple[str, ...]
    output_dtypes: Tuple[str, ...]

    @classmethod
    def of(cls, node) -> "UserCall":
        name = str(node.meta.get("original_aten") or node.target)
        aten = name.rsplit(".", 1)[0] if name.endswith(".default") else name
        torch_fn = node.meta.get("torch_fn")
        called_as = torch_fn[1].rsplit(".", 1)[-1] if torch_fn else aten.split(".")[-1]
        modules = list((node.meta.get("nn_module_stack") or {}).values())
        module = ""
        if len(modules) > 1:  # the outermost entry is the model itself
            path, kind = modules[-1]
            module = f"'{path}' ({str(getattr(kind, '__name__', kind)).rsplit('.', 1)[-1]})"
        return cls(aten, called_as, module, tuple(_dtypes(node.all_input_nodes)),
                   tuple(_dtypes([node])))

    def complex_dtypes(self) -> List[str]:
        return sorted({d for d in self.input_dtypes + self.output_dtypes
                       if d.startswith("complex")})

    def reason(self) -> Optional[str]:
        """What about its tensors ember cannot compile, if that is the cause."""
        complex_ = self.complex_dtypes()
        if complex_:
            return f"complex tensors ({', '.join(complex_)}) are not supported by this op " \
                   f"(ember compiles complex tensors through ops that move data, add, sub, mul, " \
                   f"abs, mm and matmul: ember.frontend.user_calls.COMPLEX_OPS)"
        if self.aten_op in _NO_PROMOTION and len(set(self.input_dtypes)) > 1:
            return f"its inputs have different dtypes ({', '.join(self.input_dtypes)}), which " \
                   f"it does not promote (PyTorch eager rejects this too): cast them to one " \
                   f"dtype, e.g. with .float()"
        return None

    @property
    def call(self) -> str:
        return f"called as {self.called_as}" + (f" in module {self.module}" if self.module else "")

    def refused(self, source: Optional[str], reason: str) -> UnsupportedOp:
        return UnsupportedOp(self.aten_op, source, reason, self.call)


#: (aten op without overload, frames innermost first) -> the calls there, in graph order.
UserCalls = Dict[tuple, List[UserCall]]


def user_calls(graph) -> UserCalls:
    """The aten calls of an exported FX graph, keyed as their ops' locations name them (read
    before the FX importer, which rewrites the graph as it goes)."""
    calls: UserCalls = {}
    for node in graph.nodes:
        op = aten_op_name(node)
        if op is None or not node.stack_trace:
            continue
        found = calls.setdefault((op, stack_trace_frames(node.stack_trace)), [])
        call = UserCall.of(node)
        if call not in found:
            found.append(call)
    return calls


def call_at(location_text: str, calls: UserCalls) -> Optional[UserCall]:
    """The user's call an op with this location was lowered from, if known."""
    found = calls.get((aten_op(location_text), location_frames(location_text)))
    return found[0] if found else None


def blame(left_over: List[tuple], calls: UserCalls) -> List[UnsupportedOp]:
    """UnsupportedOps for ops left in torch-mlir's IR, given as (op name, location text, why):
    one per user call, whose reason is the call's dtypes when they are the cause, else the
    first op's `why` (after the ops torch-mlir decomposed the call into, when those are what is
    left); an op whose call is unknown is reported by its own name."""
    blamed: Dict[tuple, tuple] = {}      # key -> (call or None, name, source, why, [parts])
    for name, location, why in left_over:
        source = user_source_line(location)
        call = call_at(location, calls)
        key = (call.aten_op, source, call.module) if call else (name, source)
        parts = blamed.setdefault(key, (call, name, source, why, []))[-1]
        if call and name.split(".")[:2] != call.aten_op.split(".")[:2] and name not in parts:
            parts.append(name)
    found = []
    for call, name, source, why, parts in blamed.values():
        if call is None:
            found.append(UnsupportedOp(name, source, why))
            continue
        if parts:
            why = f"torch-mlir decomposed it into {', '.join(parts)}: {why}"
        found.append(call.refused(source, call.reason() or why))
    return found


def complex_calls(calls: UserCalls) -> List[UnsupportedOp]:
    """The calls on complex tensors, as UnsupportedOps: the cause to report when torch-mlir's
    lowering fails on such a model without naming an op."""
    return [call.refused(user_line(frames), call.reason())
            for (_, frames), entries in calls.items() for call in entries
            if call.complex_dtypes()]


def unsupported_complex_calls(calls: UserCalls) -> List[UnsupportedOp]:
    """The calls on complex tensors outside COMPLEX_OPS, as UnsupportedOps."""
    return [op for op in complex_calls(calls) if op.aten_op not in COMPLEX_OPS]
