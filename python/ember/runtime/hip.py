"""The ROCm backend: GPU artifacts of target kind "rocm", run through HIP's module API.

UNTESTED ON AMD HARDWARE: no AMD GPU was available while it was written. Everything but the
driver calls is the CUDA backend's code (gpu.py), which is tested; the calls below follow the
HIP runtime headers (hip_runtime_api.h) and are exercised only by the CPU tests' fakes. Expect
to debug them on the first real device.

The driver is `libamdhip64.so` through ctypes (no Python package needed): hipModuleLoadData on
the artifact's HSACO, hipModuleGetFunction, hipMalloc, hipMemcpyHtoDAsync / DtoHAsync,
hipModuleLaunchKernel, streams, events, and HIP's graph API for graph mode. ROCm builds of
PyTorch call their devices "cuda", so torch tensors and `torch.cuda.current_stream()` work as
they do with the CUDA backend.
"""
from __future__ import annotations

import ctypes
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint, c_ulonglong, c_void_p
from typing import Sequence

from ember.runtime.gpu import Driver, DriverError, GpuBackend, driver_call

LIBRARY = "libamdhip64.so"
_THREAD_LOCAL_CAPTURE = 1  # hipStreamCaptureModeThreadLocal
_NON_BLOCKING = 1          # hipStreamNonBlocking
_DISABLE_TIMING = 2        # hipEventDisableTiming
_OUT = POINTER(c_void_p)
_U = c_uint


class _Dim3(ctypes.Structure):
    _fields_ = [("x", c_uint), ("y", c_uint), ("z", c_uint)]


class _KernelNodeParams(ctypes.Structure):
    """hipKernelNodeParams, in the header's field order (it differs from CUDA's)."""
    _fields_ = [("blockDim", _Dim3), ("extra", c_void_p), ("func", c_void_p),
                ("gridDim", _Dim3), ("kernelParams", c_void_p), ("sharedMemBytes", c_uint)]


#: The HIP functions used and their parameter types (each returns a hipError_t).
SIGNATURES = {
    "hipInit": [_U], "hipSetDevice": [c_int], "hipDeviceGetName": [c_char_p, c_int, c_int],
    "hipModuleLoadData": [_OUT, c_void_p], "hipModuleUnload": [c_void_p],
    "hipModuleGetFunction": [_OUT, c_void_p, c_char_p],
    "hipMalloc": [_OUT, c_size_t], "hipFree": [c_void_p],
    "hipMemcpyHtoDAsync": [c_void_p, c_void_p, c_size_t, c_void_p],
    "hipMemcpyDtoHAsync": [c_void_p, c_void_p, c_size_t, c_void_p],
    "hipStreamCreateWithFlags": [_OUT, _U], "hipStreamDestroy": [c_void_p],
    "hipStreamSynchronize": [c_void_p], "hipDeviceSynchronize": [],
    "hipEventCreateWithFlags": [_OUT, _U], "hipEventDestroy": [c_void_p],
    "hipEventRecord": [c_void_p, c_void_p], "hipStreamWaitEvent": [c_void_p, c_void_p, _U],
    "hipModuleLaunchKernel": [c_void_p, _U, _U, _U, _U, _U, _U, _U, c_void_p, c_void_p,
                              c_void_p],
    "hipStreamBeginCapture": [c_void_p, c_int], "hipStreamEndCapture": [c_void_p, _OUT],
    "hipGraphInstantiateWithFlags": [_OUT, c_void_p, c_ulonglong],
    "hipGraphGetRootNodes": [c_void_p, _OUT, POINTER(c_size_t)],
    "hipGraphNodeGetDependentNodes": [c_void_p, _OUT, POINTER(c_size_t)],
    "hipGraphExecKernelNodeSetParams": [c_void_p, c_void_p, POINTER(_KernelNodeParams)],
    "hipGraphLaunch": [c_void_p, c_void_p], "hipGraphDestroy": [c_void_p],
    "hipGraphExecDestroy": [c_void_p],
}


