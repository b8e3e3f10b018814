"""The cost of ember-runtime-checks (indices, integer divisors, torch-mlir's asserts checked as
the model runs): one workload compiled with and without the pass, timed alternately in one
process (rounds in both orders), medians and their ratio.

    python benchmarks/runtime_checks_cost.py                       # BERT-style encoder, batch 8
    python benchmarks/runtime_checks_cost.py --workload mlp --size 256
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    from benchmarks.models import WORKLOADS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="bert", choices=sorted(WORKLOADS))
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per round")
    args = parser.parse_args(argv)

    import ember
    workload = WORKLOADS[args.workload]
    model, inputs = workload.make_model(args.size).eval(), workload.make_inputs(args.size)
    compiled = {"checked": ember.compile(model, list(inputs)),
                "unchecked": ember.compile(model, list(inputs),
                                           disabled_passes=("ember-runtime-checks",))}
    times = {name: [] for name in compiled}
    for fn in compiled.values():
        for _ in range(5):
            fn(*inputs)
    for round_ in range(args.rounds):
        order = list(compiled) if round_ % 2 == 0 else list(reversed(compiled))
        for name in order:
            for _ in range(args.runs):
                start = time.perf_counter()
                compiled[name](*inputs)
                times[name].append((time.perf_counter() - start) * 1e3)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.workload} size {args.size}: checked {median['checked']:.2f} ms, unchecked "
          f"{median['unchecked']:.2f} ms, ratio {median['checked'] / median['unchecked']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
