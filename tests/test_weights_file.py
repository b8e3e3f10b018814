"""weights.safetensors keeps every tensor 64-byte aligned (ember.artifact.weights_file): the
kernels' 64-byte vector and tile loads of a weight must not straddle two cache lines. The file
stays plain safetensors: the safetensors library reads it, and the runtime skips the gap
entries."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import ember
from ember.artifact.weights_file import ALIGN_PAD, WEIGHTS_ALIGN, save_weights
from compare import assert_close


def _offsets(path):
    """name -> (byte offset of its data from the file's start, entry) for every tensor."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return {name: (8 + size + e["data_offsets"][0], e) for name, e in header.items()}


def test_every_tensor_starts_aligned_and_reads_back(tmp_path):
    arrays = {"bias": np.arange(10, dtype=np.float32),          # 40 bytes: the rest shifts
              "codes": np.arange(-3, 3, dtype=np.int8).reshape(2, 3),
              "flags": np.array([True, False, True]),
              "half": np.ones((3, 5), np.float16),
              "empty": np.zeros((0, 4), np.float32),
              "scalar": np.array(2.5, np.float32),                  # shape [], not [1]
              "wide": np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],   # not contiguous
              "words": np.arange(7 * 32, dtype=np.int32).reshape(7, 32)}
    path = str(tmp_path / "w.safetensors")
    save_weights(path, arrays, {"format": "test"})
    offsets = _offsets(path)
    for name in arrays:
        assert offsets[name][0] % WEIGHTS_ALIGN == 0, (name, offsets[name])
    loaded = load_file(path)
    pads = {name for name in loaded if name.startswith(ALIGN_PAD)}
    assert pads and set(loaded) - pads == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
    assert all(not loaded[name].any() for name in pads)


def test_reserved_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_weights(str(tmp_path / "w.safetensors"),
                     {ALIGN_PAD + "0": np.zeros(3, np.float32)}, {})


def test_compiled_artifact_binds_aligned_weights(tmp_path):
    """A 10-wide layer's bias (40 bytes) ahead of the other weights: all still aligned, and
    the artifact computes what the model does."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 10), torch.nn.ReLU(),
                                torch.nn.Linear(10, 24)).eval()
    x = torch.randn(4, 16)
    artifact = ember.compile(model, (x,)).save(str(tmp_path / "m"))
    path = os.path.join(artifact, "weights.safetensors")
    offsets = _offsets(path)
    bound = [name for name in offsets if not name.startswith(ALIGN_PAD)]
    assert len(bound) >= 3
    assert all(offsets[name][0] % WEIGHTS_ALIGN == 0 for name in bound), offsets
    with torch.no_grad():
        assert_close(ember.load(artifact)(x), model(x))
