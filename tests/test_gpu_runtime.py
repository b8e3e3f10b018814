"""The GPU runtime backends (runtime/gpu.py, cuda.py, hip.py) and the launch plan (gpu_plan.py).

Most tests run anywhere: a fake driver (FakeDriver below) stands in for CUDA/HIP. Its "device
memory" is host memory, its streams run work at once, and it executes the one kernel the
hand-written artifacts launch, `axpy(out, x, c, alpha: f32, n: i32)`: out = alpha * x + c. Its
graphs copy the argument values at capture, as real graphs do, so a runtime that failed to
update a graph's nodes when pointers change computes a wrong result, not just a wrong count.

The model: x: float32[8] -> t = 2x + c (workspace) -> y = 0.5t + c = x + 1.5c.

The tests marked `gpu` compile the MLP block for target "cuda" and compare with PyTorch on the
GPU; they skip when no CUDA device is usable or the compiler has no cuda target.
"""
import collections
import copy
import ctypes
import json
import re
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from compare import assert_close
from ember.artifact.store import ArtifactError, write_artifact
from ember.runtime import ArgumentError, ArgumentTypeError, Model, UnboundConstantError
from ember.runtime.backends import open_backend
from ember.runtime.cuda import CudaBackend, CudaDriver
from ember.runtime.gpu import DriverError
from ember.runtime.gpu_plan import PackedArguments, parse_plan
from ember.runtime.hip import HipBackend, HipDriver
from ember.runtime.tensors import Buffer

torch = pytest.importorskip("torch")

N = 8
C = np.linspace(-1, 1, N, dtype=np.float32)
SIGNATURES = {"axpy": ("ptr", "ptr", "ptr", "f32", "i32")}
CELL_TYPES = {"ptr": ctypes.c_uint64, "f32": ctypes.c_float, "i32": ctypes.c_int32}


# -- the fake driver --------------------------------------------------------------------------

class FakeDevice:
    def __init__(self, index):
        self.type, self.index = "cuda", index

    def __str__(self):
        return f"cuda:{self.index}"


class FakeDeviceTensor:
    """Stands in for a torch CUDA tensor: memory the fake device can address, and a device."""

    def __init__(self, array, index=0):
        self.array, self.device = array, FakeDevice(index)

    def buffer(self):
        return Buffer(self.array.ctypes.data, self.array.shape, self)


class FakeDriver:
    ordinal = 0
    caller = 0xCA11  # the stream torch would hand out
    refuse_images = ()  # module images whose load fails

    def __init__(self, ordinal=0):
        self.counts = collections.Counter()
        self.log = []          # (call, details...) in order
        self.memory = {}
        self.images = []
        self.capturing = {}
        self.executed = []     # (function, args) of each kernel run outside a graph
        self._ids = iter(range(1, 1 << 30))

    def _note(self, call, *details):
        self.counts[call] += 1
        self.log.append((call, *details))

    def describe(self):
        return "fake GPU"

    def activate(self):
        pass

    def caller_stream(self):
        return self.caller

    def load_module(self, image):
        self._note("load_module")
        if image.startswith(self.refuse_images):
            raise DriverError("cuModuleLoadData failed: CUDA_ERROR_NO_BINARY_FOR_GPU (209)")
        self.images.append(image)
        return "module"

    def unload_module(self, module):
        pass

    def get_function(self, module, name):
        self._note("get_function", name)
        if name not in SIGNATURES:
            raise DriverError("cuModuleGetFunction failed: CUDA_ERROR_NOT_FOUND (500)")
        return name

    def malloc(self, nbytes):
        self._note("malloc", nbytes)
        memory = ctypes.create_string_buffer(nbytes)
        self.memory[ctypes.addressof(memory)] = memory
        return ctypes.addressof(memory)

    def free(self, ptr):
        del self.memory[ptr]

    def copy_htod(self, dst, src, nbytes, stream):
        self._note("copy_htod", stream)
        ctypes.memmove(dst, src, nbytes)

    def copy_dtoh(self, dst, src, nbytes, stream):
        self._note("copy_dtoh", stream)
        ctypes.memmove(dst, src, nbytes)

    def create_stream(self):
        return next(self._ids)

    def destroy_stream(self, stream):
        pass

    def synchronize(self, stream):
        self._note("synchronize", stream)

    def synchronize_device(self):
        pass

    def create_event(self):
        return next(self._ids)

    def destroy_event(self, event):
        pass

    def record_event(self, event, stream):
        self._note("record_event", stream)

    def wait_event(self, stream, event):
        self._note("wait_event", stream)

    def launch(self, function, grid, block, shared_bytes, stream, params):
        self._note("launch", stream)
        node = (function, _decode(function, params))
        if stream in self.capturing:
            self.capturing[stream].append(node)
        else:
            self.executed.append(node)
            _execute(*node)

    def begin_capture(self, stream):
        self._note("begin_capture", stream)
        self.capturing[stream] = []

    def end_capture(self, stream):
        return self.capturing.pop(stream)

    def instantiate(self, graph):
        self._note("instantiate")
        return list(graph)  # the executable graph: its own copy of the nodes' values

    def graph_root_nodes(self, graph):
        return [0] if graph else []

    def graph_dependent_nodes(self, node):
        return [node + 1] if node + 1 < 2 else []  # the test plans launch twice

    def set_kernel_node_params(self, graph_exec, node, function, grid, block, shared, params):
        self._note("set_kernel_node_params", node)
        graph_exec[node] = (function, _decode(function, params))

    def launch_graph(self, graph_exec, stream):
        self._note("launch_graph", stream)
        for node in graph_exec:
            _execute(*node)

    def destroy_graph(self, graph):
        pass

    def destroy_graph_exec(self, graph_exec):
        pass

    def streams(self, call):
        return [entry[1] for entry in self.log if entry[0] == call]