class HipDriver(Driver):
    """The driver calls of the GPU backends (gpu.py's protocol) on HIP. Handles are ints."""

    def __init__(self, ordinal: int):
        try:
            self.lib = ctypes.CDLL(LIBRARY)
        except OSError as exc:
            raise DriverError(f"running ROCm models needs ROCm's HIP runtime ({LIBRARY}): "
                              f"{exc}") from None
        for name, argtypes in SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.argtypes, fn.restype = argtypes, c_int
        self.lib.hipGetErrorName.argtypes, self.lib.hipGetErrorName.restype = [c_int], c_char_p
        self.ordinal = ordinal
        try:
            self._call("hipInit", 0)
            self.activate()
        except DriverError as exc:
            raise DriverError(f"no usable ROCm device: {exc}") from None

    def _call(self, name: str, *args):
        """Calls HIP function `name`; DriverError on a failure. A handle out-parameter the
        caller leaves out (one argument short) is made here and returned."""
        argtypes = SIGNATURES[name]
        handle = None
        if len(args) == len(argtypes) - 1 and _OUT in argtypes:
            handle, at = c_void_p(), argtypes.index(_OUT)
            args = (*args[:at], ctypes.byref(handle), *args[at:])
        status = getattr(self.lib, name)(*args)
        if status:
            text = self.lib.hipGetErrorName(status) or b"unknown error"
            raise DriverError(f"{name} failed: {text.decode()} ({status})")
        return None if handle is None else handle.value or 0

    def describe(self) -> str:
        name = ctypes.create_string_buffer(256)
        self._call("hipDeviceGetName", name, len(name), self.ordinal)
        return name.value.decode()

    def activate(self) -> None:
        self._call("hipSetDevice", self.ordinal)

    def load_module(self, image: bytes) -> int:
        return self._call("hipModuleLoadData", ctypes.create_string_buffer(image, len(image)))

    def get_function(self, module: int, name: str) -> int:
        return self._call("hipModuleGetFunction", module, name.encode())

    def launch(self, function: int, grid: Sequence[int], block: Sequence[int],
               shared_bytes: int, stream: int, params: int) -> None:
        self._call("hipModuleLaunchKernel", function, *grid, *block, shared_bytes, stream,
                   params, None)

    def graph_root_nodes(self, graph: int) -> list:
        return self._nodes("hipGraphGetRootNodes", graph)

    def graph_dependent_nodes(self, node: int) -> list:
        return self._nodes("hipGraphNodeGetDependentNodes", node)

    def _nodes(self, name: str, handle: int) -> list:
        """A node list query: first the count, then the nodes."""
        count = c_size_t(0)
        self._call(name, handle, None, ctypes.byref(count))
        nodes = (c_void_p * count.value)()
        if count.value:
            self._call(name, handle, nodes, ctypes.byref(count))
        return [n or 0 for n in nodes[:count.value]]

    def set_kernel_node_params(self, graph_exec: int, node: int, function: int,
                               grid: Sequence[int], block: Sequence[int], shared_bytes: int,
                               params: int) -> None:
        p = _KernelNodeParams(blockDim=_Dim3(*block), extra=None, func=function,
                              gridDim=_Dim3(*grid), kernelParams=params,
                              sharedMemBytes=shared_bytes)
        self._call("hipGraphExecKernelNodeSetParams", graph_exec, node, ctypes.byref(p))

    unload_module = driver_call("hipModuleUnload")
    malloc = driver_call("hipMalloc")
    free = driver_call("hipFree")
    copy_htod = driver_call("hipMemcpyHtoDAsync")
    copy_dtoh = driver_call("hipMemcpyDtoHAsync")
    create_stream = driver_call("hipStreamCreateWithFlags", _NON_BLOCKING)
    destroy_stream = driver_call("hipStreamDestroy")
    synchronize = driver_call("hipStreamSynchronize")
    synchronize_device = driver_call("hipDeviceSynchronize")
    create_event = driver_call("hipEventCreateWithFlags", _DISABLE_TIMING)
    destroy_event = driver_call("hipEventDestroy")
    record_event = driver_call("hipEventRecord")
    wait_event = driver_call("hipStreamWaitEvent", 0)
    begin_capture = driver_call("hipStreamBeginCapture", _THREAD_LOCAL_CAPTURE)
    end_capture = driver_call("hipStreamEndCapture")
    instantiate = driver_call("hipGraphInstantiateWithFlags", 0)
    launch_graph = driver_call("hipGraphLaunch")
    destroy_graph = driver_call("hipGraphDestroy")
    destroy_graph_exec = driver_call("hipGraphExecDestroy")


class HipBackend(GpuBackend):
    """GPU artifacts for AMD GPUs: `code.rocm` = {"module": HSACO, "plan": launch plan,
    "abi": "ember-gpu-plan-v1"}. Untested on AMD hardware (see the module docstring)."""

    kind = "rocm"
    Driver = HipDriver
