"""An ember artifact as a Ray Serve deployment: replicas, dynamic batching, numpy and HTTP.

    from ember.serving import build_app
    app = build_app("bert.ember", replicas=2, threads=1, max_batch=16, batch_wait_ms=5)
    handle = serve.run(app, route_prefix="/")          # ray.init() first, or serve.run starts it
    outputs = handle.remote({"x": x}).result()          # numpy in, {"output_0": array} out
    # HTTP: POST / {"inputs": {"x": [[...]]}} -> {"outputs": {"output_0": [[...]]}}

Each replica loads the artifact (from a path every node can read, or, with `bundle=True`, from
the artifact's files shipped with the deployment through Ray's object store) with the runtime's
threads set to `threads` and asks Ray for as many CPUs (`num_cpus`, and EMBER_NUM_THREADS in
its environment), so replicas never oversubscribe the cores; a GPU artifact's replicas ask for
a GPU. Requests are checked one by one (ember.serving.batching: a bad one fails alone, with
ember's message: a 4xx over HTTP, the runtime's exception through a handle), then Serve's
`@serve.batch` gathers up to `max_batch` of them, waiting at most `batch_wait_ms`, and they run
as one call along the artifact's batch dim. The model runs on a worker thread (the runtime
releases the GIL; always the same thread), so the replica keeps taking requests into the next
batch meanwhile.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import os
import shutil
import tempfile
import time
from typing import Any, Dict, Mapping, Optional

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from ember.artifact.store import read_manifest
from ember.runtime.errors import ArgumentError
from ember.serving.batching import ModelRunner, RequestTooLarge

#: A replica's environment: OpenMP workers sleep as soon as a kernel ends (libomp spins for
#: 200 ms by default, which starves the replica's own event loop, Serve's proxy and the other
#: replicas of the CPUs they share: measured, a replica's throughput fell by half under load).
REPLICA_ENV = {"KMP_BLOCKTIME": "0"}
#: Serve's defaults for gathering a batch.
DEFAULT_MAX_BATCH = 16
DEFAULT_BATCH_WAIT_MS = 5.0


@serve.deployment
class EmberServer:
    """One replica: a loaded artifact behind Serve (see the module docstring). `artifact`: the
    directory, or its files ({relative path: bytes}) to unpack here."""

    def __init__(self, artifact, threads: Optional[int] = None,
                 max_batch: int = DEFAULT_MAX_BATCH,
                 batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS):
        from ember.runtime import load
        self._unpacked = None
        if isinstance(artifact, Mapping):
            self._unpacked = tempfile.mkdtemp(prefix="ember-served-")
            for relative, data in artifact.items():
                path = os.path.join(self._unpacked, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
            artifact = self._unpacked
        self.runner = self.make_runner(load(artifact, num_threads=threads, num_runtimes=1))
        # One thread runs the model: one OpenMP team per replica (each thread that calls into
        # the code gets its own team, whose idle workers spin for a while: several callers
        # oversubscribe the replica's CPUs and throughput collapses).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ember-replica")
        self.batching = self.runner.batch is not None and max_batch > 1
        self._batched.set_max_batch_size(max(1, max_batch))
        self._batched.set_batch_wait_timeout_s(batch_wait_ms / 1e3)

    def make_runner(self, model) -> ModelRunner:
        """What checks and runs the requests (a subclass may run them some other way)."""
        return ModelRunner(model)

    async def infer(self, inputs) -> Dict[str, Any]:
        """The outputs of one request (numpy arrays, by name or in input order)."""
        checked = self.runner.check(inputs)
        if self.batching:
            return await self._batched(checked)
        return (await self._in_worker([checked]))[0]

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_MS / 1e3)
    async def _batched(self, requests):
        return await self._in_worker(requests)

    async def _in_worker(self, requests):
        return await asyncio.get_running_loop().run_in_executor(self._worker, self.runner.run,
                                                                requests)

    def stats(self) -> Dict[str, float]:
        """This replica's counters since it started (ember.serving.batching.RunnerStats) and
        its process's CPU seconds: rows per call shows how full the dynamic batches are, CPU
        beyond the model's time is what serving costs."""
        return self.runner.stats.as_dict() | {"process_cpu_seconds": time.process_time(),
                                              "pid": os.getpid()}

    async def __call__(self, request: Request):
        """HTTP: POST {"inputs": {name: nested lists}} -> {"outputs": {name: nested lists}};
        a request ember refuses gets 400 (413 when it has too many rows) and its message."""
        try:
            body = await request.json()
        except Exception as e:  # noqa: BLE001 - any undecodable body
            return _error(400, f"the request body is not JSON: {e}")
        if not isinstance(body, dict) or "inputs" not in body:
            return _error(400, 'expected a JSON object {"inputs": {name: array, ...}}')
        try:
            outputs = await self.infer(self.runner.from_json(body["inputs"]))
        except RequestTooLarge as e:
            return _error(413, str(e))
        except ArgumentError as e:     # ArgumentTypeError too: the request, not the replica
            return _error(400, str(e))
        return JSONResponse({"outputs": {name: value.tolist() for name, value in outputs.items()}})

    def __del__(self):
        if self._unpacked:
            shutil.rmtree(self._unpacked, ignore_errors=True)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(artifact: str, *, replicas: int = 1, threads: int = 1,
              max_batch: int = DEFAULT_MAX_BATCH, batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
              bundle: bool = False, name: str = "ember", server=None, **server_args):
    """The Serve application of `artifact` (a directory): `replicas` replicas of `threads`
    runtime threads each (and as many CPUs, or one GPU for a GPU artifact); dynamic batching
    of up to `max_batch` requests, waiting at most `batch_wait_ms` (1: off); `bundle` ships the
    artifact's files from this process instead of reading `artifact` on every node. `server`:
    a deployment of an EmberServer subclass to use instead (given `server_args` too)."""
    if replicas < 1 or threads < 1 or max_batch < 1 or batch_wait_ms < 0:
        raise ValueError(f"need replicas, threads, max_batch >= 1 and batch_wait_ms >= 0, got "
                         f"{replicas}, {threads}, {max_batch}, {batch_wait_ms}")
    manifest = read_manifest(artifact)      # the artifact is checked before Ray is involved
    options: Dict[str, Any] = {"num_cpus": threads, "runtime_env": {"env_vars": REPLICA_ENV | {
        "EMBER_NUM_THREADS": str(threads)}}}
    if manifest["target"]["kind"] in ("cuda", "rocm"):
        options["num_gpus"] = 1
    source = _files(artifact) if bundle else os.path.abspath(artifact)
    return (server or EmberServer).options(
        name=name, num_replicas=replicas, ray_actor_options=options,
        max_ongoing_requests=max(2 * max_batch, 8)).bind(
        source, threads=threads, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
        **server_args)


