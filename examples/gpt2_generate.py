"""Greedy generation with a GPT-2-style decoder compiled by ember, with a KV cache.

ember compiles two functions of the Hugging Face model (built from a config, random weights, no
hub download): the prefill (the prompt, dynamic length, no cache) and the single-token decode
step (dynamic cache length). This wrapper drives them: prefill, then one decode step per new
token, feeding each step's cache back. No fixed-size padding: the cache grows by one token per
step inside one compiled artifact.

    python examples/gpt2_generate.py --new-tokens 32
"""
from __future__ import annotations

import argparse
import time
from typing import List, Sequence

import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

import ember


def tiny_gpt2(layers: int = 2, hidden: int = 64, heads: int = 4, vocab: int = 97,
              positions: int = 128, seed: int = 0) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=hidden, n_layer=layers,
                        n_head=heads, attn_implementation="eager", bos_token_id=None,
                        initializer_range=0.3,  # large enough that greedy tokens vary
                        eos_token_id=None)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def _flatten_cache(cache) -> tuple:
    return tuple(t for layer in cache.layers for t in (layer.keys, layer.values))


class Prefill(torch.nn.Module):
    """input_ids [1, S] -> (logits [1, S, V], k0, v0, k1, v1, ...) each [1, H, S, D]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, past_key_values=DynamicCache(), use_cache=True)
        return (out.logits,) + _flatten_cache(out.past_key_values)


class DecodeStep(torch.nn.Module):
    """(input_ids [1, 1], position_ids [1, 1], k0, v0, ... [1, H, P, D]) -> (logits [1, 1, V],
    k0', v0', ... [1, H, P + 1, D]): one token with the cache passed as plain tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, *past):
        cache = DynamicCache()
        for layer in range(len(past) // 2):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        out = self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=cache,
                         use_cache=True)
        return (out.logits,) + _flatten_cache(out.past_key_values)


class EmberGreedyGenerator:
    """Compiles prefill and decode once; `generate` runs greedy decoding on them."""

    def __init__(self, model: GPT2LMHeadModel, max_length: int = 128):
        config = model.config
        self.layers, self.max_length = config.n_layer, max_length
        heads, head_dim = config.n_head, config.n_embd // config.n_head
        prompt = torch.export.Dim("prompt", min=2, max=max_length)
        self.prefill = ember.compile(Prefill(model), (torch.zeros(1, 4, dtype=torch.long),),
                                     dynamic_shapes={"input_ids": {1: prompt}})
        past = torch.export.Dim("past", min=1, max=max_length - 1)
        example_cache = tuple(torch.zeros(1, heads, 4, head_dim) for _ in range(2 * self.layers))
        self.decode = ember.compile(
            DecodeStep(model),
            (torch.zeros(1, 1, dtype=torch.long), torch.tensor([[4]]), *example_cache),
            dynamic_shapes={"input_ids": None, "position_ids": None,
                            "past": tuple({2: past} for _ in example_cache)})

    def generate(self, prompt: Sequence[int], new_tokens: int) -> List[int]:
        if len(prompt) + new_tokens > self.max_length:
            raise ValueError(f"prompt + new tokens ({len(prompt) + new_tokens}) exceed the "
                             f"compiled maximum length {self.max_length}")
        logits, *cache = self.prefill(torch.tensor([list(prompt)]))
        tokens = [int(logits[0, -1].argmax())]
        position = len(prompt)
        while len(tokens) < new_tokens:
            ids = torch.tensor([[tokens[-1]]])
            logits, *cache = self.decode(ids, torch.tensor([[position]]), *cache)
            tokens.append(int(logits[0, -1].argmax()))
            position += 1
        return tokens


def pytorch_greedy(model: GPT2LMHeadModel, prompt: Sequence[int], new_tokens: int) -> List[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([list(prompt)]), max_new_tokens=new_tokens,
                             do_sample=False, attention_mask=torch.ones(1, len(prompt),
                                                                        dtype=torch.long))
    return out[0, len(prompt):].tolist()


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
