"""The artifact format and the runtime loader, on a hand-written C model (no compiler needed).

The model, with s0 in [1, 64]:
    inputs     x: float32[s0, 4], t: int64[s0]
    constants  c: float32[4] (bound), scale: float32[] (unbound)
    outputs    y = x + c + t[:, None] + BIAS   float32[s0, 4]
               z = x.flatten() * scale         float32[4*s0]
The C code checks the descriptors it receives (sizes and contiguous strides) and returns 2 if
they are wrong, and 3 when scale < 0 (a model-side failure). It is linked with the ember C
runtime and tables generated for its signature, as the compiler links every CPU artifact.
"""
import ctypes
import json
import os
import platform
import subprocess
import threading

import numpy as np
import pytest

from compare import assert_close
from ember.artifact.store import ArtifactError, read_manifest, write_artifact
from ember.runtime import (ArgumentError, ArgumentTypeError, ExecutionError, Model,
                           UnboundConstantError, load)
from ember.runtime.shapes import bind_symbols
from ember.tensor_spec import TensorSpec
from ember.symbolic import Dim, SymbolicError
from ember.backends.cpu.c_runtime import cc_args

torch = pytest.importorskip("torch")

C_SOURCE = r"""
#include <stdint.h>
#ifndef BIAS
#define BIAS 0.0f
#endif
#define DESC(T, R) struct { T *allocated, *aligned; int64_t offset, sizes[R], strides[R]; }
typedef DESC(float, 2) F2;
typedef DESC(float, 1) F1;
typedef DESC(int64_t, 1) I1;
typedef struct { float *allocated, *aligned; int64_t offset; } F0;

int32_t ember_test_threads = 1;
int32_t ember_set_num_threads(int32_t n) { ember_test_threads = n; return 0; }

int32_t ember_entry(void **args, int64_t *fault) {
  (void)fault;
  F2 *x = args[0]; I1 *t = args[1]; F1 *c = args[2]; F0 *scale = args[3];
  F2 *y = args[4]; F1 *z = args[5];
  int64_t n = x->sizes[0];
  if (x->sizes[1] != 4 || x->strides[0] != 4 || x->strides[1] != 1 || t->sizes[0] != n ||
      t->strides[0] != 1 || c->sizes[0] != 4 || y->sizes[0] != n || y->sizes[1] != 4 ||
      y->strides[0] != 4 || y->strides[1] != 1 || z->sizes[0] != 4 * n || z->strides[0] != 1)
    return 2;
  float s = scale->aligned[scale->offset];
  if (s < 0) return 3;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < 4; j++) {
      float v = x->aligned[x->offset + i * 4 + j];
      y->aligned[y->offset + i * 4 + j] = v + c->aligned[c->offset + j] +
                                          (float)t->aligned[t->offset + i] + BIAS;
      z->aligned[z->offset + i * 4 + j] = v * s;
    }
  return 0;
}
"""

C_CONST = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
MANIFEST = {
    "target": {"kind": "host", "triple": f"{platform.machine()}-unknown-linux-gnu"},
    "code": {"host": {"threads_symbol": "ember_set_num_threads"}},
    "symbols": {"s0": {"min": 1, "max": 64}},
    "inputs": [{"name": "x", "dtype": "float32", "shape": ["s0", 4]},
               {"name": "t", "dtype": "int64", "shape": ["s0"]}],
    "constants": [{"name": "c"}, {"name": "scale", "dtype": "float32", "shape": []}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": ["s0", 4]},
                {"name": "z", "dtype": "float32", "shape": ["4*s0"]}],
    "metadata": {"source": "test_runtime.py"},
}
#: MANIFEST's signature as the compiler knows it (constant c's dtype and shape come from its
#: array), for the C runtime's tables.
SIGNATURE = {**MANIFEST, "constants": [
    {"name": "c", "dtype": "float32", "shape": [4], "bound": True},
    {"name": "scale", "dtype": "float32", "shape": [], "bound": False}]}


