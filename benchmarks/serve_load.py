"""Load test of ember artifacts served on Ray Serve (ember.serving), side by side with the same
model served by eager PyTorch in the same Serve setup (the same deployment class, batching and
request checks; only the call that computes differs).

    python benchmarks/serve_load.py                      # MLP block and BERT-style encoder
    python benchmarks/serve_load.py --models bert --concurrency 1,16 --rounds 3
    python benchmarks/serve_load.py --backends ember,eager,ember-int8,eager-int8

A local Ray instance on loopback; for each model, replica layout (1 replica x 2 threads, 2
replicas x 1 thread: the machine's 2 cores either way), batching (off, or up to --max-batch
requests merged along the batch dim) and backend, closed-loop clients at each concurrency send
one-row requests through a Serve handle (by value over gRPC, ember.serving.grpc_handle; or
--by-reference) until --requests answers or --seconds have passed. Backends: `ember` (the fp32
artifact), `ember-int8` (compiled with ember.quant.Int8(), dynamic), `eager` (the torch
module), `eager-int8` (torch.ao's quantize_dynamic of its Linear layers), `noop` (answers
zeros: what Serve alone costs, the ceiling of the others). Every answer is checked against the
backend's own output for the same rows computed outside Serve (fp32 backends: PyTorch's), and
counted by request id: none may be wrong, lost or answered twice; each int8 backend's accuracy
against fp32 PyTorch is printed once.

This machine is noisy, so --rounds repeats every configuration, backends measured back to back
within a round, and the summary takes medians across rounds. Besides throughput (requests/s)
and p50/p99 latency (ms), each row shows how full the batches were (rows per model call) and
where the CPU went: CPU ms per answered request in all (this process's clients and Serve router,
and the replicas' processes), and of it the model's (the CPU time of the thread calling it:
with 2 runtime threads, the second one's time counts as Serve's).
"""
from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ember  # noqa: E402
from benchmarks.models import WORKLOADS  # noqa: E402
from benchmarks.report import machine_info  # noqa: E402

#: model name -> (workload, the shape of one request's input, the batch dim's maximum).
MODELS = {"mlp": ("mlp", (1, 512), 64), "bert": ("bert", (1, 32, 256), 32)}
POOL = 32                   # distinct request inputs, cycled (each answer checked)
BACKENDS = ("ember", "eager", "ember-int8", "eager-int8", "noop")


@dataclass
class Served:
    """One backend of one model: what build_app serves (the artifact, and for eager backends
    the torch module computing in its place), the answers expected for the input pool and
    how close they must be."""
    artifact: str
    torch_model: Optional[torch.nn.Module]
    expected: List[np.ndarray]
    atol: float = 1e-3


class Zeros(torch.nn.Module):
    """The `noop` backend: answers zeros of the output's shape, computing nothing, so its row
    is what Serve itself can carry on this machine (the ceiling of every backend)."""

    def __init__(self, row_shape):
        super().__init__()
        self.row_shape = tuple(row_shape)

    def forward(self, x):
        return torch.zeros((x.shape[0],) + self.row_shape)


