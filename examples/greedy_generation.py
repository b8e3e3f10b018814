"""Greedy generation with a Hugging Face causal language model compiled by ember, KV cache
included: what examples/gpt2_generate.py and examples/llama_generate.py share.

ember compiles two functions of the model: the prefill (the prompt, dynamic length, no cache)
and the single-token decode step (dynamic cache length). `EmberGreedyGenerator` drives them:
prefill, then one decode step per new token, feeding each step's cache back. No fixed-size
padding: the cache grows by one token per step inside one compiled artifact. Compile options
(`quantize=ember.quant.WeightOnly(...)`, `precision="bf16"`) pass through to both functions; a
model converted with `model.to(torch.bfloat16)` keeps its dtype in the cache.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from transformers import DynamicCache

import ember


def _flatten_cache(cache) -> tuple:
    return tuple(t for layer in cache.layers for t in (layer.keys, layer.values))


class Prefill(torch.nn.Module):
    """input_ids [1, S] -> (logits [1, S, V], k0, v0, k1, v1, ...) each [1, H_kv, S, D]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, past_key_values=DynamicCache(), use_cache=True)
        return (out.logits,) + _flatten_cache(out.past_key_values)


class DecodeStep(torch.nn.Module):
    """(input_ids [1, 1], position_ids [1, 1], k0, v0, ... [1, H_kv, P, D]) -> (logits
    [1, 1, V], k0', v0', ... [1, H_kv, P + 1, D]): one token with the cache passed as plain
    tensors."""

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


def cache_shape(config, length: int) -> List[int]:
    """[1, key/value heads, length, head dim] of one layer's keys (or values)."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return [1, kv_heads, length, head_dim]


def example_cache(config, length: int, dtype=torch.float32) -> tuple:
    """Zero keys and values for every layer, `length` tokens long."""
    return tuple(torch.zeros(cache_shape(config, length), dtype=dtype)
                 for _ in range(2 * config.num_hidden_layers))


class EmberGreedyGenerator:
    """Compiles prefill and decode once; `generate` runs greedy decoding on them."""

    def __init__(self, model, max_length: int = 128, **compile_options):
        config = model.config
        self.max_length = max_length
        dtype = next(model.parameters()).dtype
        prompt = torch.export.Dim("prompt", min=2, max=max_length)
        self.prefill = ember.compile(Prefill(model), (torch.zeros(1, 4, dtype=torch.long),),
                                     dynamic_shapes={"input_ids": {1: prompt}},
                                     **compile_options)
        past = torch.export.Dim("past", min=1, max=max_length - 1)
        cache = example_cache(config, 4, dtype)
        self.decode = ember.compile(
            DecodeStep(model), (torch.zeros(1, 1, dtype=torch.long), torch.tensor([[4]]), *cache),
            dynamic_shapes={"input_ids": None, "position_ids": None,
                            "past": tuple({2: past} for _ in cache)},
            **compile_options)

    def _check_length(self, length: int) -> None:
        if length > self.max_length:
            raise ValueError(f"prompt + new tokens ({length}) exceed the compiled maximum "
                             f"length {self.max_length}")

    def generate(self, prompt: Sequence[int], new_tokens: int) -> List[int]:
        """`new_tokens` greedy tokens after `prompt`."""
        self._check_length(len(prompt) + new_tokens)
        logits, *cache = self.prefill(torch.tensor([list(prompt)]))
        tokens = [int(logits[0, -1].argmax())]
        position = len(prompt)
        while len(tokens) < new_tokens:
            ids = torch.tensor([[tokens[-1]]])
            logits, *cache = self.decode(ids, torch.tensor([[position]]), *cache)
            tokens.append(int(logits[0, -1].argmax()))
            position += 1
        return tokens

    def predictions(self, prompt: Sequence[int], continuation: Sequence[int]) -> List[int]:
        """Teacher forcing: the greedy token after the prompt and after each prefix of
        `continuation` fed back as the input, whatever this model predicted (how top-1
        agreement with another model's continuation is measured)."""
        self._check_length(len(prompt) + len(continuation))
        logits, *cache = self.prefill(torch.tensor([list(prompt)]))
        predicted = [int(logits[0, -1].argmax())]
        for position, token in enumerate(continuation[:-1], start=len(prompt)):
            logits, *cache = self.decode(torch.tensor([[token]]), torch.tensor([[position]]),
                                         *cache)
            predicted.append(int(logits[0, -1].argmax()))
        return predicted


def pytorch_greedy(model, prompt: Sequence[int], new_tokens: int) -> List[int]:
    """PyTorch's own greedy continuation (`model.generate`), the reference."""
    with torch.no_grad():
        out = model.generate(torch.tensor([list(prompt)]), max_new_tokens=new_tokens,
                             do_sample=False, attention_mask=torch.ones(1, len(prompt),
                                                                        dtype=torch.long))
    return out[0, len(prompt):].tolist()


def first_divergence(ours: Sequence[int], theirs: Sequence[int]):
    """The index of the first differing token, or None when the sequences agree."""
    return next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
