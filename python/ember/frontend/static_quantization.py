"""Static int8 quantization of a torch model, before import: PyTorch's PT2E flow.

    model --torch.export--> graph --prepare_pt2e(X86InductorQuantizer)--> observed graph
          --run the calibration inputs--> --convert_pt2e--> graph with quantize/dequantize ops

The result is what a user who quantized with PT2E themselves would hand ember, and it is
compiled the same way (ember-fold-quantized-ops turns its dequantize -> Linear chains into int8
GEMMs). torchao supplies the quantizer and the weight observer (per output channel,
symmetric); the activation observer is chosen by `Int8.method`:

    percentile  the range holding `percentile` % of the observed values (outliers clipped;
                the default)
    minmax      the observed [min, max]
    entropy     the clipping threshold whose quantization (to the codes' levels) keeps the
                histogram closest in KL divergence (TensorRT's entropy calibration)

`filter`/`exclude` pick the Linear and Conv2d modules by kind or module path, the same rule as
dynamic mode; of those, the layers whose result is a model output (`output_layers`) stay in
floating point unless `Int8.quantize_outputs`.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Set, Tuple

import numpy as np
import torch

from ember.frontend.bias_correction import LayerMeans, correct_biases
from ember.quant import Int8


def _range_search_observer(method: str, percentile: float):
    """An activation observer class: HistogramObserver's running histogram, another rule for
    the range it quantizes."""
    from torchao.quantization.pt2e.observer import HistogramObserver

    class RangeSearchObserver(HistogramObserver):
        def _non_linear_param_search(self) -> Tuple[torch.Tensor, torch.Tensor]:
            hist = self.histogram.detach().cpu().double().numpy()
            lo, hi = float(self.min_val), float(self.max_val)
            if hist.sum() == 0 or hi <= lo:
                return self.min_val, self.max_val
            edges = np.linspace(lo, hi, len(hist) + 1)
            levels = int(self.quant_max) - int(self.quant_min) + 1
            first, last = (_percentile_bins(hist, percentile) if method == "percentile"
                           else _entropy_bins(hist, edges, levels))
            return (torch.tensor(min(edges[first], 0.0), dtype=torch.float32),
                    torch.tensor(max(edges[last + 1], 0.0), dtype=torch.float32))
    RangeSearchObserver.__name__ = f"{method.capitalize()}Observer"
    return RangeSearchObserver


def _percentile_bins(hist: np.ndarray, percentile: float) -> Tuple[int, int]:
    """The first and last bins of the central `percentile` % of the mass (each tail loses
    half of the rest)."""
    cdf = np.cumsum(hist) / hist.sum()
    tail = (100.0 - percentile) / 200.0
    first = int(np.searchsorted(cdf, tail, side="right"))
    last = int(np.searchsorted(cdf, 1.0 - tail, side="left"))
    return min(first, last), min(last, len(hist) - 1)


def _kl_divergence(window: np.ndarray, clipped: np.ndarray, levels: int) -> float:
    """KL(P || Q), as TensorRT's calibrator: P the histogram with the clipped outliers added to
    its edge bins (`clipped`), Q the histogram without them (`window`) merged into `levels`
    equal groups of bins and spread back evenly over each group's nonempty bins; so clipping
    costs what it moves, and rounding what it merges."""
    p = clipped / clipped.sum()
    q = np.zeros_like(p)
    for g in np.array_split(np.arange(len(window)), min(levels, len(window))):
        nonempty = g[window[g] > 0]
        if len(nonempty):
            q[nonempty] = window[g].sum() / len(nonempty)
    if not q.sum():
        return np.inf
    q /= q.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _entropy_bins(hist: np.ndarray, edges: np.ndarray, levels: int,
                  candidates: int = 128) -> Tuple[int, int]:
    """The window [first, last] of bins that clipping at a threshold T (to [-T, T], as
    TensorRT's entropy calibration) leaves, for the T whose quantization loses the least (KL
    divergence); T runs geometrically from the largest magnitude down to where the window
    would hold fewer bins than quantization levels."""
    n = len(hist)
    top = max(abs(edges[0]), abs(edges[-1]))
    best, best_window = np.inf, (0, n - 1)
    for t in top * np.geomspace(1.0, 1e-4, candidates):
        first = int(np.searchsorted(edges, -t, side="right")) - 1
        last = int(np.searchsorted(edges, t, side="left")) - 1
        first, last = max(first, 0), min(last, n - 1)
        if last - first + 1 < levels:
            break
        window = hist[first:last + 1]
        clipped = window.copy()
        clipped[0] += hist[:first].sum()
        clipped[-1] += hist[last + 1:].sum()
        divergence = _kl_divergence(window, clipped, levels)
        if divergence < best:
            best, best_window = divergence, (first, last)
    return best_window


def _x86_quantizer_class():
    """X86InductorQuantizer, made to skip the Linear -> activation pairs it cannot read:
    torchao 0.18 finds partitions with no output node in Hugging Face models (their GELU
    module) and fails on them with an IndexError; such a Linear is then annotated alone (its
    activation runs in floating point between quantized layers). It also quantizes residual
    adds' shortcuts (`_annotate_conv_shortcuts`)."""
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    class X86Quantizer(x86.X86InductorQuantizer):
        #: The activation spec a residual add's shortcut is quantized with
        #: (`_annotate_conv_shortcuts`); None: left alone.
        shortcut_activation = None

        def _get_output_nodes_of_partitions(self, partition_list):
            if any(not partition.output_nodes for partition in partition_list):
                raise _UnreadablePartition()
            return super()._get_output_nodes_of_partitions(partition_list)

        def _annotate_linear_unary(self, gm, quantization_config, filter_fn=None):
            try:
                super()._annotate_linear_unary(gm, quantization_config, filter_fn)
            except _UnreadablePartition:
                pass

        def annotate(self, model):
            model = super().annotate(model)
            if self.shortcut_activation is not None:
                _annotate_conv_shortcuts(model, self.shortcut_activation)
            return model
    return X86Quantizer


