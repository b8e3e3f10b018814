"""`ember`: compile, run, inspect, verify and benchmark artifacts from the shell.

    ember compile model.pt2 -o mlp.ember [--target T] [--quantize w4] [--precision bf16]
    ember compile mlp_block:MLPBlock --input x=4x512:float32 --dynamic x:0=1..64 -o mlp.ember
    ember explain mlp_block:MLPBlock --input x=4x512:float32   the fused graph, kernels, lines
    ember profile mlp_block:MLPBlock --input x=4x512:float32 [--json p.json --chart p.html]
    ember profile mlp.ember [-s s0=64]    (an artifact compiled with `ember compile --profile`)
    ember run mlp.ember --input x=x.npy [--output-dir out/]
    ember cache info | clear          the compile cache (EMBER_CACHE_DIR)
    ember serve mlp.ember [--replicas 2 --threads 1 --max-batch 16 --port 8000]  Ray Serve
    ember info mlp.ember              inputs, outputs, dynamic dims, constants, target
    ember verify mlp.ember            checks every file's sha256 against the manifest
    ember bench mlp.ember [-s s0=64]  times `run` at the given (default: maximum) sizes

`ember compile` takes a program saved with `torch.export.save` (its example inputs and dynamic
dims come with it) or a Python reference `module:factory` (`factory()` returns the model, or
(model, example inputs)), importable from the current directory; `--input` gives example
inputs by name (random values of that shape and dtype) and `--dynamic` dynamic dims with their
range.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional


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


#: --quantize choices -> the ember.quant scheme they stand for.
QUANTIZE_CHOICES = ("int8", "w8", "w4")


def _scheme(name: Optional[str]):
    import ember.quant
    if name is None:
        return None
    return ember.quant.Int8() if name == "int8" else \
        ember.quant.WeightOnly(bits=int(name[1]))


def _tensor_spec(text: str):
    """"x=4x512:float32" -> ("x", a random tensor of that shape and dtype)."""
    import torch
    name, _, spec = text.partition("=")
    shape_text, _, dtype = spec.partition(":")
    if not name or not all(d.isdigit() for d in shape_text.split("x")):
        raise ValueError(f"--input {text!r}: expected NAME=D0xD1...[:dtype], e.g. x=4x512:float32")
    shape = [int(d) for d in shape_text.split("x")]
    kind = getattr(torch, dtype or "float32", None)
    if not isinstance(kind, torch.dtype):
        raise ValueError(f"--input {text!r}: unknown dtype {dtype!r}")
    value = torch.randn(shape).to(kind) if kind.is_floating_point else \
        torch.randint(0, 2, shape, dtype=kind)
    return name, value


def _dynamic(texts, names):
    """["x:0=1..64"] -> torch.export dynamic_shapes by input name (one Dim per NAME:DIM)."""
    import torch
    shapes = {name: None for name in names}
    for text in texts:
        where, _, bounds = text.partition("=")
        name, _, dim = where.partition(":")
        low, _, high = bounds.partition("..")
        if name not in shapes or not dim.isdigit() or not low.isdigit() or not high.isdigit():
            raise ValueError(f"--dynamic {text!r}: expected INPUT:DIM=MIN..MAX with INPUT one of "
                             f"{list(shapes)}, e.g. x:0=1..64")
        shapes[name] = dict(shapes[name] or {}, **{dim: torch.export.Dim(
            f"{name}_{dim}", min=int(low), max=int(high))})
        shapes[name] = {int(k): v for k, v in shapes[name].items()}
    return shapes if any(shapes.values()) else None


def _load_model(args):
    """(model, example inputs, dynamic shapes) from a .pt2 file or a module:factory."""
    import importlib
    import torch
    if args.model.endswith(".pt2"):
        from ember.frontend.fx_dims import export_dims
        program = torch.export.load(args.model)
        if args.input or args.dynamic:
            raise ValueError("a .pt2 program brings its own example inputs and dynamic dims; "
                             "--input and --dynamic are for module:factory")
        if not program.example_inputs:
            raise ValueError(f"{args.model} holds no example inputs (save it from torch.export "
                             f"with torch >= 2.6)")
        inputs = program.example_inputs[0]
        values = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"
                  and n.name in program.graph_signature.user_inputs]
        specs, dynamic = export_dims(values, program.graph_signature.user_inputs)
        return program.module(), tuple(inputs), (tuple(specs) if dynamic else None)
    module_name, _, factory = args.model.partition(":")
    if not factory:
        raise ValueError(f"model {args.model!r}: expected a .pt2 file or module:factory")
    sys.path.insert(0, os.getcwd())
    made = getattr(importlib.import_module(module_name), factory)()
    model, inputs = made if isinstance(made, tuple) else (made, None)
    given = [_tensor_spec(t) for t in args.input]
    if given:
        inputs = tuple(v for _, v in given)
    if inputs is None:
        raise ValueError(f"{args.model} returned a model without example inputs: give them "
                         f"with --input NAME=SHAPE[:dtype]")
    names = [n for n, _ in given] or [f"arg{i}" for i in range(len(inputs))]
    dynamic = _dynamic(args.dynamic, names)
    return model.eval(), tuple(inputs), (tuple(dynamic[n] for n in names) if dynamic else None)


def _compile(args) -> int:
    import ember
    model, inputs, dynamic = _load_model(args)
    compiled = ember.compile(model, inputs, target=args.target, dynamic_shapes=dynamic,
                             quantize=_scheme(args.quantize), precision=args.precision,
                             dump_dir=args.dump_dir, profile=args.profile)
    compiled.save(args.output)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in compiled.compile_timings.items()
                        if isinstance(v, (int, float)))
    print(f"compiled {args.model} -> {args.output} ({timings})")
    return 0


def _explain(args) -> int:
    from ember.compiler import explain
    model, inputs, dynamic = _load_model(args)
    print(explain(model, inputs, target=args.target, dynamic_shapes=dynamic,
                  quantize=_scheme(args.quantize), precision=args.precision))
    return 0


def _profile(args) -> int:
    """Profiles an artifact directory (a profile build) on random inputs of the given (default:
    maximum) sizes, or compiles a profile build of a model and profiles it on its example
    inputs; prints the table and writes the JSON and chart asked for."""
    if os.path.isdir(args.model):
        from ember.runtime import load
        if args.input or args.dynamic:
            raise ValueError("an artifact is profiled on random inputs of its maximum sizes "
                             "(or --symbol values); --input and --dynamic are for models")
        symbols = dict((k, int(v)) for k, v in (s.split("=", 1) for s in args.symbol))
        report = load(args.model).profile(runs=args.runs, warmup=args.warmup,
                                          symbols=symbols or None)
    else:
        import ember
        model, inputs, dynamic = _load_model(args)
        compiled = ember.compile(model, inputs, target=args.target, dynamic_shapes=dynamic,
                                 quantize=_scheme(args.quantize), precision=args.precision,
                                 profile=True)
        report = compiled.profile(*inputs, runs=args.runs, warmup=args.warmup)
    print(report.table(top=args.top))
    for path, write in ((args.json, report.save_json), (args.chart, report.save_chart)):
        if path:
            print(f"wrote {write(path)}")
    return 0


def _run(args) -> int:
    import numpy as np
    import torch
    from ember.runtime import load
    model = load(args.artifact)
    given = dict(text.split("=", 1) for text in args.input)
    names = model.get_input_names()
    if sorted(given) != sorted(names):
        raise ValueError(f"--input names {sorted(given)} must be the artifact's inputs {names}")
    outputs = [torch.empty(model.get_output_maximum_shape(i),
                           dtype=getattr(torch, model.get_output_dtype(i)))
               for i in range(len(model.get_output_names()))]
    results = model.run_with_tensors([torch.from_numpy(np.load(given[n])) for n in names],
                                     outputs)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for name, value in zip(model.get_output_names(), results):
        array = value.float().numpy() if value.is_floating_point() else value.numpy()
        if args.output_dir:
            np.save(os.path.join(args.output_dir, f"{name}.npy"), array)
        print(f"{name}: {array.dtype}{list(array.shape)}  min {array.min():.6g}  max "
              f"{array.max():.6g}  mean {array.mean():.6g}")
    return 0


def _serve(args) -> int:
    try:
        from ember.serving.deployment import run_server
    except ImportError as e:
        raise ValueError(f"ember serve runs on Ray Serve: pip install 'ember[serve]' ({e})") \
            from None
    run_server(args.artifact, host=args.host, port=args.port, address=args.address,
               replicas=args.replicas, threads=args.threads, max_batch=args.max_batch,
               batch_wait_ms=args.batch_wait_ms)
    return 0


def _cache(args) -> int:
    from ember.artifact import cache
    if args.action == "clear":
        removed = cache.evict(0)
        print(f"removed {removed} cached artifact(s) from {cache.cache_dir()}")
        return 0
    listed = cache.entries()
    total = sum(e["bytes"] for e in listed)
    print(f"cache     {cache.cache_dir()}  ({'on' if cache.enabled() else 'off: EMBER_CACHE=0'})")
    print(f"entries   {len(listed)}, {total / 2**20:.1f} MiB of "
          f"{int(os.environ.get(cache.SIZE_VARIABLE, cache.DEFAULT_SIZE_MB))} MiB")
    for entry in listed[::-1]:
        print(f"  {entry['key'][:16]}  {entry['bytes'] / 2**20:8.1f} MiB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_ in (("compile", _compile, "compile a .pt2 program or a module:factory"),
                            ("explain", _explain, "show the fused graph, its kernels and the "
                                                  "source lines they come from"),
                            ("profile", _profile, "time each kernel of a model or of a profile "
                                                  "build's artifact")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("model", help="program.pt2 (torch.export.save) or module:factory" +
                       (", or an artifact directory" if name == "profile" else ""))
        if name == "compile":
            p.add_argument("-o", "--output", required=True,
                           help="the artifact directory to write")
            p.add_argument("--dump-dir", help="keep every stage's IR here")
            p.add_argument("--profile", action="store_true",
                           help="compile per-kernel timers in (for `ember profile`)")
        if name == "profile":
            p.add_argument("-s", "--symbol", action="append", default=[],
                           help="an artifact's dynamic dim value, e.g. s0=64 (default: max)")
            p.add_argument("--runs", type=int, default=20)
            p.add_argument("--warmup", type=int, default=3)
            p.add_argument("--top", type=int, default=None, help="print only the slowest N")
            p.add_argument("--json", help="write the profile as JSON here")
            p.add_argument("--chart", help="write a chart here (.png, or .html with the table)")
        p.add_argument("--target", default="host")
        p.add_argument("--input", action="append", default=[],
                       help="example input NAME=D0xD1[:dtype] (module:factory), repeatable")
        p.add_argument("--dynamic", action="append", default=[],
                       help="dynamic dim INPUT:DIM=MIN..MAX (module:factory), repeatable")
        p.add_argument("--quantize", choices=QUANTIZE_CHOICES,
                       help="int8 (dynamic int8), w8 / w4 (weight-only, groups of 128)")
        p.add_argument("--precision", choices=("bf16", "fp16"), help="implicit 16-bit weights")
        p.set_defaults(fn=fn)
    p = sub.add_parser("cache", help="show or clear the compile cache")
    p.add_argument("action", choices=("info", "clear"))
    p.set_defaults(fn=_cache)
    p = sub.add_parser("serve", help="serve an artifact over HTTP on Ray Serve (ember[serve])")
    p.add_argument("artifact")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="runtime threads (CPUs) per replica")
    p.add_argument("--max-batch", type=int, default=16,
                   help="requests merged along the batch dim (1: no batching)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--address", help="an existing Ray cluster's address (default: start one)")
    p.set_defaults(fn=_serve)
    p = sub.add_parser("run", help="run an artifact on .npy inputs")
    p.add_argument("artifact")
    p.add_argument("--input", action="append", default=[], help="NAME=file.npy, repeatable")
    p.add_argument("--output-dir", help="write each output as NAME.npy here")
    p.set_defaults(fn=_run)
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
