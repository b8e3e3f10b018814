"""Artifacts are written atomically: `compile(workdir=...)` and `save()` build beside the
destination and rename into place, so a failure (here a full disk, injected) leaves the
previous artifact intact and loadable, and no half-written directory anywhere."""
from __future__ import annotations

import errno
import os

import pytest
import torch

import ember
from compare import assert_close
from ember.artifact import store


class Tiny(torch.nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)
        with torch.no_grad():
            self.fc.weight.mul_(scale)

    def forward(self, x):
        return torch.relu(self.fc(x))


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _entries(folder) -> list:
    return sorted(os.listdir(folder))


@pytest.fixture
def models():
    torch.manual_seed(0)
    return Tiny(1.0).eval(), Tiny(3.0).eval(), torch.randn(2, 8)


def test_failed_recompile_keeps_the_previous_artifact(models, tmp_path, monkeypatch):
    first, second, x = models
    workdir = str(tmp_path / "model.ember")
    ember.compile(first, (x,), workdir=workdir)
    monkeypatch.setattr(store, "save_weights", _full_disk)
    with pytest.raises(OSError, match="No space left"):
        ember.compile(second, (x,), workdir=workdir)
    assert _entries(tmp_path) == ["model.ember"]            # no partial directory left over
    with torch.no_grad():
        assert_close(ember.load(workdir)(x), first(x))


def test_recompile_replaces_the_artifact(models, tmp_path):
    first, second, x = models
    workdir = str(tmp_path / "model.ember")
    ember.compile(first, (x,), workdir=workdir)
    ember.compile(second, (x,), workdir=workdir)
    assert _entries(tmp_path) == ["model.ember"]
    with torch.no_grad():
        assert_close(ember.load(workdir)(x), second(x))


def test_save_is_all_or_nothing(models, tmp_path, monkeypatch):
    first, _, x = models
    compiled = ember.compile(first, (x,))
    target = str(tmp_path / "saved.ember")
    with monkeypatch.context() as patch:
        patch.setattr("shutil.copyfile", _full_disk)
        with pytest.raises(OSError, match="No space left"):
            compiled.save(target)
    assert _entries(tmp_path) == []
    compiled.save(target)
    with torch.no_grad():
        assert_close(ember.load(target)(x), first(x))
    with pytest.raises(FileExistsError):
        compiled.save(target)