def _prepare(name: str, backends: List[str], workdir: str):
    """The request inputs of one model and each backend's Served."""
    workload, shape, max_rows = MODELS[name]
    model = WORKLOADS[workload].make_model(1).eval()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(POOL)]
    dynamic = ({0: torch.export.Dim("batch", min=1, max=max_rows)},)
    example = (torch.randn((2,) + shape[1:]),)

    def compiled(quantize, tag):
        path = os.path.join(workdir, f"{name}{tag}.ember")
        if not os.path.exists(path):
            ember.compile(model, example, dynamic_shapes=dynamic, quantize=quantize).save(path)
        return path

    def answers(fn: Callable) -> List[np.ndarray]:
        with torch.no_grad():
            return [np.asarray(fn(torch.from_numpy(x))) for x in inputs]

    fp32 = answers(model)
    served = {}
    for backend in backends:
        if backend in ("ember", "eager"):
            torch_model = model if backend == "eager" else None
            served[backend] = Served(compiled(None, ""), torch_model, fp32)
        elif backend == "ember-int8":
            path = compiled(ember.quant.Int8(), "-int8")
            runtime = ember.runtime.load(path, num_threads=1)
            served[backend] = Served(path, None, answers(lambda x: runtime(x)))
        elif backend == "eager-int8":
            # torch.ao scales each activation per tensor: a batched request's answer depends
            # on its batchmates' values (ember's dynamic int8 scales per row: it does not)
            quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                               dtype=torch.qint8)
            served[backend] = Served(compiled(None, ""), quantized, answers(quantized), 0.1)
        elif backend == "noop":
            zeros = Zeros(fp32[0].shape[1:])
            served[backend] = Served(compiled(None, ""), zeros, answers(zeros))
        else:
            raise SystemExit(f"unknown backend {backend!r}; choose from {BACKENDS}")
        if backend.endswith("int8"):
            got, ref = (np.concatenate([a.ravel() for a in v])
                        for v in (served[backend].expected, fp32))
            cosine = float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref)))
            print(f"# {name} {backend}: cosine to fp32 PyTorch {cosine:.6f}, max abs diff "
                  f"{np.abs(got - ref).max():.4f}")
    return inputs, served


def _eager_server():
    """A deployment serving a torch model through ember.serving's deployment: the same
    request checks and batching, eager PyTorch computing."""
    from ray import serve
    from ember.serving import ModelRunner
    from ember.serving.deployment import EmberServer

    @serve.deployment
    class EagerServer(EmberServer.func_or_class):
        def __init__(self, artifact, torch_model=None, **options):
            torch.set_num_threads(options.get("threads") or 1)
            self.torch_model = torch_model
            super().__init__(artifact, **options)

        def make_runner(self, model):
            def execute(inputs):
                with torch.no_grad():
                    out = self.torch_model(*[torch.from_numpy(inputs[n])
                                             for n in model.get_input_names()])
                return {"output_0": out.numpy()}
            return ModelRunner(model, execute=execute)
    return EagerServer


async def _load(handle, inputs, one: Served, concurrency: int, requests: int, seconds: float):
    """Closed-loop clients; returns (throughput, latencies in ms, wrong, lost or doubled)."""
    latencies, answers, wrong = [], {}, 0
    next_id = iter(range(requests))
    deadline = time.perf_counter() + seconds

    async def client():
        nonlocal wrong
        for rid in next_id:
            if time.perf_counter() > deadline:
                return
            x = inputs[rid % POOL]
            start = time.perf_counter()
            out = await handle.infer.remote({"x": x})
            latencies.append((time.perf_counter() - start) * 1e3)
            answers[rid] = answers.get(rid, 0) + 1
            got = out["output_0"]
            ref = one.expected[rid % POOL]
            if got.shape != ref.shape or not np.allclose(got, ref, atol=one.atol, rtol=1e-3):
                wrong += 1
    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    missing = sum(1 for rid in range(len(latencies)) if answers.get(rid) != 1)
    return len(latencies) / elapsed, latencies, wrong, missing


def _replica_stats(handle) -> Dict[int, Dict[str, float]]:
    """Every replica's EmberServer.stats(), by process id."""
    return {stats["pid"]: stats for stats in handle.broadcast("stats").results()}


def _measure(handle, replicas, inputs, one: Served, concurrency, args) -> Dict[str, float]:
    """One closed-loop measurement, with batching and CPU figures from the replicas."""
    before, cpu0 = _replica_stats(handle), time.process_time()
    rate, lat, wrong, lost = asyncio.run(_load(handle, inputs, one, concurrency,
                                               args.requests, args.seconds))
    driver_cpu = time.process_time() - cpu0
    after = _replica_stats(handle)
    assert len(after) == replicas and after.keys() == before.keys(), "a replica restarted"
    delta = {key: sum(after[r][key] - before[r][key] for r in after if r in before)
             for key in ("requests", "calls", "rows", "model_cpu_seconds", "process_cpu_seconds")}
    answered = max(len(lat), 1)
    return dict(rate=rate, p50=statistics.median(lat), p99=float(np.percentile(lat, 99)),
                wrong=wrong, lost=lost, rows_per_call=delta["rows"] / max(delta["calls"], 1),
                cpu_ms=(driver_cpu + delta["process_cpu_seconds"]) / answered * 1e3,
                model_ms=delta["model_cpu_seconds"] / answered * 1e3)