#: The annotation key PT2E's quantizers write on a node (torchao's Q_ANNOTATION_KEY).
_ANNOTATION = "quantization_annotation"


def _annotate_conv_shortcuts(graph_module, activation) -> None:
    """Quantizes the shortcut of each residual add joining two quantized convolutions (a ResNet
    block with a downsampling 1x1 conv): the shortcut conv's output, read by that add alone,
    then travels as codes (the int8 GEMM adding it dequantizes them), as X86InductorQuantizer
    quantizes such an add's inputs under a global config; module-name configs, ember's, leave
    the add (its parent module's op) out."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    def quantized_conv(node) -> bool:
        return isinstance(node, torch.fx.Node) and node.target == torch.ops.aten.conv2d.default \
            and _ANNOTATION in node.meta

    for node in graph_module.graph.nodes:
        if node.target not in (torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor) or \
                len(node.args) < 2:
            continue
        # the second input first, as X86InductorQuantizer's conv + add pattern (`y + shortcut`)
        for shortcut, main in (node.args[1::-1], node.args[:2]):
            if quantized_conv(shortcut) and quantized_conv(main) and len(shortcut.users) == 1:
                annotation = node.meta.setdefault(_ANNOTATION, QuantizationAnnotation())
                annotation.input_qspec_map.setdefault(shortcut, activation)
                annotation._annotated = True
                break


class _UnreadablePartition(Exception):
    """A source partition without an output node (see _x86_quantizer_class)."""


def _quantizer(model: torch.nn.Module, scheme: Int8, codes: Tuple[int, int],
               float_paths: Set[str] = frozenset()):
    from torchao.quantization.pt2e.observer import MinMaxObserver
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    config = x86.get_default_x86_inductor_quantization_config()
    observer = MinMaxObserver if scheme.method == "minmax" else \
        _range_search_observer(scheme.method, scheme.percentile)
    activation = dataclasses.replace(config.input_activation, quant_min=codes[0],
                                     quant_max=codes[1],
                                     observer_or_fake_quant_ctr=observer.with_args(eps=2 ** -12))
    config = dataclasses.replace(config, input_activation=activation,
                                 output_activation=activation)
    quantizer = _x86_quantizer_class()()
    kinds = {torch.nn.Linear: "Linear", torch.nn.Conv2d: "Conv2d"}
    for path, module in model.named_modules():
        kind = kinds.get(type(module))
        if kind is not None and path not in float_paths and scheme.selects(kind, path):
            quantizer.set_module_name_qconfig(path, config)
    quantizer.shortcut_activation = activation
    return quantizer


def quantize_static(model: torch.nn.Module, example_inputs, scheme: Int8,
                    dynamic_shapes=None, codes: Tuple[int, int] = (0, 255)) -> torch.nn.Module:
    """`model` with its chosen Linear and Conv2d layers statically quantized (a
    `convert_pt2e` graph module), calibrated on `scheme.calibration`; activations get the
    unsigned codes [codes[0], codes[1]] (the target's `static_activation_codes`: 7 bits
    where its dot product needs them, as FBGEMM's reduce_range)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from ember.frontend.errors import ExportError
    from ember.frontend.export import in_inference_mode
    example_inputs = tuple(example_inputs)
    try:
        with in_inference_mode(model):
            graph = torch.export.export(model, example_inputs, dynamic_shapes=dynamic_shapes or
                                        _calibration_shapes(example_inputs, scheme.calibration)
                                        ).module()
    except Exception as e:
        raise ExportError(f"torch.export failed before static quantization: {e}") from e
    float_paths = set() if scheme.quantize_outputs else output_layers(graph)
    prepared = prepare_pt2e(graph, _quantizer(model, scheme, codes, float_paths))
    layers = [node.name for _, node in _layer_nodes(prepared)]
    float_means = LayerMeans(prepared, layers)
    with torch.no_grad():
        for i, batch in enumerate(scheme.calibration):
            try:
                float_means.observe(*batch)
            except Exception as e:
                raise ValueError(f"calibration batch {i} does not fit the model as exported "
                                 f"for these example inputs: {e}") from e
    folded = _float_layers(prepared)
    converted = convert_pt2e(prepared)
    if scheme.bias_correction:
        quantized = [node.name for _, node in _layer_nodes(converted)
                     if node.args[1].target == torch.ops.quantized_decomposed
                     .dequantize_per_channel.default]
        correct_biases(converted, quantized, float_means.means(), scheme.calibration)
    converted.meta[FLOAT_LAYERS] = folded
    return converted


#: GraphModule.meta key of quantize_static's result: each layer's float weight and bias as
#: the quantizer saw them (a BatchNorm already folded in), by module path.
FLOAT_LAYERS = "ember.float_layers"
_LAYER_OPS = (torch.ops.aten.linear.default, torch.ops.aten.conv2d.default)


def _layer_nodes(graph_module):
    """(module path, node) of each Linear/Conv2d call of a PT2E graph."""
    for node in graph_module.graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        if node.target in _LAYER_OPS and stack:
            yield list(stack.values())[-1][0], node


#: Ops that only move or view values: a layer's result reaching the graph's output through
#: them is a model output.
_VIEWS = {torch.ops.aten.view.default, torch.ops.aten.reshape.default,
          torch.ops.aten.flatten.using_ints, torch.ops.aten.squeeze.dim,
          torch.ops.aten.squeeze.dims, torch.ops.aten.unsqueeze.default,
          torch.ops.aten.permute.default, torch.ops.aten.transpose.int,
          torch.ops.aten.contiguous.default, torch.ops.aten.clone.default,
          torch.ops.aten.dropout.default}


def output_layers(graph_module) -> Set[str]:
    """Module paths of the Linear/Conv2d layers whose result is a model output (through
    views only): a classifier, a regression head. Int8.quantize_outputs leaves them in
    floating point."""
    def reaches_output(node) -> bool:
        return any(user.op == "output" or (user.target in _VIEWS and reaches_output(user))
                   for user in node.users)
    return {path for path, node in _layer_nodes(graph_module) if reaches_output(node)}


def _constant(graph_module, node):
    """The tensor a get_attr node (possibly behind an observer call) reads, or None."""
    while node is not None and node.op == "call_module":
        node = node.args[0]
    if node is None or node.op != "get_attr":
        return None
    value = graph_module
    for part in node.target.split("."):
        value = getattr(value, part)
    return value.detach().clone()


def _float_layers(prepared) -> Dict[str, tuple]:
    """(float weight, bias or None) of each layer of a prepared graph: prepare_pt2e has folded
    the BatchNorms that follow convolutions into them, so these are what the int8 weights
    approximate."""
    layers = {}
    for path, node in _layer_nodes(prepared):
        weight = _constant(prepared, node.args[1])
        if weight is not None:
            bias = node.args[2] if len(node.args) > 2 else None
            layers[path] = (weight, None if bias is None else _constant(prepared, bias))
    return layers


def _calibration_shapes(example_inputs: tuple, calibration) -> Optional[tuple]:
    """torch.export dynamic shapes that let the calibration batches through: every input dim
    whose size differs between the example and a batch is left free (Dim.AUTO)."""
    free = [set() for _ in example_inputs]
    for batch in calibration:
        for i, (example, value) in enumerate(zip(example_inputs, batch)):
            if isinstance(example, torch.Tensor) and isinstance(value, torch.Tensor) and \
                    example.dim() == value.dim():
                free[i] |= {d for d in range(example.dim()) if example.shape[d] != value.shape[d]}
    if not any(free):
        return None
    return tuple({d: torch.export.Dim.AUTO for d in dims} if isinstance(x, torch.Tensor)
                 else None for x, dims in zip(example_inputs, free))


def layer_parameters(converted: torch.nn.Module) -> Dict[str, dict]:
    """What a `convert_pt2e` graph states for each quantized Linear and Conv2d, by module path:
    its input's per-tensor (scale, zero point, lowest, highest code), its weight's codes and
    per-output-channel scales, read from the quantize/dequantize nodes around it, and (for
    quantize_static's graphs) the float weight and bias they approximate, BatchNorm folded
    (so a report can reproduce the layer alone, quantized and not)."""
    decomposed = torch.ops.quantized_decomposed
    floats = converted.meta.get(FLOAT_LAYERS, {})
    layers = {}
    for path, node in _layer_nodes(converted):
        x, w = node.args[0], node.args[1]
        if getattr(x, "target", None) != decomposed.dequantize_per_tensor.default \
                or getattr(w, "target", None) != decomposed.dequantize_per_channel.default:
            continue
        codes, scales = (getattr(converted, a.target).detach() for a in w.args[:2])
        layers[path] = {"input": tuple(x.args[1:5]), "weight": (codes, scales, w.args[3]),
                        "float": floats.get(path)}
    return layers
