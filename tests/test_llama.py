"""A Llama-style decoder (Hugging Face, random weights: RMSNorm, rotary embeddings, SwiGLU,
grouped-query attention) with a KV cache, through examples/llama_generate.py: prefill and
decode match PyTorch, greedy tokens equal PyTorch's in fp32, and with weight-only int8/int4
Linear weights they equal PyTorch running the same dequantized weights (the kernels compute
the format exactly; how far the format itself moves a random network's tokens is reported by
`python examples/llama_generate.py --agreement N`, not asserted here)."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

import ember.quant  # noqa: E402
from compare import assert_close  # noqa: E402
from greedy_generation import (DecodeStep, EmberGreedyGenerator, Prefill,  # noqa: E402
                               example_cache, pytorch_greedy)
from llama_generate import llama  # noqa: E402
from test_weight_only import dequantized_model  # noqa: E402

PROMPT = [5, 17, 42, 8, 64, 3]


@pytest.fixture(scope="module")
def model():
    return llama("tiny")


@pytest.fixture(scope="module")
def generator(model):
    return EmberGreedyGenerator(model, max_length=64)


def test_prefill_and_decode_match_pytorch(model, generator):
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        expected = Prefill(model)(ids)
    got = generator.prefill(ids)
    assert got[1].shape[1] == model.config.num_key_value_heads      # grouped-query cache
    assert_close(got, expected, what="prefill output")
    step = (torch.tensor([[7]]), torch.tensor([[len(PROMPT)]]))
    with torch.no_grad():
        expected_step = DecodeStep(model)(*step, *expected[1:])
    got_step = generator.decode(*step, *got[1:])
    assert got_step[1].shape[2] == len(PROMPT) + 1
    assert_close(got_step, expected_step, what="decode output")


def test_greedy_tokens_identical_to_pytorch(model, generator):
    ours = generator.generate(PROMPT, 32)
    assert ours == pytorch_greedy(model, PROMPT, 32)
    assert len(set(ours)) > 3


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_only_tokens_equal_pytorch_on_the_same_weights(model, bits):
    scheme = ember.quant.WeightOnly(bits=bits, group_size=32)
    generator = EmberGreedyGenerator(model, max_length=48, quantize=scheme)
    reference = dequantized_model(model, scheme)
    decode_inputs = (torch.tensor([[7]]), torch.tensor([[9]]),
                     *(torch.randn(t.shape) for t in example_cache(model.config, 9)))
    with torch.no_grad():
        expected = DecodeStep(reference)(*decode_inputs)
    assert_close(generator.decode(*decode_inputs), expected, what="decode output")
    assert generator.generate(PROMPT, 32) == pytorch_greedy(reference, PROMPT, 32)


def test_bf16_model_follows_pytorch_bf16(model):
    """model.to(torch.bfloat16): the cache is bf16 too; teacher-forced top-1 predictions
    agree with PyTorch's bf16 model (both round to bf16 after every op, in different orders)."""
    half = llama("tiny").to(torch.bfloat16)
    generator = EmberGreedyGenerator(half, max_length=48)
    reference = pytorch_greedy(half, PROMPT, 32)
    predicted = generator.predictions(PROMPT, reference)
    agreement = sum(a == b for a, b in zip(predicted, reference)) / len(reference)
    assert agreement >= 0.9, (predicted, reference)
