"""Serving on Ray Serve (ember.serving): a local Ray cluster on loopback serves the MLP block
with 2 replicas and dynamic batching; 500 concurrent requests of mixed batch sizes (through
handles and HTTP) each get exactly their own rows, equal to PyTorch's; malformed requests get
a 4xx with ember's message and leave the replicas up; a replica killed mid-load is restarted by
Serve while clients see errors they retry, never wrong answers. The request checking and
batching itself is tested without Ray."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import ember
from compare import assert_close
from ember.runtime import ArgumentError, load
from ember.serving import ModelRunner, RequestTooLarge, batch_dim

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from examples.mlp_block import MLPBlock  # noqa: E402

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

MAX_ROWS = 32


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    torch.manual_seed(0)
    model = MLPBlock(64, 256).eval()
    batch = torch.export.Dim("batch", min=1, max=MAX_ROWS)
    compiled = ember.compile(model, (torch.randn(4, 64),), dynamic_shapes={"x": {0: batch}})
    path = str(tmp_path_factory.mktemp("serve") / "mlp.ember")
    compiled.save(path)
    return model, path


def _expected(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _requests(count: int, seed: int):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(1, 9)), 64)).astype(np.float32)
            for _ in range(count)]


# -- checking and batching, no Ray ----------------------------------------------------------
def test_batch_dim_comes_from_the_manifest(mlp):
    _, path = mlp
    assert batch_dim(load(path).manifest) == batch_dim(load(path).manifest)
    found = batch_dim(load(path).manifest)
    assert found is not None and found.max_rows == MAX_ROWS
    static = ember.compile(MLPBlock(64, 256).eval(), (torch.randn(4, 64),))
    assert batch_dim(static.runtime.manifest) is None


def test_runner_merges_and_splits_back_exactly(mlp):
    model, path = mlp
    runner = ModelRunner(load(path))
    calls = []
    real = runner.execute
    runner.execute = lambda inputs: (calls.append(inputs["x"].shape[0]), real(inputs))[1]
    xs = _requests(20, seed=1)
    outputs = runner.run([runner.check({"x": x}) for x in xs])
    for x, out in zip(xs, outputs):
        assert_close(out["output_0"], _expected(model, x))
    # merged along the batch dim in chunks of at most MAX_ROWS rows, every row run once
    assert sum(calls) == sum(len(x) for x in xs) and max(calls) <= MAX_ROWS and len(calls) < 20


def test_runner_refuses_bad_requests_alone(mlp):
    _, path = mlp
    runner = ModelRunner(load(path))
    with pytest.raises(RequestTooLarge, match="33 rows; this artifact takes at most 32"):
        runner.check({"x": np.zeros((33, 64), np.float32)})
    with pytest.raises(ArgumentError, match="dim 1 must be 64"):
        runner.check({"x": np.zeros((2, 63), np.float32)})
    with pytest.raises(ArgumentError, match="missing"):
        runner.check({})
    with pytest.raises(ArgumentError, match="expected dtype float32"):
        runner.check([np.zeros((2, 64))])
    with pytest.raises(ArgumentError, match="not a rectangular array of numbers"):
        runner.from_json({"x": [[1.0, 2.0], [3.0]]})
    assert runner.from_json({"x": [[1, 2]]})["x"].dtype == np.float32


def test_replicas_ask_for_cpus_or_a_gpu(mlp, tmp_path):
    """num_cpus = threads (and EMBER_NUM_THREADS); a GPU artifact's replicas ask for a GPU."""
    from ember.serving import build_app
    _, path = mlp
    options = build_app(path, replicas=2, threads=2)._bound_deployment.ray_actor_options
    assert options["num_cpus"] == 2 and "num_gpus" not in options
    assert options["runtime_env"]["env_vars"]["EMBER_NUM_THREADS"] == "2"
    gpu = str(tmp_path / "gpu.ember")
    ember.compile(MLPBlock(64, 256).eval(), (torch.randn(4, 64),), target="cuda").save(gpu)
    assert build_app(gpu)._bound_deployment.ray_actor_options["num_gpus"] == 1
    with pytest.raises(ValueError, match="replicas, threads, max_batch >= 1"):
        build_app(path, replicas=0)


# -- on a local Ray cluster -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(mlp):
    from ember.serving import build_app
    model, path = mlp
    port = _free_port()
    # three logical CPUs: the 2 replicas and the bundled test's own (Ray's count, not cores)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        handle = serve.run(build_app(path, replicas=2, threads=1, max_batch=16,
                                     batch_wait_ms=5), route_prefix="/")
        yield model, handle, f"http://127.0.0.1:{port}/"
    finally:
        serve.shutdown()
        ray.shutdown()


def _post(url: str, body: bytes):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _stats(handle):
    return {s["pid"]: s for s in handle.broadcast("stats").results()}


