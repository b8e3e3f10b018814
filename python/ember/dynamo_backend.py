"""`torch.compile(model, backend="ember")`: ember as a TorchDynamo backend.

    compiled = torch.compile(model, backend="ember")
    compiled = torch.compile(model, backend="ember", dynamic=True,
                             options={"target": "host", "quantize": ember.quant.Int8(),
                                      "threads": 2, "fallback": False})

The backend is found through the `torch_dynamo_backends` entry point (pyproject.toml), so no
`import ember` is needed first: on the first use of the name, torch loads `ember_backend` and
registers it (torch._dynamo.register_backend). Dynamo hands the backend each graph it captured
(a model with graph breaks gives several); each becomes one ember artifact, compiled on its
first call:

- the module's parameters and buffers, which dynamo passes as graph inputs, are bound as the
  artifact's weights (checked by identity and version on every call: a replaced or modified
  weight compiles the graph again);
- a dim dynamo made symbolic (`dynamic=True`, `torch._dynamo.mark_dynamic`) is a dynamic dim of
  the artifact with dynamo's range; size inputs dynamo adds (SymInts) are read from the tensor
  dims they name; nothing is specialised behind dynamo's back;
- only real tensors of the first call are used (the example inputs dynamo passes, possibly fake,
  are never read);
- inference only: a call that would need gradients is refused with a message;
- a graph ember cannot compile (an unsupported op, a Python number input that is no tensor's
  size) runs in eager with one warning naming the op and the source line, unless
  `options={"fallback": False}` or `torch.compile(..., fullgraph=True)` (which asks for one
  whole graph: not a graph in eager either), which raise instead.

Options are ember.compile's (`target`, `quantize`, `precision`, `dynamic_shapes` excluded: dynamo
decides), plus `threads` (the runtime's thread count) and `fallback`. A new shape or dtype that
breaks dynamo's guards comes back here as a new graph; dynamo keeps every compiled variant.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ember.frontend.fx_dims import export_dims, is_symbolic

#: Options of this backend that are not ember.compile's.
BACKEND_OPTIONS = ("threads", "fallback")


class EmberBackendError(RuntimeError):
    """A graph torch.compile handed ember could not be compiled, and fallback is off."""


def ember_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                  options: Optional[Dict[str, Any]] = None, mode: Optional[str] = None):
    """The TorchDynamo backend: returns the callable dynamo runs in place of `gm`."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(BACKEND_OPTIONS) - _compile_option_names())
    if unknown or "dynamic_shapes" in options:
        raise ValueError(f"torch.compile(backend='ember'): unknown option(s) "
                         f"{unknown or ['dynamic_shapes']}; ember takes "
                         f"{sorted(set(BACKEND_OPTIONS) | _compile_option_names())} (dynamic "
                         f"dims come from dynamo: dynamic=True or mark_dynamic)")
    return _Graph(gm, options, fullgraph=_tracing_fullgraph())


def _tracing_fullgraph() -> bool:
    """Whether the torch.compile tracing this graph was asked for `fullgraph=True` (dynamo's
    translator, running while it calls its backend, holds it as `one_graph`)."""
    try:
        from torch._dynamo.symbolic_convert import InstructionTranslator
        return bool(getattr(InstructionTranslator.current_tx(), "one_graph", False))
    except Exception:  # noqa: BLE001 - not inside dynamo's tracing (a direct call)
        return False


def _compile_option_names() -> set:
    from ember.compiler import CompileOptions
    return {f.name for f in dataclasses.fields(CompileOptions)} - {"dynamic_shapes"}


@dataclasses.dataclass
class _Layout:
    """How the graph's inputs map to what the artifact takes: per placeholder, ("input", i):
    the artifact's i-th input; ("weight", name): bound as weight `name`; ("size", i, d): dim d
    of artifact input i (a SymInt dynamo passes); ("scalar", value): a float compiled in."""
    slots: List[Tuple]
    weights: Dict[str, torch.Tensor]
    versions: Dict[str, int]


class _Frozen(torch.nn.Module):
    """The graph with its weights as parameters and its size inputs read from tensor dims:
    what ember.compile exports."""

    def __init__(self, gm: torch.fx.GraphModule, layout: _Layout):
        super().__init__()
        self.gm = gm
        self.slots = layout.slots
        for name, tensor in layout.weights.items():
            self.register_buffer(name, tensor.detach(), persistent=True)

    def forward(self, *inputs):
        args = []
        for slot in self.slots:
            if slot[0] == "input":
                args.append(inputs[slot[1]])
            elif slot[0] == "weight":
                args.append(getattr(self, slot[1]))
            elif slot[0] == "scalar":
                args.append(torch.tensor(slot[1], dtype=torch.float64))
            else:
                args.append(inputs[slot[1]].shape[slot[2]])
        # Node by node, so that the nodes torch.export makes keep the stack traces of the
        # user's code dynamo recorded (ember names those lines in its messages).
        return torch.fx.Interpreter(self.gm).run(*args)


