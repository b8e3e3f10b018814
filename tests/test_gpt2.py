"""A GPT-2-style decoder (Hugging Face, random weights) with a KV cache: prefill + decode."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from compare import assert_close  # noqa: E402
from gpt2_generate import tiny_gpt2  # noqa: E402
from greedy_generation import (DecodeStep, EmberGreedyGenerator, Prefill,  # noqa: E402
                               pytorch_greedy)

PROMPT = [5, 17, 42, 8, 64, 3]


@pytest.fixture(scope="module")
def model():
    return tiny_gpt2()


@pytest.fixture(scope="module")
def generator(model):
    return EmberGreedyGenerator(model, max_length=64)


def test_prefill_and_decode_match_pytorch(model, generator):
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        expected = Prefill(model)(ids)
    got = generator.prefill(ids)
    assert_close(got, expected, what="prefill output")
    with torch.no_grad():
        expected_step = DecodeStep(model)(torch.tensor([[7]]), torch.tensor([[len(PROMPT)]]),
                                          *expected[1:])
    got_step = generator.decode(torch.tensor([[7]]), torch.tensor([[len(PROMPT)]]), *got[1:])
    assert got_step[1].shape[2] == len(PROMPT) + 1  # the cache grew by one token
    assert_close(got_step, expected_step, what="decode output")


def test_greedy_tokens_identical_to_pytorch(model, generator):
    ours = generator.generate(PROMPT, 32)
    assert ours == pytorch_greedy(model, PROMPT, 32)
    assert len(set(ours)) > 3  # a meaningful sequence, not one repeated token


def test_too_long_generation_is_refused(generator):
    with pytest.raises(ValueError, match="maximum length"):
        generator.generate(PROMPT, 64)
