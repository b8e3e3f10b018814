"""The example model: a transformer MLP block, and the `make demo` script.

    Linear(512 -> 2048) -> GELU -> Linear(2048 -> 512) -> + input -> LayerNorm(512)

Run `python examples/mlp_block.py` (or `make demo`): compiles the block with ember for a dynamic
batch, checks it against PyTorch at several batch sizes and prints ember's latency beside
PyTorch eager's.
"""
from __future__ import annotations

import argparse
import time

import torch

import ember


class MLPBlock(torch.nn.Module):
    def __init__(self, hidden: int = 512, ffn: int = 2048):
        super().__init__()
        self.fc1 = torch.nn.Linear(hidden, ffn)
        self.fc2 = torch.nn.Linear(ffn, hidden)
        self.norm = torch.nn.LayerNorm(hidden)

    def forward(self, x):
        return self.norm(self.fc2(torch.nn.functional.gelu(self.fc1(x))) + x)


def _median_ms(fn, x, runs: int) -> float:
    # OpenMP worker threads (libomp for ember, libgomp for PyTorch) keep spinning ~0.2 s after
    # a parallel region; let the other runtime's threads go idle before timing this one.
    # Then warm up for a while, not a few calls: after that idle time the cores (and a small
    # batch's microsecond-long calls) need some milliseconds to come back to speed.
    time.sleep(0.3)
    warm_until = time.perf_counter() + 0.2
    while time.perf_counter() < warm_until:
        fn(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = MLPBlock().eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    start = time.perf_counter()
    compiled = ember.compile(model, (torch.randn(8, 512),), dynamic_shapes={"x": {0: batch}})
    print(f"compiled in {time.perf_counter() - start:.2f} s "
          f"(artifact: {compiled.artifact_dir})")
    print(f"{'batch':>6} {'max |err|':>10} {'ember ms':>10} {'torch ms':>10} {'ratio':>7}")
    for n in args.batches:
        x = torch.randn(n, 512)
        with torch.no_grad():
            expected = model(x)
            err = (compiled(x) - expected).abs().max().item()
            theirs = _median_ms(model, x, args.runs)
            ours = _median_ms(compiled, x, args.runs)
        status = "ok" if err <= 1e-4 else "MISMATCH"
        print(f"{n:>6} {err:>10.2e} {ours:>10.3f} {theirs:>10.3f} {ours / theirs:>6.2f}x {status}")
        if err > 1e-4:
            raise SystemExit(f"ember's output differs from PyTorch's at batch {n}")


if __name__ == "__main__":
    main()