HEADER = (f"{'backend':<11}{'layout':<7}{'batching':<9}{'conc':>5}{'req/s':>8}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'rows/call':>10}{'cpu ms/req':>11}{'model':>7}{'wrong':>6}{'lost':>5}")


def _line(row, extra: str = "") -> str:
    return (f"{row['backend']:<11}{row['layout']:<7}{'on' if row['batching'] else 'off':<9}"
            f"{row['concurrency']:>5}{row['rate']:>8.1f}{row['p50']:>8.2f}{row['p99']:>8.2f}"
            f"{row['rows_per_call']:>10.1f}{row['cpu_ms']:>11.2f}{row['model_ms']:>7.2f}"
            f"{row['wrong']:>6}{row['lost']:>5}{extra}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,bert")
    parser.add_argument("--backends", default="ember,eager",
                        help=f"from {', '.join(BACKENDS)}")
    parser.add_argument("--layouts", default="1x2,2x1", help="replicas x threads, ...")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--requests", type=int, default=300, help="per measurement, at most")
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement, at most")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every configuration; the summary takes medians")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--by-reference", action="store_true",
                        help="send requests as Ray tasks through the object store (Serve's "
                             "default) instead of by value over gRPC (ember.serving.grpc_handle)")
    args = parser.parse_args(argv)
    import ray
    from ray import serve
    from ember.serving import build_app, grpc_handle

    info = machine_info()
    print(f"# ember serving load test on {info['cpu']} ({os.cpu_count()} cores; "
          f"{' '.join(info['isa'])}), "
          f"Ray {ray.__version__}; one-row requests, closed-loop clients through a Serve "
          f"handle ({'by reference' if args.by_reference else 'by value over gRPC'}); "
          f"batching: up to {args.max_batch} requests, {args.batch_wait_ms} ms wait")
    # Ray's workers (started by this process) import the eager replicas' model classes
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root, os.path.join(root, "examples"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"location": "NoServer"},    # handles only: no HTTP proxy
                logging_config={"enable_access_log": False, "log_level": "WARNING"})
    eager = _eager_server()
    backends = args.backends.split(",")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for name in args.models.split(","):
                inputs, served = _prepare(name, backends, workdir)
                print(f"\n== {name}: {WORKLOADS[MODELS[name][0]].description}; request "
                      f"{list(MODELS[name][1])}")
                print(HEADER + f"{'round':>6}")
                for round_ in range(args.rounds):
                    for layout in args.layouts.split(","):
                        replicas, threads = (int(v) for v in layout.split("x"))
                        for max_batch in (1, args.max_batch):
                            for backend in backends:
                                one = served[backend]
                                extra = {"server": eager, "torch_model": one.torch_model} \
                                    if one.torch_model is not None else {}
                                app = build_app(one.artifact, replicas=replicas,
                                                threads=threads, max_batch=max_batch,
                                                batch_wait_ms=args.batch_wait_ms,
                                                name=backend.replace("-", "_"), **extra)
                                handle = serve.run(app, name="load", route_prefix=None)
                                if not args.by_reference:
                                    handle = grpc_handle(handle)
                                for x in inputs[:4]:                       # warm up
                                    handle.infer.remote({"x": x}).result()
                                for concurrency in map(int, args.concurrency.split(",")):
                                    row = dict(model=name, backend=backend, layout=layout,
                                               batching=max_batch > 1,
                                               concurrency=concurrency, round=round_)
                                    row |= _measure(handle, replicas, inputs, one, concurrency,
                                                args)
                                    rows.append(row)
                                    print(_line(row, f"{round_:>6}"), flush=True)
                                serve.delete("load")
                _summary(rows, name)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 1 if any(r["wrong"] or r["lost"] for r in rows) else 0