class _Graph:
    """One graph dynamo captured, compiled by ember on its first call (see the module
    docstring)."""

    def __init__(self, gm: torch.fx.GraphModule, options: Dict[str, Any],
                 fullgraph: bool = False):
        self.gm = gm
        self.fallback = options.pop("fallback", True) and not fullgraph
        self.fullgraph = fullgraph
        self.threads = options.pop("threads", None)
        self.options = options
        self.placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.compiled = None
        self.layout: Optional[_Layout] = None
        self.eager = False

    def __call__(self, *args):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad
                                           and not isinstance(a, torch.nn.Parameter)
                                           for a in args):
            raise RuntimeError("torch.compile(backend='ember') compiles inference graphs: an "
                               "input requires grad; call the model under torch.no_grad() or "
                               "torch.inference_mode() (ember computes no gradients)")
        if self.eager:
            return self.gm(*args)
        if self.compiled is None or not self._weights_unchanged(args):
            if not self._compile(args):
                return self.gm(*args)
        outputs = self.compiled(*[args[i] for i in self._input_indices()])
        return outputs if isinstance(outputs, (tuple, list)) else (outputs,)

    # -- compiling ----------------------------------------------------------------------
    def _compile(self, args) -> bool:
        """Compiles the graph for the first call's `args`; False when it falls back to eager."""
        import ember
        from ember.compiler import CompileOptions
        try:
            layout = self._layout(args)
            inputs = [args[i] for i in self._input_indices(layout)]
            with warnings.catch_warnings():
                # dynamo's dims may have no upper bound: the runtime then sizes each output
                # from the call's shapes, which is all this callable needs
                warnings.filterwarnings("ignore", message="dynamic dim .* has no declared max")
                with torch.fx.traceback.preserve_node_meta():
                    compiled = ember.compile(_Frozen(self.gm, layout).eval(), tuple(inputs),
                                             options=CompileOptions(**self.options),
                                             dynamic_shapes=self._dynamic_shapes(layout))
        except Exception as e:  # noqa: BLE001 - any failure: fall back or say why
            if not self.fallback:
                why = "fullgraph=True" if self.fullgraph else "options={'fallback': False}"
                raise EmberBackendError(f"torch.compile(backend='ember') could not compile a "
                                        f"graph, and {why} rules out running it in eager: "
                                        f"{e}") from e
            warnings.warn(f"ember: this graph runs in eager PyTorch (options={{'fallback': "
                          f"False}} makes this an error): {_first_lines(e)}", stacklevel=3)
            self.eager = True
            return False
        if self.threads:
            from ember.runtime import Model
            compiled.runtime = Model(compiled.artifact_dir, num_threads=self.threads)
        self.compiled, self.layout = compiled, layout
        return True

    def _layout(self, args) -> _Layout:
        slots, weights, versions = [], {}, {}
        symbols = {}        # a size symbol -> (artifact input, dim) carrying it
        count = 0
        for node, arg in zip(self.placeholders, args):
            if _is_float_scalar(node, arg):
                slots.append(("scalar", float(arg.item())))
            elif isinstance(arg, torch.Tensor) and _is_module_state(node, arg):
                name = f"w{len(weights)}_{node.name.strip('_')}"[:120]
                weights[name] = arg
                versions[name] = arg._version
                slots.append(("weight", name))
            elif isinstance(arg, torch.Tensor):
                example = node.meta.get("example_value")
                for d, size in enumerate(example.shape if example is not None else ()):
                    if is_symbolic(size):
                        symbols.setdefault(str(size.node.expr), (count, d))
                slots.append(("input", count))
                count += 1
            else:
                slots.append(("size", None, None))
        for i, (node, arg) in enumerate(zip(self.placeholders, args)):
            if slots[i][0] == "size":
                example = node.meta.get("example_value")
                where = symbols.get(str(getattr(example, "node", None) and example.node.expr))
                if where is None:
                    raise EmberBackendError(f"graph input {node.name} is a Python number "
                                            f"({arg!r}) that is no tensor's size; ember "
                                            f"compiles tensor inputs and their sizes (pass "
                                            f"it as a tensor)")
                slots[i] = ("size",) + where
        return _Layout(slots, weights, versions)

    def _input_indices(self, layout: Optional[_Layout] = None) -> List[int]:
        """Positions, among dynamo's arguments, of the artifact's inputs."""
        slots = (layout or self.layout).slots
        return [i for i, slot in enumerate(slots) if slot[0] == "input"]

    def _dynamic_shapes(self, layout: _Layout) -> Optional[tuple]:
        """torch.export dims for the dims dynamo made symbolic (ember.frontend.fx_dims), for
        _Frozen's varargs."""
        nodes = [self.placeholders[i] for i in self._input_indices(layout)]
        try:
            specs, dynamic = export_dims([n.meta.get("example_value") for n in nodes],
                                         [n.name for n in nodes])
        except ValueError as e:
            raise EmberBackendError(str(e)) from None
        return (tuple(specs),) if dynamic else None

    def _weights_unchanged(self, args) -> bool:
        """Whether the weights bound at compile time are still the objects dynamo passes, and
        unmodified."""
        for slot, arg in zip(self.layout.slots, args):
            if slot[0] == "scalar" and float(arg.item()) != slot[1]:
                return False
            if slot[0] == "weight":
                bound = self.layout.weights[slot[1]]
                if arg is not bound or arg._version != self.layout.versions[slot[1]]:
                    return False
        return True


def _is_float_scalar(node, arg) -> bool:
    """Whether a graph input is a Python float dynamo turned into a 0-d tensor (dynamic mode
    does so for float attributes such as LayerNorm's eps) that the graph reads with .item():
    compiled in as its value, and compared on every call."""
    return isinstance(arg, torch.Tensor) and arg.dim() == 0 and arg.is_floating_point() and \
        bool(node.users) and all(user.op == "call_method" and user.target == "item"
                                 for user in node.users)


def _is_module_state(node, arg: torch.Tensor) -> bool:
    """Whether a graph input is a parameter or buffer of the compiled module (dynamo names
    them after their module path: L_self_modules_fc_parameters_weight_)."""
    return isinstance(arg, torch.nn.Parameter) or "_parameters_" in node.name or \
        "_buffers_" in node.name


def _first_lines(error: BaseException, lines: int = 6) -> str:
    return "\n".join(str(error).strip().splitlines()[:lines])
