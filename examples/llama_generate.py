"""Greedy generation with a Llama-style decoder compiled by ember: RMSNorm, rotary embeddings,
SwiGLU and grouped-query attention, a KV cache with dynamic lengths, in fp32, bf16
(`model.to(torch.bfloat16)`) or with weight-only int8/int4 Linear weights.

The Hugging Face model is built from a config with random weights (no hub download); ember
compiles its prefill and decode step (examples/greedy_generation.py drives them) and the
tokens are compared with PyTorch's fp32 greedy generation:

    python examples/llama_generate.py --new-tokens 32                    # fp32, tiny
    python examples/llama_generate.py --size decode --quantize w4 --agreement 256

`--size decode` is the benchmark's decoder (338 MB of fp32 Linear weights read per token: a
batch-1 decode step bound by memory). `--agreement N` also reports the top-1 agreement with
PyTorch fp32 over N teacher-forced steps (each step fed PyTorch's token, so one early
difference does not decide the rest).
"""
from __future__ import annotations

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

import ember
import ember.quant
from greedy_generation import EmberGreedyGenerator, first_divergence, pytorch_greedy

#: size -> LlamaConfig arguments. "tiny" for tests (weights large enough that its greedy
#: tokens vary); "decode" for the decode-step benchmark: 6 layers of hidden 1024 / SwiGLU 2816,
#: 16 query and 4 key-value heads, a 16k vocabulary, Llama's default initializer (0.02; a
#: random network of larger weights is chaotic: any rounding of its weights, int8 included,
#: changes its tokens within a few steps, in PyTorch as in ember).
SIZES = {
    "tiny": dict(vocab_size=97, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3),
    "decode": dict(vocab_size=16384, hidden_size=1024, intermediate_size=2816,
                   num_hidden_layers=6, num_attention_heads=16, num_key_value_heads=4),
}
#: --quantize choices -> compile options.
SCHEMES = {"none": {}, "w8": dict(quantize=ember.quant.WeightOnly(bits=8, group_size=128)),
           "w4": dict(quantize=ember.quant.WeightOnly(bits=4, group_size=128))}


def llama(size: str = "tiny", seed: int = 0, max_positions: int = 512) -> LlamaForCausalLM:
    """A Llama-style causal LM of `size` (SIZES) with random weights."""
    config = LlamaConfig(max_position_embeddings=max_positions, attn_implementation="eager",
                         bos_token_id=None, eos_token_id=None, pad_token_id=None,
                         tie_word_embeddings=False, **SIZES[size])
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--quantize", choices=sorted(SCHEMES), default="none")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="convert the model (model.to(dtype)) before compiling")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--agreement", type=int, default=0, metavar="N",
                        help="also measure top-1 agreement over N teacher-forced steps")
    args = parser.parse_args()
    model = llama(args.size)
    prompt = [5, 17, 42, 8, 64, 3]
    length = len(prompt) + max(args.new_tokens, args.agreement)
    compiled_model = model if args.dtype == "float32" else \
        llama(args.size).to(getattr(torch, args.dtype))
    start = time.perf_counter()
    generator = EmberGreedyGenerator(compiled_model, max_length=length,
                                     **SCHEMES[args.quantize])
    print(f"compiled prefill + decode in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    ours = generator.generate(prompt, args.new_tokens)
    per_token = (time.perf_counter() - start) / args.new_tokens
    theirs = pytorch_greedy(model, prompt, args.new_tokens)
    print("ember  :", ours)
    print("pytorch:", theirs)
    where = first_divergence(ours, theirs)
    print(f"{1e3 * per_token:.2f} ms per token (prefill included); " +
          ("identical to PyTorch fp32" if where is None else f"first divergence at token {where}"))
    if args.agreement:
        reference = pytorch_greedy(model, prompt, args.agreement)
        predicted = generator.predictions(prompt, reference)
        agree = sum(a == b for a, b in zip(predicted, reference)) / len(reference)
        print(f"top-1 agreement with PyTorch fp32 over {len(reference)} teacher-forced steps: "
              f"{100 * agree:.1f}%")


if __name__ == "__main__":
    main()