@pytest.fixture(scope="session")
def libraries(tmp_path_factory):
    """Two builds of the C model: the plain one and one adding BIAS=100 to y."""
    d = tmp_path_factory.mktemp("lib")
    (d / "model.c").write_text(C_SOURCE)
    paths = {}
    for bias in (0, 100):
        paths[bias] = str(d / f"model{bias}.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", f"-DBIAS={bias}.0f", "-o",
                        paths[bias], str(d / "model.c"), *cc_args(SIGNATURE, str(d))],
                       check=True)
    return paths


def make_artifact(path, library, manifest=MANIFEST, weights=None):
    write_artifact(path, manifest=manifest, files={"model.so": library},
                   weights={"c": C_CONST} if weights is None else weights)
    return str(path)


@pytest.fixture
def artifact(tmp_path, libraries):
    return make_artifact(tmp_path / "art", libraries[0])


@pytest.fixture
def model(artifact):
    m = Model(artifact, num_runtimes=4)
    m.set_constant("scale", np.array(0.5, np.float32))
    return m


def inputs_of(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, 4)).astype(np.float32), np.arange(n, dtype=np.int64)]


def expected(x, t, scale=0.5, bias=0.0):
    return x + C_CONST + t[:, None].astype(np.float32) + bias, x.reshape(-1) * scale


def check(outputs, x, t, **kw):
    assert_close(outputs, expected(np.asarray(x), np.asarray(t), **kw))


# -- artifact format ----------------------------------------------------------------------

def test_manifest_round_trip(artifact):
    m = read_manifest(artifact)
    assert (m["format"], m["format_version"]) == ("ember-artifact", 1)
    assert m["ember_version"] and m["metadata"] == {"source": "test_runtime.py"}
    assert m["code"]["host"] == {"library": "model.so", "symbol": "ember_entry",
                                 "abi": "ember-c-runtime-v1",
                                 "threads_symbol": "ember_set_num_threads"}
    assert [o["max_shape"] for o in m["outputs"]] == [[64, 4], [256]]
    assert m["constants"] == [{"name": "c", "bound": True, "dtype": "float32", "shape": [4]},
                              {"name": "scale", "dtype": "float32", "shape": [], "bound": False}]
    assert set(m["files"]) == {"model.so", "weights.safetensors"}
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in m["files"].values())
    assert sorted(os.listdir(artifact)) == ["manifest.json", "model.so", "weights.safetensors"]


def test_tampered_and_missing_files(artifact):
    with open(os.path.join(artifact, "weights.safetensors"), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArtifactError, match=r"/weights.safetensors was modified.*sha256 is "
                                            r"[0-9a-f]{64}, the manifest expects [0-9a-f]{64}"):
        Model(artifact)
    read_manifest(artifact, verify=False)  # the schema itself is still fine
    os.remove(os.path.join(artifact, "model.so"))
    with pytest.raises(ArtifactError, match="'model.so' listed in the manifest is missing"):
        read_manifest(artifact)


def test_missing_manifest_and_wrong_version(artifact, tmp_path):
    with pytest.raises(ArtifactError, match="no manifest.json"):
        Model(tmp_path / "nowhere")
    path = os.path.join(artifact, "manifest.json")
    manifest = json.load(open(path))
    json.dump({**manifest, "format_version": 99}, open(path, "w"))
    with pytest.raises(ArtifactError, match="format_version 99 is not supported"):
        read_manifest(artifact)


