"""One adapter per backend, all with one interface:

    prepare(model, inputs, threads, workdir) -> Prepared(step, info)

`step()` runs the model once on the bound inputs and returns its outputs (a tensor, array,
or a list of them); the worker times `step` and cross-checks its result against eager.
Everything a backend does once (export, compile, load, weight packing, allocating outputs)
happens in `prepare`, so the timed call is only what a serving loop would pay per request.
Where a backend can write into caller-owned outputs (ember, ONNX Runtime) it does, so the
allocator is not measured; torch and IREE allocate their outputs as they always do.

Threads: the worker sets OMP/MKL/EMBER_NUM_THREADS in the environment before anything loads
(run_all.py passes them to the child), and each adapter also sets its library's own knob.
Each adapter imports its library itself, so a missing package fails only its own rows.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import numpy as np
import torch

#: ember is measured against these; "best peer" in the tables is the fastest of them.
PEERS = ("eager", "inductor", "inductor-max", "ort", "iree", "openvino")
#: The target ember's rows compile for (run_all.py --ember-target), handed to each worker.
EMBER_TARGET_VARIABLE = "EMBER_BENCH_TARGET"
#: The int8 rows: ember-int8 is measured against these (each peer's own int8 recipe).
INT8_PEERS = ("eager-int8", "inductor-int8", "ort-int8", "openvino-int8")
#: The weight-only rows' peers ("*-w8", "*-w4"): ONNX Runtime's MatMulNBits and OpenVINO's NNCF
#: weight compression.
WEIGHT_ONLY_PEERS = ("ort-w8", "ort-w4", "openvino-w8", "openvino-w4")
#: The peers of a 16-bit row ("*-bf16", "*-fp16"): PyTorch eager in that dtype.
SIXTEEN_BIT_PEERS = ("eager-bf16", "eager-fp16")

#: IREE's llvm-cpu recipe for fast GEMMs: target this CPU, data tiling (packed layouts) and
#: micro-kernels. Measured here, data tiling made the MLP ~25% faster than IREE's defaults.
IREE_FLAGS = ["--iree-llvmcpu-target-cpu=host", "--iree-opt-data-tiling",
              "--iree-llvmcpu-enable-ukernels=all"]


@dataclass
class Prepared:
    step: Callable[[], object]
    info: Dict[str, object] = field(default_factory=dict)
    #: Quantized: the cross-check against eager is by cosine similarity (worker.py), not by
    #: the fp32 tolerance.
    quantized: bool = False


# -- PyTorch -----------------------------------------------------------------------------------

def prepare_eager(model, inputs, threads, workdir) -> Prepared:
    """PyTorch eager under no_grad: the baseline every ratio is taken against."""
    torch.set_num_threads(threads)

    def step():
        with torch.no_grad():
            return model(*inputs)
    return Prepared(step, {"mkldnn": torch.backends.mkldnn.is_available()})


def prepare_eager_int8(model, inputs, threads, workdir) -> Prepared:
    """PyTorch's dynamic int8 quantization of every nn.Linear (torch.ao quantize_dynamic)."""
    torch.set_num_threads(threads)
    from torch.ao.quantization import quantize_dynamic
    quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    def step():
        with torch.no_grad():
            return quantized(*inputs)
    return Prepared(step, {"engine": torch.backends.quantized.engine}, quantized=True)


def prepare_inductor_int8(model, inputs, threads, workdir) -> Prepared:
    """PyTorch's own static int8 path: PT2E with X86InductorQuantizer (calibrated on the
    benchmark inputs), then torch.compile with freezing, which lowers the quantized patterns
    to oneDNN's int8 convolutions and linears."""
    torch.set_num_threads(threads)
    import torch._inductor.config as config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, tuple(inputs)).module(), quantizer)
        prepared(*inputs)
        converted = convert_pt2e(prepared)
    config.freezing = True
    compiled = torch.compile(converted)

    def step():
        with torch.no_grad():
            return compiled(*inputs)
    step()
    return Prepared(step, {"quantizer": "X86InductorQuantizer"}, quantized=True)