def _decode(function, params):
    """The argument values a launch's kernelParams point to, as the kernel would see them."""
    kinds = SIGNATURES[function]
    addresses = (ctypes.c_void_p * len(kinds)).from_address(params)
    return tuple(CELL_TYPES[k].from_address(a).value for k, a in zip(kinds, addresses))


def _execute(function, args):
    out, x, c, alpha, n = args
    view = lambda ptr: np.ctypeslib.as_array((ctypes.c_float * n).from_address(ptr))
    view(out)[:] = alpha * view(x) + view(c)


# -- artifacts ----------------------------------------------------------------------------------

def plan_json(**changes):
    plan = {"abi": "ember-gpu-plan-v1", "workspace_bytes": 256,
            "buffers": {"x": {"kind": "input", "index": 0}, "c": {"kind": "constant", "index": 0},
                        "y": {"kind": "output", "index": 0},
                        "t": {"kind": "workspace", "offset": 0, "bytes": 4 * N}},
            "launches": [_axpy("t", "x", 2.0), _axpy("y", "t", 0.5)]}
    plan.update(changes)
    return plan


def _axpy(out, x, alpha):
    return {"kernel": "axpy", "grid": [1, 1, 1], "block": [N, 1, 1], "shared_bytes": 0,
            "args": [{"buffer": out}, {"buffer": x}, {"buffer": "c"}, {"f32": alpha},
                     {"i32": N}]}


def manifest_for(kind="cuda", bound=True):
    code = {"cuda": {"module": "kernels.cubin", "ptx": "kernels.ptx"},
            "rocm": {"module": "kernels.hsaco"}}[kind]
    return {"target": {"kind": kind, "arch": "sm_90" if kind == "cuda" else "gfx942"},
            "code": {kind: {**code, "plan": "launch_plan.json", "abi": "ember-gpu-plan-v1"}},
            "symbols": {}, "inputs": [{"name": "x", "dtype": "float32", "shape": [N]}],
            "constants": [{"name": "c", "dtype": "float32", "shape": [N], "bound": bound}],
            "outputs": [{"name": "y", "dtype": "float32", "shape": [N]}]}


def write_gpu_artifact(path, kind="cuda", bound=True, plan=None):
    manifest = manifest_for(kind, bound)
    files = {}
    for name, content in {"kernels.cubin": b"CUBIN", "kernels.ptx": b"// PTX",
                          "kernels.hsaco": b"HSACO",
                          "launch_plan.json": json.dumps(plan or plan_json()).encode()}.items():
        if name in manifest["code"][kind].values():
            (path / ("src-" + name)).write_bytes(content)
            files[name] = str(path / ("src-" + name))
    artifact = path / "model.ember"
    write_artifact(artifact, manifest=manifest, weights={"c": C} if bound else {}, files=files)
    return artifact


