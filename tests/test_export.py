"""What ember.compile does with the module it is given: a module in train() mode is compiled as
in eval() with a warning and left exactly as it was; a dynamic dim declared without a max is
unbounded (with a warning), not an error; what forward returns (dicts, dataclasses, namedtuples,
constants, None) comes back with the same structure; a model turning tensor data into Python
numbers is retried under strict export, and refused with its line when that fails too."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import sys
from typing import Optional

import pytest
import torch

import ember
from ember.frontend import ExportError, UnsupportedOpsError
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


# -- what forward returns comes back with the same structure ---------------------------------

@dataclasses.dataclass
class Prediction:
    logits: torch.Tensor
    label: str
    extra: Optional[torch.Tensor] = None


Pair = collections.namedtuple("Pair", ["first", "second"])


class Structured(torch.nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return {
            "dict": lambda: {"y": y, "z": x * 2},
            "dataclass": lambda: Prediction(y, "cat"),
            "none": lambda: None,
            "constant": lambda: 3,
            "nested": lambda: (y, (7, None, [x + 1, "s"]), Pair(y * 3, 2.5)),
            "nested_dict": lambda: {"a": (y, None), 5: {"b": Prediction(x, "dog", y)}},
        }[self.kind]()


def _expect_same(result, expected):
    assert type(result) is type(expected), (result, expected)
    if isinstance(expected, torch.Tensor):
        assert_close(result, expected)
    elif isinstance(expected, dict):
        assert list(result) == list(expected)
        for key in expected:
            _expect_same(result[key], expected[key])
    elif isinstance(expected, (tuple, list)):
        assert len(result) == len(expected)
        for r, e in zip(result, expected):
            _expect_same(r, e)
    elif dataclasses.is_dataclass(expected):
        for f in dataclasses.fields(expected):
            _expect_same(getattr(result, f.name), getattr(expected, f.name))
    else:
        assert result == expected


@pytest.mark.parametrize("kind", ["dict", "dataclass", "none", "constant", "nested",
                                  "nested_dict"])
def test_outputs_keep_their_structure(kind, tmp_path):
    torch.manual_seed(2)
    model = Structured(kind).eval()
    compiled = ember.compile(model, (torch.randn(2, 4),))
    x = torch.randn(2, 4)
    with torch.no_grad():
        expected = model(x)
    _expect_same(compiled(x), expected)
    _expect_same(ember.runtime.load(compiled.save(str(tmp_path / kind)))(x), expected)


def test_missing_output_class_comes_back_as_a_dict(tmp_path, monkeypatch):
    model = Structured("dataclass").eval()
    path = ember.compile(model, (torch.randn(2, 4),)).save(str(tmp_path / "m"))
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["output_tree"]["dataclass"] == f"{__name__}:Prediction"
    monkeypatch.setattr(sys.modules[__name__], "Prediction", None)  # as in another process
    with pytest.warns(RuntimeWarning, match="comes back as a dict"):
        result = ember.runtime.load(path)(torch.randn(2, 4))
    assert set(result) == {"logits", "label", "extra"} and result["label"] == "cat"


# -- data-dependent Python scalars: strict export is tried before giving up ------------------

class FloatScale(torch.nn.Module):
    def forward(self, x):
        return x * x.max().item()


class IntScale(torch.nn.Module):
    def forward(self, x):
        return x * int(x.sum().item())


class DataBranch(torch.nn.Module):
    def forward(self, x):
        if x.sum().item() > 0:
            return x
        return -x


def test_float_item_compiles():
    x = torch.tensor([1.0, -2.0, 3.0])
    assert_close(ember.compile(FloatScale().eval(), (x,))(x), x * 3)


def test_int_of_a_tensor_is_retried_strict_and_refused_clearly():
    # Non-strict export fails on int(); strict export captures it, and torch-mlir then cannot
    # import the symbolic int: the error names .item() and this line.
    with pytest.raises(UnsupportedOpsError, match=r"aten.item at .*test_export.py:\d+.*"
                                                  r"Python number"):
        ember.compile(IntScale().eval(), (torch.ones(3),))


def test_data_dependent_branch_names_the_line():
    with pytest.raises(ExportError) as info:
        ember.compile(DataBranch().eval(), (torch.ones(3),))
    message = str(info.value)
    assert "test_export.py" in message and "if x.sum().item() > 0:" in message
    assert "strict export" in message