@pytest.mark.parametrize("change, weights, match", [
    (lambda m: m["outputs"][0].update(shape=["s1", 4]), None, r"uses \['s1'\]"),
    (lambda m: m["inputs"][0].update(dtype="float128"), None, "dtype 'float128'"),
    (lambda m: m["inputs"][0].update(shape=["__import__('os')", 4]), None, "is not allowed"),
    (lambda m: m["symbols"].update(s1={"min": 1, "max": 2}), None, "appear in no input"),
    (lambda m: m["code"]["host"].update(library="../evil.so"), None, "must be 'model.so'"),
    (lambda m: m["code"]["host"].update(threads_symbol="system"), None,
     "only fixed names, so it must be 'ember_set_num_threads'"),
    (lambda m: None, {"c": C_CONST, "extra": C_CONST}, r"weights \['extra'\] have no entry"),
    (lambda m: m["constants"][0].update(bound=True), {}, "'c' is bound but has no weights"),
    (lambda m: None, {}, "'c' has no weights array .* must give its dtype and shape"),
    (lambda m: m["outputs"][1].pop("dtype"), None, r"outputs\[1\] lacks \['dtype'\]"),
    (lambda m: m["constants"][0].update(shape=[5]), None, r"its weights array is float32\[4\]"),
    (lambda m: m["outputs"][0].update(writes_back={"input": "w"}), None, "names no input"),
    (lambda m: m["outputs"][0].update(writes_back={"input": "t"}), None,
     r"the input is int64\['s0'\], the output float32\['s0', 4\]"),
    (lambda m: m["outputs"][0].update(writes_back={"input": "x", "constant": "c"}), None,
     "must be"),
    (lambda m: m.update(output_tree={"tuple": [{"tensor": 0}, {"tensor": 2}]}), None,
     r"refers to outputs \[0, 2\]"),
    (lambda m: m.update(output_tree={"set": []}), None, "unknown kind"),
])
def test_write_artifact_rejects_bad_manifests(tmp_path, libraries, change, weights, match):
    manifest = json.loads(json.dumps(MANIFEST))
    change(manifest)
    with pytest.raises(ArtifactError, match=match):
        make_artifact(tmp_path / "bad", libraries[0], manifest, weights)
    assert not os.path.exists(tmp_path / "bad" / "manifest.json")


def test_rewritten_artifact_loads_new_code(tmp_path, libraries):
    """The same directory rewritten in one process must not run the previously loaded code."""
    path = tmp_path / "art"
    x, t = inputs_of(3)
    for bias in (0, 100):
        m = Model(make_artifact(path, libraries[bias]))
        m.set_constant("scale", np.array(0.5, np.float32))
        check(m(x, t), x, t, bias=float(bias))


def test_foreign_architecture_is_refused(tmp_path, libraries):
    other = "x86_64" if platform.machine() == "aarch64" else "aarch64"
    manifest = {**MANIFEST, "target": {"kind": "host", "triple": f"{other}-linux-gnu"}}
    with pytest.raises(ArtifactError, match=f"compiled for {other}-linux-gnu"):
        Model(make_artifact(tmp_path / "art", libraries[0], manifest))


# -- calling conventions ------------------------------------------------------------------

def test_list_and_dict_with_numpy(model):
    x, t = inputs_of(5)
    y, z = np.empty((5, 4), np.float32), np.empty(20, np.float32)
    assert model.run([x, t], [y, z]) == [(5, 4), (20,)]
    check([y, z], x, t)
    y2, z2 = np.empty((5, 4), np.float32), np.empty(20, np.float32)
    assert model.run({"t": t, "x": x}, {"z": z2, "y": y2}) == [(5, 4), (20,)]
    check([y2, z2], x, t)
    out = model.run_with_tensors({"x": x, "t": t}, {"y": y2, "z": z2})
    assert list(out) == ["y", "z"]
    check([out["y"], out["z"]], x, t)
    y3, z3 = model(x, t)
    assert isinstance(y3, np.ndarray)
    check([y3, z3], x, t)
    check(model.forward(t=t, x=x), x, t)


def test_torch_tensors(model):
    x, t = (torch.from_numpy(a) for a in inputs_of(6))
    outs = [torch.empty(6, 4), torch.empty(24)]
    views = model.run_with_tensors([x, t], outs)
    assert all(isinstance(v, torch.Tensor) for v in views)
    check(views, x, t)
    y, z = model(x, t)
    assert isinstance(y, torch.Tensor) and y.shape == (6, 4) and z.shape == (24,)
    check([y, z], x, t)
    model.set_constant("scale", torch.tensor(2.0))
    check(model(x, t), x, t, scale=2.0)