@pytest.fixture
def fake(monkeypatch):
    """Every GPU backend built in the test gets a FakeDriver; returns them in order."""
    drivers = []

    def make(ordinal):
        drivers.append(FakeDriver(ordinal))
        return drivers[-1]
    monkeypatch.setattr(CudaBackend, "Driver", staticmethod(make))
    monkeypatch.setattr(HipBackend, "Driver", staticmethod(make))
    return drivers


@pytest.fixture
def artifact(tmp_path):
    return write_gpu_artifact(tmp_path)


def inputs(seed):
    return np.random.default_rng(seed).standard_normal(N).astype(np.float32)


def host_buffer(array):
    return Buffer(array.ctypes.data, array.shape, array)


def model_output(x, c=C):
    """The model's y = 0.5 * (2x + c) + c, computed in the kernels' order."""
    return np.float32(0.5) * (np.float32(2) * x + c) + c


# -- the plan -----------------------------------------------------------------------------------

def _mutate(path, value):
    def change(plan):
        *keys, last = path
        target = plan
        for key in keys:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return change


DELETE = object()
PLAN_ERRORS = {
    "unknown buffer": (_mutate(["launches", 0, "args", 1], {"buffer": "nope"}),
                       "launch 0 (axpy) arg 1: unknown buffer 'nope'"),
    "misaligned offset": (_mutate(["buffers", "t", "offset"], 16), "does not fit"),
    "workspace overflow": (_mutate(["buffers", "t", "bytes"], 1024), "does not fit"),
    "negative offset": (_mutate(["buffers", "t", "offset"], -256), "offset >= 0"),
    "index out of range": (_mutate(["buffers", "x", "index"], 3), "input index 3 out of range"),
    "unknown kind": (_mutate(["buffers", "x", "kind"], "scratch"), "kind 'scratch' is not one"),
    "i32 overflow": (_mutate(["launches", 0, "args", 4], {"i32": 2 ** 31}), "not a valid i32"),
    "bool scalar": (_mutate(["launches", 0, "args", 3], {"f32": True}), "not a valid f32"),
    "unknown arg kind": (_mutate(["launches", 0, "args", 3], {"f64": 1.0}),
                         "unknown argument kind 'f64'"),
    "empty grid": (_mutate(["launches", 1, "grid"], [0, 1, 1]), "grid must be three positive"),
    "huge block": (_mutate(["launches", 1, "block"], [64, 32, 1]), "more than 1024 threads"),
    "missing field": (_mutate(["launches", 0, "shared_bytes"], DELETE),
                      "missing field 'shared_bytes'"),
    "wrong abi": (_mutate(["abi"], "ember-gpu-plan-v0"), "abi is 'ember-gpu-plan-v0'"),
    "no launches": (_mutate(["launches"], []), "launches must be a non-empty list"),
    "unwritten output": (_mutate(["buffers", "y"], {"kind": "workspace", "offset": 0,
                                                    "bytes": 32}),
                         "outputs ['y'] have no buffer"),
}


@pytest.mark.parametrize("case", sorted(PLAN_ERRORS))
def test_plan_errors(case):
    change, message = PLAN_ERRORS[case]
    plan = plan_json()
    change(plan)
    with pytest.raises(ArtifactError, match="launch plan: .*" + re.escape(message)):
        parse_plan(plan, manifest_for())


def test_plan_overlapping_live_workspace_buffers():
    plan = plan_json()
    plan["buffers"]["u"] = {"kind": "workspace", "offset": 0, "bytes": 4 * N}
    plan["launches"][1]["args"][1] = {"buffer": "u"}  # t and u live at once in launch 0..1
    plan["launches"][0]["args"][1] = {"buffer": "u"}
    with pytest.raises(ArtifactError, match="overlap while both are live"):
        parse_plan(plan, manifest_for())


def test_plan_needs_static_shapes():
    manifest = manifest_for()
    manifest["symbols"] = {"s0": {"min": 1, "max": 8}}
    with pytest.raises(ArtifactError, match="static shapes.*s0"):
        parse_plan(plan_json(), manifest)