def grpc_handle(app="ember"):
    """A handle to a served artifact (`app`: the application's name, or a handle from
    `serve.run`) whose requests go by value over gRPC straight to a replica, instead of as
    Ray tasks whose arguments and results pass through the object store (Serve's default,
    `_by_reference=True`). For Python clients inside the Ray cluster sending small requests:
    measured on this project's 2-core machines, a do-nothing deployment answered 680-1021
    requests/s through it against 357-422 by reference, the caller's CPU per request
    1.3 -> 0.9 ms instead of 2.3-2.7 ms (benchmarks/serve_load.py uses it)."""
    handle = serve.get_app_handle(app) if isinstance(app, str) else app
    return handle.options(_by_reference=False)


def run_server(artifact: str, *, host: str = "127.0.0.1", port: int = 8000,
               address: Optional[str] = None, route: str = "/", **app_options) -> None:
    """`ember serve`: serves `artifact` on a local Ray instance (or the cluster at `address`)
    at http://host:port/route until interrupted (Ctrl-C), then shuts Serve down."""
    import ray
    app = build_app(artifact, bundle=address is not None, **app_options)
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    try:
        wanted = app_options.get("replicas", 1) * app_options.get("threads", 1)
        cpus = ray.cluster_resources().get("CPU", 0)
        if wanted > cpus:   # Serve would wait forever for CPUs no node has
            raise ValueError(f"{app_options.get('replicas', 1)} replicas x "
                             f"{app_options.get('threads', 1)} threads need {wanted} CPUs; the "
                             f"Ray cluster has {cpus:g}: use fewer replicas or threads")
        serve.start(http_options={"host": host, "port": port})
        serve.run(app, route_prefix=route)
        print(f"serving {artifact} at http://{host}:{port}{route} "
              f"(POST {{\"inputs\": {{...}}}}; Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()


def _files(directory: str) -> Dict[str, bytes]:
    """Every file of an artifact directory, by path relative to it."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files