def test_outputs_at_maximum_shape(model):
    y_max = np.full(model.get_output_maximum_shape("y"), np.nan, np.float32)
    z_max = np.full(model.get_output_maximum_shape(1), np.nan, np.float32)
    for n in (1, 7, 64):
        x, t = inputs_of(n, seed=n)
        assert model.run([x, t], [y_max, z_max]) == [(n, 4), (4 * n,)]
        check([y_max[:n], z_max[:4 * n]], x, t)
        y, z = model.run_with_tensors([x, t], [y_max, z_max])
        assert y.shape == (n, 4) and np.shares_memory(y, y_max)
        check([y, z], x, t)


def test_introspection(model):
    assert model.get_input_names() == ["x", "t"]
    assert model.get_output_names() == ["y", "z"]
    assert model.get_input_name_to_index_map() == {"x": 0, "t": 1}
    assert model.get_output_name_to_index_map() == {"y": 0, "z": 1}
    assert model.get_output_maximum_shape("y") == (64, 4)
    assert model.get_output_maximum_shape(1) == (256,)
    assert model.get_output_dtype("z") == "float32"
    assert model.get_constant_names() == ["c", "scale"]
    assert model.get_constant_names(unbound_only=True) == ["scale"]
    assert model.manifest["symbols"] == {"s0": {"min": 1, "max": 64}}
    assert "x: float32[s0, 4]" in repr(model)
    with pytest.raises(ArgumentError, match=r"no output 'w'; the model's outputs are \['y', 'z'\]"):
        model.get_output_maximum_shape("w")
    with pytest.raises(ArgumentError, match="no output 2"):
        model.get_output_dtype(2)


def test_non_contiguous_input_is_copied(model):
    x, t = inputs_of(4)
    x_strided = np.asfortranarray(x)
    t_strided = np.stack([t, t], axis=1)[:, 0]
    assert not x_strided.flags.c_contiguous and not t_strided.flags.c_contiguous
    check(model(x_strided, t_strided), x, t)
    check(model(torch.from_numpy(x).t().contiguous().t(), torch.from_numpy(t)), x, t)


# -- validation ---------------------------------------------------------------------------

X, T = inputs_of(3)
Y, Z = np.zeros((3, 4), np.float32), np.zeros(12, np.float32)


@pytest.mark.parametrize("inputs, outputs, error, match", [
    ([X], [Y, Z], ArgumentError, r"expected 2 inputs \['x', 't'\], got 1"),
    ({"x": X, "u": T}, [Y, Z], ArgumentError, r"unknown input names \['u'\] and missing input "
                                              r"names \['t'\]"),
    ([X, T], {"y": Y}, ArgumentError, r"missing output names \['z'\]"),
    (X, [Y, Z], ArgumentTypeError, "inputs must be a list or a dict"),
    ([X.astype(np.float64), T], [Y, Z], ArgumentTypeError, "input 'x': expected dtype float32"),
    ([X.astype(">f4"), T], [Y, Z], ArgumentTypeError, "input 'x': expected dtype float32"),
    ([X.tolist(), T], [Y, Z], ArgumentTypeError, "input 'x': expected a numpy.ndarray"),
    ([X, T], [Y, Z.astype(np.float16)], ArgumentTypeError, "output 'z': expected dtype"),
    ([np.zeros((3, 5), np.float32), T], [Y, Z], ArgumentError, "input 'x': dim 1 must be 4, got 5"),
    ([X[0], T], [Y, Z], ArgumentError, r"input 'x': expected rank 2 \(shape \[s0, 4\]\)"),
    ([X, T[:2]], [Y, Z], ArgumentError,
     r"input 't': dim 0 must be 3 = s0 with s0=3 \(from input 'x' dim 0\), got 2"),
    ([np.zeros((0, 4), np.float32), T[:0]], [Y, Z], ArgumentError,
     r"s0 = 0 is outside the range \[1, 64\]"),
    ([np.zeros((65, 4), np.float32), np.zeros(65, np.int64)], [Y, Z], ArgumentError,
     r"input 'x' dim 0: s0 = 65 is outside the range \[1, 64\]"),
    ([X, T], [Y[:2], Z], ArgumentError, r"output 'y': this call's output has shape \[3, 4\] "
                                        r".*maximum shape \[64, 4\]"),
    ([X, T], [Y.reshape(-1), Z], ArgumentError, "rank-2 buffer"),
    ([X, T], [np.empty((4, 3), np.float32).T, Z], ArgumentError, "output 'y'.*C-contiguous"),
    ([X, T], [Y, np.broadcast_to(Z, (12,))], ArgumentError, "output 'z'.*read-only"),
])
def test_bad_arguments_raise(model, inputs, outputs, error, match):
    with pytest.raises(error, match=match):
        model.run(inputs, outputs)


