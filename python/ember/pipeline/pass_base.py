"""How an ember pass is declared, registered and given its context.

A pass is a small dataclass in the style of xDSL's: a class attribute `name` (its pipeline flag,
e.g. `ember-fuse-epilogue`), typed dataclass fields that are its options (filled from
`ember-fuse-epilogue{residual=false}`), and a docstring whose first line is its `--help` text.
`@register` adds it to the one registry that ember-opt, pipelines and Python all read.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Mapping, Optional, Type

from ember.pipeline.target_info import TargetInfo
from ember.weights import WeightTable


@dataclass
class PassContext:
    """What a pass may read or change besides the IR: the weights table and target facts
    (`target`, a TargetInfo: None when nothing gave one, and a pass that needs facts says so).

    `bound_weights` records, per function, the weight names ember-bind-weights turned into
    trailing arguments (in order), which is how the artifact learns its constants' order.
    """
    weights: WeightTable = field(default_factory=WeightTable)
    target: Optional[TargetInfo] = None
    bound_weights: Dict[str, List[str]] = field(default_factory=dict)

    def require_target(self, pass_name: str) -> TargetInfo:
        """The target facts, for a pass that cannot work without them."""
        if self.target is None:
            raise ValueError(f"{pass_name} needs target facts: run it in a target's stages, or "
                             f"with ember-opt --target=<host|aarch64|cuda|rocm[:options]>")
        return self.target


class EmberPass:
    """Base of every ember pass: subclasses are dataclasses with a `name` and `run`."""
    name: ClassVar[str] = ""

    def run(self, module, ctx: PassContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def options(cls):
        return dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> "EmberPass":
        """Builds the pass from `key=value` strings, converting each to its field's type."""
        known = {f.name.replace("_", "-"): f for f in cls.options()}
        kwargs = {}
        for key, text in options.items():
            if key not in known:
                valid = ", ".join(sorted(known)) or "none"
                raise PassOptionError(f"pass '{cls.name}' has no option '{key}' (options: {valid})")
            f = known[key]
            kwargs[f.name] = _convert_option(cls.name, key, text, f.type)
        return cls(**kwargs)

    def pipeline_text(self) -> str:
        """This pass with its non-default options, as a pipeline element."""
        parts = []
        for f in self.options():
            value = getattr(self, f.name)
            if value != f.default:
                shown = str(value).lower() if isinstance(value, bool) else str(value)
                parts.append(f"{f.name.replace('_', '-')}={shown}")
        return self.name + ("{" + " ".join(parts) + "}" if parts else "")


class PassOptionError(ValueError):
    """A pipeline named an option a pass does not have, or gave it a bad value."""


def parse_option_value(text: str, type_name) -> object:
    """An option's text (from a pipeline or a target string) as its field's type: bool (a bare
    key means true), int, float or str. Raises ValueError naming the expected type."""
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if type_name == "bool":
            if text.lower() not in ("true", "false", "1", "0", "on", "off", ""):
                raise ValueError(text)
            return text.lower() in ("true", "1", "on", "")
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
        return text
    except ValueError:
        raise ValueError(f"expects {type_name}, got '{text}'") from None


def _convert_option(pass_name: str, key: str, text: str, type_name) -> object:
    try:
        return parse_option_value(text, type_name)
    except ValueError as e:
        raise PassOptionError(f"pass '{pass_name}': option '{key}' {e}") from None


#: name -> pass class; filled by @register as the pass modules are imported.
REGISTRY: Dict[str, Type[EmberPass]] = {}


def register(cls: Type[EmberPass]) -> Type[EmberPass]:
    """Registers a pass class under its `name` (once)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no pipeline name")
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"pass name '{cls.name}' registered twice")
    REGISTRY[cls.name] = cls
    return cls

