"""How often static int8 keeps the fp32 argmax of the benchmark CNN, for ember and for
PyTorch's own PT2E model quantized the same way (X86InductorQuantizer, same calibration).

    python benchmarks/int8_argmax.py [--inputs 256] [--method percentile] [--exclude RE]
                                     [--quantize-outputs] [--no-bias-correction]
                                     [--target host:cpu=haswell]

Prints the agreement, the cosine to fp32, the median gap between the fp32 top-1 and top-2
logits and the mean int8 logit error: with random weights the logits of the classes lie close
together, so the argmax is as fragile as that gap is small (256 inputs: one flip is 0.4%; use
--inputs 1024 to compare settings). The classifier's input (the pooled features) varies from
image to image by little against its range, which is why static mode leaves it in fp32 by
default (`--quantize-outputs` quantizes it too).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.models import WORKLOADS  # noqa: E402


def _cosine(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(),
                                                       b.flatten().double(), dim=0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=256)
    p.add_argument("--method", default="percentile",
                   choices=["minmax", "percentile", "entropy"])
    p.add_argument("--exclude", default="", help="regex of layers left in fp32 (e.g. ^stem)")
    p.add_argument("--quantize-outputs", action="store_true",
                   help="quantize the classifier too (Int8.quantize_outputs)")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false")
    p.add_argument("--target", default="host", help="ember target (e.g. host:cpu=haswell, "
                   "whose AVX2 kernels read 7-bit activation codes; PyTorch's model uses the "
                   "same codes)")
    args = p.parse_args(argv)
    import ember
    import ember.quant
    from ember.frontend.static_quantization import quantize_static
    from ember.targets import get_target
    model = WORKLOADS["cnn"].make_model(8)
    torch.manual_seed(3)
    calibration = [torch.randn(8, 3, 64, 64) for _ in range(4)]
    scheme = ember.quant.Int8(mode="static", calibration=calibration, method=args.method,
                               exclude=args.exclude, bias_correction=args.bias_correction,
                               quantize_outputs=args.quantize_outputs)
    target = get_target(args.target)
    compiled = ember.compile(model, (calibration[0],), quantize=scheme, target=target)
    pytorch_int8 = quantize_static(model, (calibration[0],), scheme,
                                   codes=target.static_activation_codes())
    torch.manual_seed(5)
    xs = torch.randn(args.inputs, 3, 64, 64)
    with torch.no_grad():
        ref, ours, theirs = (torch.cat([f(xs[i:i + 8]) for i in range(0, args.inputs, 8)])
                             for f in (model, compiled, pytorch_int8))
    top2 = ref.topk(2, dim=1).values
    for name, out in (("ember", ours), ("pytorch-pt2e", theirs)):
        print(f"{name:13s} argmax agreement {float((out.argmax(1) == ref.argmax(1)).float().mean()):.3f}"
              f"  cosine {_cosine(out, ref):.5f}  mean |logit error| "
              f"{float((out - ref).abs().mean()):.4f}")
    print(f"median fp32 top-1 - top-2 logit gap {float((top2[:, 0] - top2[:, 1]).median()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