def _medians(rows) -> List[Dict]:
    """One row per configuration: the median of each figure across rounds (wrong and lost:
    summed)."""
    configs: Dict[tuple, List[Dict]] = {}
    for r in rows:
        configs.setdefault((r["backend"], r["layout"], r["batching"], r["concurrency"]),
                           []).append(r)
    merged = []
    for (backend, layout, batching, concurrency), runs in configs.items():
        row = dict(backend=backend, layout=layout, batching=batching, concurrency=concurrency,
                   rounds=len(runs), wrong=sum(r["wrong"] for r in runs),
                   lost=sum(r["lost"] for r in runs))
        for key in ("rate", "p50", "p99", "rows_per_call", "cpu_ms", "model_ms"):
            row[key] = statistics.median(r[key] for r in runs)
        merged.append(row)
    return merged


def _summary(rows, name: str) -> None:
    """The medians, then the ratios at the highest concurrency, each backend at its best
    layout: batching's throughput gain, its p99 against the same load served one request at a
    time and against one request's latency (concurrency 1, no batching), ember against
    eager (fp32 against fp32, int8 against int8, and ember int8 against eager fp32)."""
    mine = _medians([r for r in rows if r["model"] == name])
    top = max(r["concurrency"] for r in mine)
    print(f"-- {name}: medians of {max(r['rounds'] for r in mine)} round(s)")
    print(HEADER)
    for row in mine:
        print(_line(row))

    def best(backend, batching, concurrency=top):
        found = [r for r in mine if r["backend"] == backend and r["batching"] == batching and
                 r["concurrency"] == concurrency]
        return max(found, key=lambda r: r["rate"]) if found else None

    ceiling = best("noop", True)
    if ceiling:
        print(f"# {name}, concurrency {top}: Serve's ceiling here (noop backend, batching): "
              f"{ceiling['rate']:.1f} req/s, {ceiling['cpu_ms']:.2f} CPU ms per request")
    for backend in ("ember", "ember-int8"):
        on, off, single = best(backend, True), best(backend, False), best(backend, False, 1)
        if on and off:
            print(f"# {name}, concurrency {top}: {backend} with batching {on['rate']:.1f} req/s"
                  f" ({on['layout']}) vs without {off['rate']:.1f} ({off['layout']}): "
                  f"{on['rate'] / off['rate']:.2f}x; p99 {on['p99']:.1f} ms vs "
                  f"{off['p99']:.1f} ms without batching ({on['p99'] / off['p99']:.2f}x)" +
                  (f", {on['p99'] / single['p50']:.1f}x one request's latency "
                   f"({single['p50']:.1f} ms at concurrency 1)" if single else ""))
    for backend in BACKENDS:
        for layout in sorted({r["layout"] for r in mine}):
            pair = [next((r for r in mine if r["backend"] == backend and r["layout"] == layout
                          and r["concurrency"] == top and r["batching"] == b), None)
                    for b in (True, False)]
            if all(pair):
                print(f"#   {backend} {layout}: batching {pair[0]['rate'] / pair[1]['rate']:.2f}x "
                      f"throughput, p99 {pair[0]['p99'] / pair[1]['p99']:.2f}x")
    for batching in (True, False):
        for mine_name, peer_name in (("ember", "eager"), ("ember-int8", "eager-int8"),
                                     ("ember-int8", "eager")):
            ours, peer = best(mine_name, batching), best(peer_name, batching)
            if ours and peer:
                print(f"# {name}, concurrency {top}, batching {'on' if batching else 'off'}: "
                      f"{mine_name} {ours['rate']:.1f} req/s vs {peer_name} {peer['rate']:.1f}: "
                      f"{ours['rate'] / peer['rate']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