def test_loading_gpu_plans_needs_no_mlir():
    """The runtime reads and checks plans with ember.artifact.launch_plan, never the compiler."""
    code = ("import sys, ember.runtime.gpu_plan, ember.runtime.cuda, ember.runtime.hip; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlir' "
            "or m.startswith('ember.backends')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_argument_packing_bytes():
    """kernelParams[i] points at exactly the bytes the kernel's i-th parameter is copied from."""
    plan = plan_json()
    plan["buffers"]["t"]["offset"] = 256
    plan["workspace_bytes"] = 512
    plan["launches"] = [{"kernel": "k", "grid": [1, 1, 1], "block": [1, 1, 1],
                         "shared_bytes": 0,
                         "args": [{"buffer": "t"}, {"i32": -7}, {"i64": 2 ** 40 + 3},
                                  {"f32": 1.5}, {"buffer": "x"}, {"buffer": "y"}]}]
    packed = PackedArguments(parse_plan(plan, manifest_for()), workspace=0x7000_0000)
    assert packed.bind({"input": [0xABC0], "constant": [0xC0], "output": [0xD0]}) == {0}
    expected = [struct.pack("<Q", 0x7000_0000 + 256), struct.pack("<i", -7),
                struct.pack("<q", 2 ** 40 + 3), struct.pack("<f", 1.5),
                struct.pack("<Q", 0xABC0), struct.pack("<Q", 0xD0)]
    assert len(packed.params) == 1  # one kernelParams array: the plan's one launch
    # kernelParams holds one address per argument of the launch: read the plan's six.
    params = (ctypes.c_void_p * len(expected)).from_address(packed.params[0])
    assert [ctypes.string_at(p, len(e)) for p, e in zip(params, expected)] == expected


def test_bind_reports_the_launches_whose_pointers_changed():
    packed = PackedArguments(parse_plan(plan_json(), manifest_for()), workspace=0x1000)
    pointers = {"input": [0x10], "constant": [0x20], "output": [0x30]}
    assert packed.bind(pointers) == {0, 1}
    assert packed.bind(pointers) == set()
    assert packed.bind({**pointers, "input": [0x11]}) == {0}   # x: launch 0 only
    assert packed.bind({**pointers, "output": [0x31]}) == {0, 1}  # x back, y changed
    assert packed.bind({**pointers, "output": [0x31], "constant": [0x21]}) == {0, 1}


# -- loading ------------------------------------------------------------------------------------

def test_missing_kernel_is_an_artifact_error(tmp_path, fake):
    plan = plan_json()
    plan["launches"][1]["kernel"] = "gemm_tile"
    with pytest.raises(ArtifactError, match="kernel 'gemm_tile', which kernels.cubin does "
                                            "not define.*CUDA_ERROR_NOT_FOUND"):
        Model(write_gpu_artifact(tmp_path, plan=plan))


def test_cubin_that_does_not_load_falls_back_to_ptx(artifact, fake, monkeypatch):
    monkeypatch.setattr(FakeDriver, "refuse_images", (b"CUBIN",))
    model = Model(artifact)
    assert fake[0].images == [b"// PTX\0"]  # NUL-terminated, as cuModuleLoadData wants PTX
    assert_close(model(inputs(0)), model_output(inputs(0)))


def test_no_loadable_module(artifact, fake, monkeypatch):
    monkeypatch.setattr(FakeDriver, "refuse_images", (b"CUBIN", b"// PTX"))
    with pytest.raises(ArtifactError, match=r"compiled for sm_90\) loads on fake GPU: "
                                            r"kernels.cubin: .*; kernels.ptx: "):
        Model(artifact)


def test_host_backend_rejects_graph_mode():
    with pytest.raises(ArgumentError, match="graph_mode applies to GPU artifacts"):
        open_backend("unused", {"target": {"kind": "host"}}, num_threads=None, graph_mode=True)


@pytest.mark.parametrize("kind, driver, message", [
    ("cuda", CudaDriver, "cuda-bindings|no usable CUDA driver"),
    ("rocm", HipDriver, "libamdhip64.so|no usable ROCm device"),
])
def test_without_a_driver_the_error_says_so(tmp_path, kind, driver, message):
    try:
        driver(0)
    except DriverError:
        pass
    else:
        pytest.skip(f"a {kind} device is usable here")
    with pytest.raises(DriverError, match=message):
        Model(write_gpu_artifact(tmp_path, kind=kind))


# -- running ------------------------------------------------------------------------------------

def test_numpy_run_allocates_once_and_shares_constants(artifact, fake):
    model = Model(artifact, num_runtimes=2)
    driver = fake[0]
    assert (driver.counts["load_module"], driver.counts["get_function"]) == (1, 1)
    assert driver.counts["malloc"] == 3  # the constant, and one workspace per runtime
    for seed in range(4):  # the pool hands out both runtimes
        assert_close(model(inputs(seed)), model_output(inputs(seed)))
    assert driver.counts["malloc"] == 7  # + staging for x and y, in each runtime, once
    out = np.empty(N, np.float32)
    for seed in range(4):
        assert model.run([inputs(seed)], [out]) == [(N,)]
        assert_close(out, model_output(inputs(seed)))
    assert driver.counts["malloc"] == 7
    assert len(driver.executed) == 16
    constants = {args[2] for _, args in driver.executed}
    workspaces = {args[0] for _, args in driver.executed[0::2]}
    assert len(constants) == 1 and len(workspaces) == 2  # shared, and one per runtime
    streams = set(driver.streams("launch"))
    assert len(streams) == 2 and FakeDriver.caller not in streams
    # numpy calls return with the outputs on the host (and loading waited for the constant)
    assert driver.counts["synchronize"] == 8 + 1


def test_graph_mode_captures_once_and_relaunches(artifact, fake):
    model = Model(artifact, graph_mode=True)
    driver = fake[0]
    for seed in range(5):
        assert_close(model(inputs(seed)), model_output(inputs(seed)))
    assert (driver.counts["begin_capture"], driver.counts["instantiate"]) == (1, 1)
    assert driver.counts["launch"] == 2 and driver.executed == []  # captured, never run alone
    assert driver.counts["launch_graph"] == 5
    assert driver.counts["set_kernel_node_params"] == 0  # numpy: staging pointers never move


def test_graph_nodes_follow_set_constant(tmp_path, fake):
    model = Model(write_gpu_artifact(tmp_path, bound=False), graph_mode=True)
    driver = fake[0]
    with pytest.raises(UnboundConstantError, match=r"constants \['c'\] are not bound"):
        model(inputs(0))
    for scale in (1.0, -3.0):
        model.set_constant("c", C * scale)
        assert_close(model(inputs(0)), model_output(inputs(0), C * scale))
    assert driver.counts["instantiate"] == 1
    assert driver.streams("set_kernel_node_params") == [0, 1]  # both launches read c


def test_torch_tensors_run_on_the_callers_stream_and_update_the_graph(artifact, fake):
    model = Model(artifact, graph_mode=True)
    driver = fake[0]
    runtime = model.backend.new_runtime()
    x1, x2, y = (FakeDeviceTensor(a) for a in (inputs(1), inputs(2), np.zeros(N, np.float32)))
    for x in (x1, x2):
        assert runtime.run([x.buffer()], [y.buffer()]) == [(N,)]
        assert_close(y.array, model_output(x.array))
    assert driver.streams("launch_graph") == [FakeDriver.caller] * 2
    assert driver.streams("set_kernel_node_params") == [0]  # x moved; only launch 0 reads x
    assert driver.counts["synchronize"] == driver.counts["copy_htod"] == 1  # c, at load
    assert driver.counts["wait_event"] == 0
    out = np.zeros(N, np.float32)
    runtime.run([host_buffer(inputs(3))], [host_buffer(out)])  # numpy: the runtime's stream,
    assert driver.streams("wait_event") == [runtime.stream]  # which waits for torch's first
    assert_close(out, model_output(inputs(3)))


def test_tensors_on_another_device_are_refused(artifact, fake):
    runtime = Model(artifact).backend.new_runtime()
    x = FakeDeviceTensor(inputs(0), index=1)
    with pytest.raises(ArgumentError, match=r"input 'x': the tensor is on cuda:1; this model "
                                            r"runs on cuda:0 \(fake GPU\)"):
        runtime.run([x.buffer()], [host_buffer(np.zeros(N, np.float32))])


def test_cpu_torch_tensor_passed_to_a_cuda_model(artifact, fake):
    model = Model(artifact)
    with pytest.raises(ArgumentError, match="input 'x': expected a tensor on device 'cuda', "
                                            "got one on 'cpu'"):
        model(torch.from_numpy(inputs(0)))


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros(4, np.float32), ArgumentError, "input 'x': dim 0 must be 8, got 4"),
    (np.zeros(N, np.float64), ArgumentTypeError, "expected dtype float32"),
])
def test_bad_inputs(artifact, fake, bad, error, message):
    with pytest.raises(error, match=message):
        Model(artifact)(bad)