def test_bad_torch_arguments_raise(model):
    x, t = (torch.from_numpy(a) for a in inputs_of(3))
    with pytest.raises(ArgumentError, match="input 'x': expected a tensor on device 'cpu', "
                                            "got one on 'meta'"):
        model(x.to("meta"), t)
    with pytest.raises(ArgumentTypeError, match="input 't': expected dtype int64, got torch.int32"):
        model(x, t.int())
    with pytest.raises(ArgumentError, match="expected a dense tensor"):
        model(x.to_sparse(), t)
    with pytest.raises(ArgumentError, match="output 'y'.*C-contiguous"):
        model.run([x, t], [torch.empty(4, 3).t(), torch.empty(12)])
    with pytest.raises(ArgumentError, match="either positionally or by name"):
        model(x, t=t)


def test_unbound_constant(artifact):
    m = load(artifact)
    x, t = inputs_of(2)
    with pytest.raises(UnboundConstantError, match=r"constants \['scale'\] are not bound"):
        m(x, t)
    with pytest.raises(ArgumentError, match=r"constant 'scale': expected shape \[\], got \[1\]"):
        m.set_constant("scale", np.ones(1, np.float32))
    with pytest.raises(ArgumentTypeError, match="constant 'scale': expected dtype float32"):
        m.set_constant("scale", np.array(1.0))
    with pytest.raises(ArgumentError, match="no constant 'sclae'"):
        m.set_constant("sclae", np.array(1.0, np.float32))
    scale = np.array(3.0, np.float32)
    m.set_constant("scale", scale)
    check(m(x, t), x, t, scale=3.0)
    scale[...] = 4.0  # referenced, not copied (AITemplate's contract)
    check(m(x, t), x, t, scale=4.0)
    m.set_constant("c", np.zeros(4, np.float32))  # a bound constant can be overridden
    y, _ = m(x, t)
    assert_close(y, x + t[:, None].astype(np.float32))


def test_nonzero_status_raises(model):
    model.set_constant("scale", np.array(-1.0, np.float32))
    with pytest.raises(ExecutionError, match="returned status 3"):
        model(*inputs_of(2))


def test_num_threads_hook(tmp_path, libraries, artifact):
    """The hook has a fixed name (the manifest names no symbol to call); a library without it
    gets a warning."""
    m = Model(artifact, num_threads=3)
    assert ctypes.c_int32.in_dll(m.backend.library, "ember_test_threads").value == 3
    (tmp_path / "model.c").write_text(C_SOURCE)
    subprocess.run(["cc", "-shared", "-fPIC", "-Dember_set_num_threads=not_the_hook", "-o",
                    str(tmp_path / "plain.so"), str(tmp_path / "model.c"),
                    *cc_args(SIGNATURE, str(tmp_path))], check=True)
    with pytest.warns(RuntimeWarning, match="num_threads=2 is ignored"):
        Model(make_artifact(tmp_path / "plain", str(tmp_path / "plain.so")), num_threads=2)
    with pytest.raises(ArgumentError, match="num_threads must be a positive int"):
        Model(artifact, num_threads=0)