def _inductor(mode, freezing):
    def prepare(model, inputs, threads, workdir) -> Prepared:
        """torch.compile with inductor; the first call (in prepare) compiles."""
        torch.set_num_threads(threads)
        import torch._inductor.config as config
        config.freezing = freezing  # weights become constants: lets inductor prepack them
        compiled = torch.compile(model, mode=mode)

        def step():
            with torch.no_grad():
                return compiled(*inputs)
        step()
        return Prepared(step, {"mode": mode or "default", "freezing": freezing})
    return prepare


# -- ONNX (shared by ONNX Runtime and IREE) ----------------------------------------------------

def export_onnx(model, inputs, path: str) -> Dict[str, object]:
    """Exports with the dynamo exporter (weights inlined, one file); falls back to the
    TorchScript exporter if that fails. Returns which exporter was used and why."""
    names = dict(input_names=[f"input{i}" for i in range(len(inputs))], output_names=["output"])
    try:
        torch.onnx.export(model, tuple(inputs), path, dynamo=True, external_data=False,
                          verbose=False, **names)
        return {"exporter": "dynamo"}
    except Exception as exc:  # noqa: BLE001 - any exporter failure falls back
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    torch.onnx.export(model, tuple(inputs), path, dynamo=False, opset_version=17, **names)
    return {"exporter": "torchscript", "dynamo_export_failed": reason}


def prepare_ort(model, inputs, threads, workdir) -> Prepared:
    """ONNX Runtime CPU, all graph optimizations, intra-op pool = threads, outputs bound to
    preallocated arrays through IOBinding."""
    import onnxruntime  # noqa: F401  (a missing runtime fails here, not after the export)
    torch.set_num_threads(threads)
    path = os.path.join(workdir, "model.onnx")
    info = export_onnx(model, inputs, path)
    return _ort_session(path, model, inputs, threads, info)


