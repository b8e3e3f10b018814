"""What ember.compile does with the module it is given: a module in train() mode is compiled as
in eval() with a warning and left exactly as it was; a dynamic dim declared without a max is
unbounded (with a warning), not an error."""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close


class WithDropout(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.drop = torch.nn.Dropout(0.5)
        self.norm = torch.nn.BatchNorm1d(8)

    def forward(self, x):
        return self.norm(self.drop(self.fc(x)))


def test_train_mode_is_warned_about_and_left_unchanged():
    torch.manual_seed(0)
    model = WithDropout().train()
    model.norm.eval()                               # a mix of modes must come back as it was
    modes = {name: m.training for name, m in model.named_modules()}
    with pytest.warns(UserWarning, match=r"train\(\) mode"):
        compiled = ember.compile(model, (torch.randn(4, 8),))
    assert {name: m.training for name, m in model.named_modules()} == modes
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = model.eval()(x)
    assert_close(compiled(x), expected)


def test_eval_mode_gives_no_warning(recwarn):
    ember.compile(WithDropout().eval(), (torch.randn(4, 8),))
    assert not [w for w in recwarn if "train() mode" in str(w.message)]


def test_dim_without_max_is_unbounded():
    torch.manual_seed(1)
    model = torch.nn.Linear(8, 4).eval()
    batch = torch.export.Dim("batch")                 # no max, as torch.export allows
    with pytest.warns(UserWarning, match="has no declared max"):
        compiled = ember.compile(model, (torch.randn(3, 8),), dynamic_shapes={"input": {0: batch}})
    x = torch.randn(37, 8)
    with torch.no_grad():
        assert_close(compiled(x), model(x))