def test_500_concurrent_requests_of_mixed_sizes(served):
    from ember.serving import grpc_handle
    model, handle, url = served
    xs = _requests(500, seed=2)
    before = _stats(handle)
    # 400 through handles, all in flight at once: numpy by reference (Ray's object store)
    # and by value over gRPC ...
    handles = (handle, grpc_handle(handle))
    pending = [(i, handles[i % 2].infer.remote({"x": x})) for i, x in enumerate(xs[:400])]
    answers = {i: response.result(timeout_s=120)["output_0"] for i, response in pending}
    # ... and 100 over HTTP (JSON) from 16 client threads
    with ThreadPoolExecutor(16) as clients:
        replies = list(clients.map(
            lambda x: _post(url, json.dumps({"inputs": {"x": x.tolist()}}).encode()),
            xs[400:]))
    for i, (status, body) in enumerate(replies, 400):
        assert status == 200, body
        answers[i] = np.asarray(body["outputs"]["output_0"], np.float32)
    assert sorted(answers) == list(range(500))      # none lost, none twice
    for i, x in enumerate(xs):
        assert answers[i].shape == (len(x), 64)
        assert_close(answers[i], _expected(model, x))
    # the replicas' counters: every request and row once, some merged into shared calls
    after = _stats(handle)
    count = lambda key: sum(after[p][key] - before[p][key] for p in after)
    assert after.keys() == before.keys() and len(after) == 2
    assert count("requests") == 500 and count("rows") == sum(len(x) for x in xs)
    assert count("calls") < 500 and count("model_cpu_seconds") > 0


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not JSON"),
    (b'{"x": [[1.0]]}', 400, 'expected a JSON object {"inputs"'),
    (b'{"inputs": {"y": [[1.0]]}}', 400, "unknown input 'y'"),
    (b'{"inputs": {"x": [[1.0, 2.0]]}}', 400, "dim 1 must be 64"),
    (b'{"inputs": {"x": [["a", "b"]]}}', 400, "not a rectangular array of numbers"),
    (b'{"inputs": {}}', 400, "missing ['x']"),
    (json.dumps({"inputs": {"x": np.zeros((33, 64)).tolist()}}).encode(), 413,
     "at most 32"),
])
def test_malformed_requests_get_4xx_and_the_replica_stays(served, body, status, message):
    model, handle, url = served
    got, reply = _post(url, body)
    assert got == status and message in reply["error"]
    x = _requests(1, seed=3)[0]
    good, reply = _post(url, json.dumps({"inputs": {"x": x.tolist()}}).encode())
    assert good == 200
    assert_close(np.asarray(reply["outputs"]["output_0"], np.float32), _expected(model, x))


def test_a_bundled_artifact_is_shipped_from_the_driver(served, mlp, tmp_path):
    """bundle=True: the replicas unpack the artifact's files sent with the deployment (the
    driver's copy may be gone by then)."""
    import shutil
    from ember.serving import build_app
    model, path = mlp
    copy = str(tmp_path / "copy.ember")
    shutil.copytree(path, copy)
    app = build_app(copy, bundle=True, name="bundled")
    shutil.rmtree(copy)
    handle = serve.run(app, name="bundled", route_prefix="/bundled")
    try:
        x = _requests(1, seed=5)[0]
        assert_close(handle.infer.remote([x]).result(timeout_s=60)["output_0"],
                     _expected(model, x))
    finally:
        serve.delete("bundled")


def test_a_handle_gets_the_runtime_error(served):
    _, handle, _ = served
    with pytest.raises(Exception, match="expected dtype float32"):
        handle.infer.remote({"x": np.zeros((2, 64))}).result(timeout_s=60)
    with pytest.raises(Exception, match="at most 32"):
        handle.infer.remote({"x": np.zeros((40, 64), np.float32)}).result(timeout_s=60)


def _replicas():
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("SERVE_REPLICA::")]


@pytest.mark.parametrize("transport", ["by reference", "gRPC"])
def test_a_killed_replica_is_restarted_and_answers_stay_right(served, transport):
    from ember.serving import grpc_handle
    model, handle, _ = served
    handle = grpc_handle(handle) if transport == "gRPC" else handle
    xs = _requests(600, seed=4)
    retried = []

    def client(i):
        for attempt in range(20):
            try:
                return i, handle.infer.remote({"x": xs[i]}).result(timeout_s=60)["output_0"]
            except Exception as e:  # noqa: BLE001 - the replica died under this request
                if "ArgumentError" in repr(e):
                    raise
                retried.append(type(e).__name__)
                time.sleep(0.2)
        raise AssertionError(f"request {i} failed 20 times")

    victim = _replicas()[0]
    with ThreadPoolExecutor(8) as clients:
        futures = [clients.submit(client, i) for i in range(len(xs))]
        time.sleep(0.3)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        in_flight = sum(not f.done() for f in futures)
        answers = dict(f.result() for f in futures)
    assert in_flight > 0                  # the replica died under load
    assert sorted(answers) == list(range(len(xs)))
    for i, x in enumerate(xs):
        assert_close(answers[i], _expected(model, x))
    deadline = time.time() + 60
    while time.time() < deadline and (len(_replicas()) < 2 or victim in _replicas()):
        time.sleep(0.5)
    assert len(_replicas()) == 2 and victim not in _replicas()
    x = xs[0]
    assert_close(handle.infer.remote({"x": x}).result(timeout_s=60)["output_0"],
                 _expected(model, x))