def prepare_ort_int8(model, inputs, threads, workdir) -> Prepared:
    """ONNX Runtime's dynamic int8 model (onnxruntime.quantization.quantize_dynamic, int8
    weights per channel) on the same session settings as `prepare_ort`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    torch.set_num_threads(threads)
    path, int8_path = (os.path.join(workdir, n) for n in ("model.onnx", "model.int8.onnx"))
    info = export_onnx(model, inputs, path)
    quantize_dynamic(path, int8_path, weight_type=QuantType.QInt8, per_channel=True)
    prepared = _ort_session(int8_path, model, inputs, threads, info)
    prepared.quantized = True
    return prepared


def _ort_weight_only(bits: int):
    def prepare(model, inputs, threads, workdir) -> Prepared:
        """ONNX Runtime's weight-only MatMul (MatMulNBitsQuantizer: MatMulNBits, blocks of 128
        along K, int4 asymmetric or int8 symmetric, ORT's default accuracy level) on the
        session settings of `prepare_ort`."""
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        import onnx
        torch.set_num_threads(threads)
        path, low_path = (os.path.join(workdir, n) for n in ("model.onnx", f"model.w{bits}.onnx"))
        info = export_onnx(model, inputs, path)
        quantizer = MatMulNBitsQuantizer(onnx.load(path), bits=bits, block_size=128,
                                         is_symmetric=bits == 8)
        quantizer.process()
        quantizer.model.save_model_to_file(low_path, use_external_data_format=False)
        prepared = _ort_session(low_path, model, inputs, threads, info)
        prepared.quantized = True
        return prepared
    return prepare


def _ort_session(path, model, inputs, threads, info) -> Prepared:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    arrays = [t.numpy() for t in inputs]
    with torch.no_grad():
        shapes = [o.shape for o in _as_list(model(*inputs))]
    outputs = [np.empty(shape, np.float32) for shape in shapes]
    binding = session.io_binding()
    for meta, array in zip(session.get_inputs(), arrays):
        binding.bind_cpu_input(meta.name, array)
    for meta, array in zip(session.get_outputs(), outputs):
        binding.bind_output(meta.name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)

    def step():
        session.run_with_iobinding(binding)
        return outputs
    info["providers"] = session.get_providers()
    return Prepared(step, info)


def prepare_iree(model, inputs, threads, workdir) -> Prepared:
    """IREE llvm-cpu: torch -> ONNX -> iree-import-onnx -> iree-compile (IREE_FLAGS).
    One thread runs on the local-sync driver (inline on the caller, IREE's single-thread
    mode); more run on local-task with that many worker groups. Inputs are put on the device
    once; each call returns IREE-allocated outputs."""
    import iree.compiler as compiler
    import iree.runtime as rt
    onnx_path, mlir_path = (os.path.join(workdir, name) for name in ("model.onnx", "model.mlir"))
    info = export_onnx(model, inputs, onnx_path)
    subprocess.run([sys.executable, "-m", "iree.compiler.tools.import_onnx", onnx_path,
                    "-o", mlir_path], check=True, capture_output=True, text=True)
    vmfb = compiler.compile_file(mlir_path, target_backends=["llvm-cpu"], extra_args=IREE_FLAGS)
    if threads == 1:
        driver = "local-sync"
    else:
        driver = "local-task"
        rt.flags.parse_flags(f"--task_topology_group_count={threads}")
    config = rt.Config(driver)
    context = rt.SystemContext(config=config)
    context.add_vm_module(rt.VmModule.copy_buffer(context.instance, vmfb))
    function = context.modules.module["main_graph"]
    device_inputs = [rt.asdevicearray(config.device, t.numpy()) for t in inputs]

    def step():
        return function(*device_inputs)
    info.update(driver=driver, flags=IREE_FLAGS)
    return Prepared(step, info)


# -- OpenVINO ----------------------------------------------------------------------------------

def _openvino(int8: bool, weight_bits: int = 0):
    def prepare(model, inputs, threads, workdir) -> Prepared:
        """OpenVINO CPU from the torch model (openvino.convert_model), compiled for latency
        with `threads` inference threads; int8: NNCF's post-training quantization
        (nncf.quantize, calibrated on the benchmark inputs); weight_bits 8 or 4: NNCF's
        weight compression (nncf.compress_weights: INT8_ASYM per channel, INT4_ASYM groups of
        128, every Linear), OpenVINO's LLM recipe."""
        import openvino as ov
        torch.set_num_threads(threads)
        ov_model = ov.convert_model(model, example_input=tuple(inputs))
        info = {"version": ov.__version__}
        if int8:
            import nncf
            arrays = [t.numpy() for t in inputs]
            ov_model = nncf.quantize(ov_model, nncf.Dataset([arrays]), subset_size=1)
            info["nncf"] = nncf.__version__
        if weight_bits:
            import nncf
            mode = nncf.CompressWeightsMode.INT8_ASYM if weight_bits == 8 else \
                nncf.CompressWeightsMode.INT4_ASYM
            ov_model = nncf.compress_weights(ov_model, mode=mode, ratio=1.0,
                                             **({} if weight_bits == 8 else
                                                {"group_size": 128}))
            info["nncf"] = nncf.__version__
        compiled = ov.Core().compile_model(ov_model, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        arrays = [t.numpy() for t in inputs]

        def step():
            request.infer(arrays, share_inputs=True)
            return [request.get_output_tensor(i).data for i in range(len(compiled.outputs))]
        return Prepared(step, info, quantized=int8 or bool(weight_bits))
    return prepare


# -- ember -------------------------------------------------------------------------------------

def _ember(quantize):
    def prepare(model, inputs, threads, workdir) -> Prepared:
        """ember.compile for the static input shapes (int8 "dynamic": dynamic quantization of
        every Linear; "static": every Linear and Conv2d, calibrated on the benchmark inputs as
        the peers' static recipes are; "w8"/"w4": weight-only int8 (symmetric, groups of 128)
        or int4 (asymmetric, groups of 128) Linear weights), then the artifact reloaded with
        `num_threads`; each call is `runtime.run` into preallocated torch outputs."""
        import ember.quant
        scheme = None if not quantize else ember.quant.Int8() if quantize == "dynamic" else \
            ember.quant.WeightOnly(bits=int(quantize[1]), group_size=128) \
            if quantize in ("w8", "w4") else \
            ember.quant.Int8(mode="static", calibration=[tuple(inputs)])
        return _prepare_ember(model, inputs, threads, workdir, scheme)
    return prepare


def _prepare_ember(model, inputs, threads, workdir, quantize, precision=None) -> Prepared:
    import ember
    from ember.runtime import Model
    compiled = ember.compile(model, tuple(inputs), quantize=quantize or None, precision=precision,
                             target=os.environ.get(EMBER_TARGET_VARIABLE, "host"),
                             workdir=os.path.join(workdir, "ember-artifact"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime = Model(compiled.artifact_dir, num_threads=threads)
    outputs = [torch.empty(runtime.get_output_maximum_shape(i),
                           dtype=getattr(torch, runtime.get_output_dtype(i)))
               for i in range(len(runtime.get_output_names()))]
    inputs = list(inputs)

    def step():
        runtime.run(inputs, outputs)
        return outputs
    info = {"compile_timings": compiled.compile_timings,
            "threads_hook": not any("num_threads" in str(w.message) for w in caught)}
    if not info["threads_hook"]:
        info["note"] = "the artifact exports no thread-count hook: num_threads is ignored"
    return Prepared(step, info, quantized=bool(quantize))


def _in_dtype(prepare, dtype):
    """`prepare` run on a copy of the model and inputs converted to `dtype` (model.half(),
    model.to(torch.bfloat16)); its outputs are cross-checked against fp32 eager by cosine."""
    def prepare16(model, inputs, threads, workdir) -> Prepared:
        converted = copy.deepcopy(model).to(dtype)
        prepared = prepare(converted, [x.to(dtype) if x.is_floating_point() else x
                                       for x in inputs], threads, workdir)
        prepared.quantized = True
        return prepared
    return prepare16


def _ember_implicit(precision: str):
    def prepare(model, inputs, threads, workdir) -> Prepared:
        """ember.compile(precision=...): the fp32 model's Linear weights stored in 16 bits,
        activations and sums f32."""
        prepared = _prepare_ember(model, inputs, threads, workdir, None, precision=precision)
        prepared.quantized = True
        return prepared
    return prepare


#: backend name -> adapter. Order is the order of rows in the tables.
BACKENDS = {
    "eager": prepare_eager,
    "inductor": _inductor(None, freezing=False),
    "inductor-max": _inductor("max-autotune-no-cudagraphs", freezing=True),
    "ort": prepare_ort,
    "iree": prepare_iree,
    "openvino": _openvino(int8=False),
    "ember": _ember(quantize=None),
    "eager-int8": prepare_eager_int8,
    "inductor-int8": prepare_inductor_int8,
    "ort-int8": prepare_ort_int8,
    "openvino-int8": _openvino(int8=True),
    "ember-int8": _ember(quantize="dynamic"),
    "ember-int8-static": _ember(quantize="static"),
    "eager-bf16": _in_dtype(prepare_eager, torch.bfloat16),
    "ember-bf16": _in_dtype(_ember(quantize=None), torch.bfloat16),
    "eager-fp16": _in_dtype(prepare_eager, torch.float16),
    "ember-fp16": _in_dtype(_ember(quantize=None), torch.float16),
    "ember-implicit-bf16": _ember_implicit("bf16"),
    "ort-w8": _ort_weight_only(8),
    "ort-w4": _ort_weight_only(4),
    "openvino-w8": _openvino(int8=False, weight_bits=8),
    "openvino-w4": _openvino(int8=False, weight_bits=4),
    "ember-w8": _ember(quantize="w8"),
    "ember-w4": _ember(quantize="w4"),
}


# -- outputs -----------------------------------------------------------------------------------

def _as_list(result) -> List[object]:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def to_numpy(result) -> List[np.ndarray]:
    """A backend's outputs as float32 numpy arrays (for the cross-check, never timed)."""
    arrays = []
    for value in _as_list(result):
        if isinstance(value, torch.Tensor):
            value = value.detach().float().numpy()
        elif hasattr(value, "to_host"):  # an IREE DeviceArray
            value = value.to_host()
        arrays.append(np.asarray(value, dtype=np.float32))
    return arrays
