"""Load test of ember artifacts served on Ray Serve (ember.serving), side by side with the same
model served by eager PyTorch in the same Serve setup (the same deployment class, batching and
request checks; only the call that computes differs).

    python benchmarks/serve_load.py                      # MLP block and BERT-style encoder
    python benchmarks/serve_load.py --models bert --concurrency 1,16 --requests 200

A local Ray instance on loopback; for each model, backend (ember, eager), replica layout (1
replica x 2 threads, 2 replicas x 1 thread: the machine's 2 cores either way) and batching (off,
or up to --max-batch requests merged along the batch dim), closed-loop clients at each
concurrency send one-row requests through a Serve handle until --requests answers or
--seconds have passed. Every answer is checked against PyTorch on the same rows and counted by
request id: none may be wrong, lost or answered twice. Printed: throughput (requests/s), p50
and p99 latency (ms), then the ratios the serving issue asks about.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

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


def _compile(name: str, workdir: str):
    """(torch model, artifact path, request inputs, expected outputs) of one model."""
    workload, shape, max_rows = MODELS[name]
    model = WORKLOADS[workload].make_model(1)
    batch = torch.export.Dim("batch", min=1, max=max_rows)
    example = torch.randn((2,) + shape[1:])
    dynamic = ({0: batch},)
    path = os.path.join(workdir, f"{name}.ember")
    ember.compile(model, (example,), dynamic_shapes=dynamic).save(path)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(POOL)]
    with torch.no_grad():
        expected = [model(torch.from_numpy(x)).numpy() for x in inputs]
    return model, path, inputs, expected


def _eager_server():
    """A deployment serving the torch model through ember.serving's deployment: the same
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


async def _load(handle, inputs, expected, concurrency: int, requests: int, seconds: float):
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
            ref = expected[rid % POOL]
            if got.shape != ref.shape or not np.allclose(got, ref, atol=1e-3, rtol=1e-3):
                wrong += 1
    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    missing = sum(1 for rid in range(len(latencies)) if answers.get(rid) != 1)
    return len(latencies) / elapsed, latencies, wrong, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,bert")
    parser.add_argument("--backends", default="ember,eager")
    parser.add_argument("--layouts", default="1x2,2x1", help="replicas x threads, ...")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--requests", type=int, default=300, help="per measurement, at most")
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement, at most")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    args = parser.parse_args(argv)
    import ray
    from ray import serve
    from ember.serving import build_app

    info = machine_info()
    print(f"# ember serving load test on {info['cpu']} ({os.cpu_count()} cores; "
          f"{' '.join(info['isa'])}), "
          f"Ray {ray.__version__}; one-row requests, closed-loop clients through a Serve "
          f"handle; batching: up to {args.max_batch} requests, {args.batch_wait_ms} ms wait")
    # Ray's workers (started by this process) import the eager replicas' model classes
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root, os.path.join(root, "examples"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"location": "NoServer"},    # handles only: no HTTP proxy
                logging_config={"enable_access_log": False, "log_level": "WARNING"})
    eager = _eager_server()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for name in args.models.split(","):
                model, path, inputs, expected = _compile(name, workdir)
                print(f"\n== {name}: {WORKLOADS[MODELS[name][0]].description}; request "
                      f"{list(MODELS[name][1])}")
                print(f"{'backend':<8}{'layout':<8}{'batching':<10}{'conc':>5}{'req/s':>9}"
                      f"{'p50 ms':>9}{'p99 ms':>9}{'wrong':>7}{'lost':>6}")
                for backend in args.backends.split(","):
                    for layout in args.layouts.split(","):
                        replicas, threads = (int(v) for v in layout.split("x"))
                        for max_batch in (1, args.max_batch):
                            extra = {"server": eager, "torch_model": model} \
                                if backend == "eager" else {}
                            app = build_app(path, replicas=replicas, threads=threads,
                                            max_batch=max_batch,
                                            batch_wait_ms=args.batch_wait_ms, name=backend,
                                            **extra)
                            handle = serve.run(app, name="load", route_prefix=None)
                            for x in inputs[:4]:                       # warm up
                                handle.infer.remote({"x": x}).result()
                            for concurrency in (int(c) for c in args.concurrency.split(",")):
                                rate, lat, wrong, lost = asyncio.run(_load(
                                    handle, inputs, expected, concurrency, args.requests,
                                    args.seconds))
                                row = dict(model=name, backend=backend, layout=layout,
                                           batching=max_batch > 1, concurrency=concurrency,
                                           rate=rate, p50=statistics.median(lat),
                                           p99=float(np.percentile(lat, 99)), wrong=wrong,
                                           lost=lost)
                                rows.append(row)
                                print(f"{backend:<8}{layout:<8}"
                                      f"{'on' if row['batching'] else 'off':<10}"
                                      f"{concurrency:>5}{rate:>9.1f}{row['p50']:>9.2f}"
                                      f"{row['p99']:>9.2f}{wrong:>7}{lost:>6}", flush=True)
                            serve.delete("load")
                _summary(rows, name)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 1 if any(r["wrong"] or r["lost"] for r in rows) else 0


def _summary(rows, name: str) -> None:
    """The ratios at the highest concurrency, each backend at its best layout: batching's
    throughput gain, its p99 against the same load served one request at a time and against
    one request's latency (concurrency 1, no batching), ember against eager."""
    mine = [r for r in rows if r["model"] == name]
    top = max(r["concurrency"] for r in mine)

    def best(backend, batching, concurrency=top):
        found = [r for r in mine if r["backend"] == backend and r["batching"] == batching and
                 r["concurrency"] == concurrency]
        return max(found, key=lambda r: r["rate"]) if found else None

    on, off, single = best("ember", True), best("ember", False), best("ember", False, 1)
    if on and off:
        print(f"# {name}, concurrency {top}: ember with batching {on['rate']:.1f} req/s "
              f"({on['layout']}) vs without {off['rate']:.1f} ({off['layout']}): "
              f"{on['rate'] / off['rate']:.2f}x; p99 {on['p99']:.1f} ms vs {off['p99']:.1f} ms "
              f"without batching ({on['p99'] / off['p99']:.2f}x)" +
              (f", {on['p99'] / single['p50']:.1f}x one request's latency ({single['p50']:.1f}"
               f" ms at concurrency 1)" if single else ""))
    for backend in ("ember", "eager"):
        for layout in sorted({r["layout"] for r in mine}):
            pair = [next((r for r in mine if r["backend"] == backend and r["layout"] == layout
                          and r["concurrency"] == top and r["batching"] == b), None)
                    for b in (True, False)]
            if all(pair):
                print(f"#   {backend} {layout}: batching {pair[0]['rate'] / pair[1]['rate']:.2f}x "
                      f"throughput, p99 {pair[0]['p99'] / pair[1]['p99']:.2f}x")
    for batching in (True, False):
        mine_best, eager = best("ember", batching), best("eager", batching)
        if mine_best and eager:
            print(f"# {name}, concurrency {top}, batching {'on' if batching else 'off'}: ember "
                  f"{mine_best['rate']:.1f} req/s vs eager PyTorch {eager['rate']:.1f}: "
                  f"{mine_best['rate'] / eager['rate']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
