"""This machine's memory bandwidth, STREAM style: the ceiling a memory-bound decode step is
measured against (`python benchmarks/memory_bandwidth.py [--threads N] [--mb 1024]`).

Three kernels on float32 arrays far larger than the caches, each run with PyTorch's OpenMP
threads (torch parallelizes large copies and reductions), timed as medians of repeated runs:

    copy   b[:] = a         counts 2 x size (STREAM's convention: read a, write b)
    scale  b[:] = s * a     counts 2 x size
    read   sum(a)           counts 1 x size: the pattern of a GEMV's weight stream

A decode step's weight traffic is one read per weight per token, so "read" is its ceiling;
"copy" is the figure STREAM publishes. Prints GB/s (1e9 bytes per second).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def _median_seconds(fn, repeats: int) -> float:
    fn()                                                    # first touch, page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(megabytes: int = 1024, threads: int = 0, repeats: int = 11) -> dict:
    """GB/s of the copy, scale and read kernels on arrays of `megabytes` each."""
    if threads:
        torch.set_num_threads(threads)
    n = megabytes * (1 << 20) // 4
    a = torch.rand(n)
    b = torch.empty(n)
    size = a.numel() * a.element_size()
    kernels = {
        "copy": (lambda: b.copy_(a), 2 * size),
        "scale": (lambda: torch.mul(a, 3.0, out=b), 2 * size),
        "read": (lambda: a.sum(), size),
    }
    return {name: traffic / _median_seconds(fn, repeats) / 1e9
            for name, (fn, traffic) in kernels.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default (all cores)")
    parser.add_argument("--mb", type=int, default=1024, help="MiB per array")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    result = measure(args.mb, args.threads, args.repeats)
    print(f"{torch.get_num_threads()} threads, {args.mb} MiB arrays: " +
          ", ".join(f"{name} {gbs:.1f} GB/s" for name, gbs in result.items()))


if __name__ == "__main__":
    main()
