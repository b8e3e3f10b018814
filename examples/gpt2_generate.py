"""Greedy generation with a GPT-2-style decoder compiled by ember, with a KV cache.

The Hugging Face model is built from a config (random weights, no hub download); ember compiles
its prefill and its single-token decode step, and examples/greedy_generation.py drives them
(prefill, then one decode step per new token, the cache growing by one token per step).

    python examples/gpt2_generate.py --new-tokens 32
"""
from __future__ import annotations

import argparse
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from greedy_generation import EmberGreedyGenerator, pytorch_greedy


def tiny_gpt2(layers: int = 2, hidden: int = 64, heads: int = 4, vocab: int = 97,
              positions: int = 128, seed: int = 0) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=hidden, n_layer=layers,
                        n_head=heads, attn_implementation="eager", bos_token_id=None,
                        initializer_range=0.3,  # large enough that greedy tokens vary
                        eos_token_id=None)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    model = tiny_gpt2()
    prompt = [5, 17, 42, 8, 64, 3]
    start = time.perf_counter()
    generator = EmberGreedyGenerator(model)
    print(f"compiled prefill + decode in {time.perf_counter() - start:.1f} s")
    ours = generator.generate(prompt, args.new_tokens)
    theirs = pytorch_greedy(model, prompt, args.new_tokens)
    print("ember  :", ours)
    print("pytorch:", theirs)
    print("identical" if ours == theirs else "DIFFERENT")
    if ours != theirs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