def test_output_buffer_too_small(artifact, fake):
    with pytest.raises(ArgumentError, match=r"output 'y': the buffer of shape \[4\] is smaller"):
        Model(artifact).run([inputs(0)], [np.zeros(4, np.float32)])


def test_two_threads_on_a_pool_of_two(artifact, fake):
    model = Model(artifact, num_runtimes=2, graph_mode=True)

    def call(seed):
        assert_close(model(inputs(seed)), model_output(inputs(seed)))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(call, range(40)))
    assert fake[0].counts["instantiate"] <= 2


def test_rocm_backend_runs_the_same_plan(tmp_path, fake):
    model = Model(write_gpu_artifact(tmp_path, kind="rocm"), graph_mode=True)
    assert_close(model(inputs(0)), model_output(inputs(0)))
    assert fake[0].images == [b"HSACO"]


def test_gpu_models_default_to_one_runtime_and_ignore_num_threads(artifact, fake):
    with pytest.warns(RuntimeWarning, match="num_threads=4 is ignored by the cuda backend"):
        Model(artifact, num_threads=4)
    assert fake[-1].counts["malloc"] == 2  # the constant and one workspace


# -- on a real GPU ------------------------------------------------------------------------------

def _cuda_unusable_reason():
    """Why the end-to-end tests cannot run here, or None."""
    from ember.targets import TARGETS
    if "cuda" not in TARGETS:
        return "the compiler has no 'cuda' target yet (ember.backends.TARGETS)"
    if not torch.cuda.is_available():
        return "no CUDA device usable by torch (torch.cuda.is_available() is False)"
    try:
        CudaDriver(0)
    except DriverError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def mlp_on_gpu(mlp_block, tmp_path_factory):
    """The MLP block compiled for this GPU (fp32, batch 64): (artifact dir, torch reference
    module on the GPU)."""
    reason = _cuda_unusable_reason()
    if reason:
        pytest.skip(reason)
    import ember
    major, minor = torch.cuda.get_device_capability()
    arch = f"sm_{major}{minor}"
    from ember.targets import TARGETS
    target = f"cuda:arch={arch}" if arch in TARGETS["cuda"].archs else "cuda"
    workdir = str(tmp_path_factory.mktemp("gpu") / "mlp.ember")
    ember.compile(mlp_block, (torch.randn(64, 512),), target=target, workdir=workdir)
    return workdir, copy.deepcopy(mlp_block).cuda()  # (the fixture is shared: not moved)