# -- concurrency and benchmarking -----------------------------------------------------------

def test_concurrent_runs(artifact):
    model = Model(artifact, num_runtimes=3)
    model.set_constant("scale", np.array(0.5, np.float32))
    errors = []

    def worker(seed):
        try:
            for i in range(30):
                n = 1 + (seed * 7 + i) % 64
                x, t = inputs_of(n, seed=seed * 100 + i)
                check(model(x, t), x, t)
        except Exception as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_benchmark(model):
    stats = model.benchmark(count=20, warmup=2)
    assert stats["count"] == len(stats["times_ms"]) == 20
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    assert [a.shape for a in model.random_inputs()] == [(64, 4), (64,)]
    assert [a.shape for a in model.random_inputs({"s0": 8})] == [(8, 4), (8,)]
    assert model.benchmark(inputs_of(8), count=3, warmup=0)["count"] == 3


# -- symbolic shapes ----------------------------------------------------------------------

def test_symbolic_dims():
    d = Dim("Max(2*s0 + 1, s1) // 2 - s1 % 3")
    assert d.symbols == {"s0", "s1"} and d.symbol is None and Dim("s0").symbol == "s0"
    assert d.evaluate({"s0": 4, "s1": 5}) == 4 - 2
    assert Dim(7).constant == 7 and Dim("2*(3+1)").constant == 8
    assert Dim("4*s0").bounds({"s0": (1, 64)}) == (4, 256)
    assert Dim("s0 - s1").bounds({"s0": (1, 8), "s1": (2, 3)}) == (-2, 6)
    assert Dim("s0 // 2").bounds({"s0": (1, 9)}) == (0, 4)
    for bad in ("s0 ** 2", "s0.real", "f(s0)", "s0 / 2", "True", "1.5", "[s0]", "Max()"):
        with pytest.raises(SymbolicError):
            Dim(bad)
    with pytest.raises(SymbolicError, match="may be zero"):
        Dim("8 // s0").bounds({"s0": (0, 4)})


def test_tensor_spec_manifest_round_trip():
    """A TensorSpec's manifest entry (to_json, which the compiler writes) is the entry the
    runtime read it from (from_manifest)."""
    for role, entry in (("input", {"name": "x", "dtype": "float32", "shape": ["s0", 4]}),
                        ("output", {"name": "y", "dtype": "int64", "shape": ["2*s0", 3],
                                    "max_shape": [16, 3]}),
                        ("output", {"name": "mutated.x", "dtype": "float32", "shape": ["s0"],
                                    "max_shape": [8], "writes_back": {"input": "x"}}),
                        ("constant", {"name": "w", "dtype": "float16", "shape": []})):
        assert TensorSpec.from_manifest(role, entry).to_json() == entry


def test_derived_symbols_are_solved():
    specs = [TensorSpec.from_manifest("input", {"name": "a", "dtype": "float32",
                                                "shape": ["2*s0 + 1", "s1"]}),
             TensorSpec.from_manifest("input", {"name": "b", "dtype": "float32",
                                                "shape": ["s0 * s1"]})]
    ranges = {"s0": (1, 10), "s1": (1, 10)}
    assert bind_symbols(specs, [(7, 5), (15,)], ranges) == {"s0": 3, "s1": 5}
    with pytest.raises(ArgumentError, match="input 'b': dim 0 must be 15"):
        bind_symbols(specs, [(7, 5), (14,)], ranges)
    halved = TensorSpec.from_manifest("input", {"name": "h", "dtype": "float32",
                                                "shape": ["s0 // 2"]})
    with pytest.raises(ArgumentError, match=r"cannot infer symbols \['s0'\]"):
        bind_symbols([halved], [(4,)], {"s0": (1, 10)})
