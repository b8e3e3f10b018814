"""The CUDA backend: GPU artifacts of target kind "cuda", run through the CUDA driver API.

Everything but the driver calls is shared with ROCm (gpu.py); this module is the driver: the
`cuda-bindings` package's `cuda.bindings.driver` (`pip install 'ember[gpu]'`), imported only
when a CUDA model loads. It uses the device's primary context, the one PyTorch uses, so torch
tensors' pointers and streams are valid here. A cubin (`code.cuda.module`) that does not load
on this GPU falls back to the artifact's PTX (`code.cuda.ptx`), which the driver JIT-compiles.
"""
from __future__ import annotations

from typing import Sequence

from ember.runtime.gpu import Driver, DriverError, GpuBackend, driver_call

_THREAD_LOCAL_CAPTURE = 1  # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
_NON_BLOCKING = 1          # CU_STREAM_NON_BLOCKING: no implicit sync with the legacy stream
_DISABLE_TIMING = 2        # CU_EVENT_DISABLE_TIMING: the cheapest event to wait on


class CudaDriver(Driver):
    """The driver calls of the GPU backends (gpu.py's protocol) on the CUDA driver API."""

    def __init__(self, ordinal: int):
        try:
            from cuda.bindings import driver as cu
        except ImportError:
            raise DriverError("running CUDA models needs the cuda-bindings package: "
                              "pip install 'ember[gpu]'") from None
        self.cu, self.ordinal = cu, ordinal
        try:  # the bindings raise their own error when libcuda.so itself is missing
            self._call("cuInit", 0)
        except Exception as exc:
            raise DriverError(f"no usable CUDA driver or device: {exc}") from None
        self.device = self._call("cuDeviceGet", ordinal)
        self.context = self._call("cuDevicePrimaryCtxRetain", self.device)

    def _call(self, name: str, *args):
        """`cu.name(*args)`'s results after its status; DriverError on a failure."""
        err, *results = getattr(self.cu, name)(*args)
        success = self.cu.CUresult.CUDA_SUCCESS
        if err != success:
            status, text = self.cu.cuGetErrorName(err)
            raise DriverError(f"{name} failed: {text.decode() if status == success else err} "
                              f"({int(err)})")
        return results[0] if len(results) == 1 else tuple(results)

    def describe(self) -> str:
        name = self._call("cuDeviceGetName", 256, self.device).split(b"\0")[0].decode()
        attribute = self.cu.CUdevice_attribute
        major, minor = (self._call("cuDeviceGetAttribute", getattr(
            attribute, f"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{part}"), self.device)
            for part in ("MAJOR", "MINOR"))
        return f"{name} (sm_{major}{minor})"

    def activate(self) -> None:
        self._call("cuCtxSetCurrent", self.context)

    def get_function(self, module, name: str):
        return self._call("cuModuleGetFunction", module, name.encode())

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cuMemAlloc", nbytes))

    def create_stream(self) -> int:
        return int(self._call("cuStreamCreate", _NON_BLOCKING))

    def launch(self, function, grid: Sequence[int], block: Sequence[int], shared_bytes: int,
               stream: int, params: int) -> None:
        self._call("cuLaunchKernel", function, *grid, *block, shared_bytes, stream, params, 0)

    def begin_capture(self, stream: int) -> None:
        self._call("cuStreamBeginCapture", stream,
                   self.cu.CUstreamCaptureMode(_THREAD_LOCAL_CAPTURE))

    def graph_root_nodes(self, graph) -> list:
        return self._nodes("cuGraphGetRootNodes", graph)

    def graph_dependent_nodes(self, node) -> list:
        return self._nodes("cuGraphNodeGetDependentNodes", node)

    def _nodes(self, name: str, handle) -> list:
        """A node list query: first the count, then the nodes (the first result)."""
        count = self._call(name, handle, 0)[-1]
        return list(self._call(name, handle, count)[0])[:count] if count else []

    def set_kernel_node_params(self, graph_exec, node, function, grid: Sequence[int],
                               block: Sequence[int], shared_bytes: int, params: int) -> None:
        p = self.cu.CUDA_KERNEL_NODE_PARAMS()
        p.func, p.sharedMemBytes, p.kernelParams = function, shared_bytes, params
        p.gridDimX, p.gridDimY, p.gridDimZ = grid
        p.blockDimX, p.blockDimY, p.blockDimZ = block
        self._call("cuGraphExecKernelNodeSetParams", graph_exec, node, p)

    load_module = driver_call("cuModuleLoadData")
    unload_module = driver_call("cuModuleUnload")
    free = driver_call("cuMemFree")
    copy_htod = driver_call("cuMemcpyHtoDAsync")
    copy_dtoh = driver_call("cuMemcpyDtoHAsync")
    destroy_stream = driver_call("cuStreamDestroy")
    synchronize = driver_call("cuStreamSynchronize")
    synchronize_device = driver_call("cuCtxSynchronize")
    create_event = driver_call("cuEventCreate", _DISABLE_TIMING)
    destroy_event = driver_call("cuEventDestroy")
    record_event = driver_call("cuEventRecord")
    wait_event = driver_call("cuStreamWaitEvent", 0)
    end_capture = driver_call("cuStreamEndCapture")
    instantiate = driver_call("cuGraphInstantiate", 0)
    launch_graph = driver_call("cuGraphLaunch")
    destroy_graph = driver_call("cuGraphDestroy")
    destroy_graph_exec = driver_call("cuGraphExecDestroy")


class CudaBackend(GpuBackend):
    """GPU artifacts for NVIDIA GPUs: `code.cuda` = {"module": cubin or PTX, "ptx": PTX,
    "plan": launch plan, "abi": "ember-gpu-plan-v1"}."""

    kind = "cuda"
    Driver = CudaDriver
    fallback_modules = ("ptx",)
