"""`ember`: inspect, verify and benchmark compiled artifacts from the shell.

    ember info mlp.ember              inputs, outputs, dynamic dims, constants, target
    ember verify mlp.ember            checks every file's sha256 against the manifest
    ember bench mlp.ember [-s s0=64]  times `run` at the given (default: maximum) sizes
"""
from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    from ember.artifact.store import read_manifest
    m = read_manifest(args.artifact)
    print(f"artifact  {args.artifact}  (ember {m['ember_version']}, format {m['format_version']})")
    print(f"target    {m['target']}")
    for role in ("inputs", "outputs"):
        for t in m[role]:
            extra = f"  max {t['max_shape']}" if "max_shape" in t else ""
            print(f"{role[:-1]:<9} {t['name']}: {t['dtype']}{t['shape']}{extra}")
    for name, r in m["symbols"].items():
        print(f"dim       {name} in [{r['min']}, {r['max']}]")
    bound = [c for c in m["constants"] if c.get("bound")]
    print(f"constants {len(m['constants'])} ({len(bound)} bound in {m['weights']})")
    return 0


def _verify(args) -> int:
    from ember.artifact.store import read_manifest
    read_manifest(args.artifact, verify=True)
    print(f"{args.artifact}: all files match their sha256")
    return 0


def _bench(args) -> int:
    from ember.runtime import load
    symbols = dict((k, int(v)) for k, v in (s.split("=", 1) for s in args.symbol))
    model = load(args.artifact)
    stats = model.benchmark(count=args.runs, warmup=args.warmup, symbols=symbols or None)
    print(f"median {stats['median_ms']:.3f} ms  (min {stats['min_ms']:.3f}, "
          f"max {stats['max_ms']:.3f}, {stats['count']} runs)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_ in (("info", _info, "describe an artifact"),
                            ("verify", _verify, "check an artifact's file hashes"),
                            ("bench", _bench, "time an artifact's run")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("artifact")
        p.set_defaults(fn=fn)
        if name == "bench":
            p.add_argument("-s", "--symbol", action="append", default=[],
                           help="dynamic dim value, e.g. s0=64 (default: its maximum)")
            p.add_argument("--runs", type=int, default=50)
            p.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError) as e:
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