#: fp32 GEMMs accumulate in another order than cuBLAS and may use TF32 tensor cores (10-bit
#: mantissas).
GPU_TOL = 1e-2


def _check(actual, x, reference):
    with torch.no_grad():
        assert_close(actual, reference(x), tol=GPU_TOL)


@pytest.mark.gpu
@pytest.mark.parametrize("graph_mode", [False, True])
def test_mlp_block_on_the_gpu(mlp_on_gpu, graph_mode):
    artifact, reference = mlp_on_gpu
    model = Model(artifact, graph_mode=graph_mode)
    for seed in range(3):  # new tensors each call: graph nodes are updated
        x = torch.randn(64, 512, generator=torch.Generator().manual_seed(seed)).cuda()
        out = torch.empty(64, 512, device="cuda")
        model.run_with_tensors([x], [out])
        _check(out, x, reference)
        _check(model(x), x, reference)
    x = np.random.default_rng(0).standard_normal((64, 512)).astype(np.float32)
    _check(torch.from_numpy(model(x)).cuda(), torch.from_numpy(x).cuda(), reference)


@pytest.mark.gpu
@pytest.mark.parametrize("graph_mode", [False, True])
def test_mlp_block_from_two_threads(mlp_on_gpu, graph_mode):
    artifact, reference = mlp_on_gpu
    model = Model(artifact, graph_mode=graph_mode, num_runtimes=2)

    def call(seed):
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            x = torch.randn(64, 512, generator=torch.Generator().manual_seed(seed)).cuda()
            out = model(x)
            with torch.no_grad():
                expected = reference(x)
        stream.synchronize()
        assert_close(out, expected, tol=GPU_TOL)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(call, range(16)))  # re-raises a worker's failure


@pytest.mark.gpu
def test_cpu_tensor_on_a_real_cuda_model(mlp_on_gpu):
    with pytest.raises(ArgumentError, match="expected a tensor on device 'cuda'"):
        Model(mlp_on_gpu[0])(torch.randn(64, 512))
