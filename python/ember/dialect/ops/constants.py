"""`ember.weight`: model constants, referred to by name."""
from __future__ import annotations

from typing import Optional

from ember.dialect.attributes import Bool, String
from ember.dialect.definition import ElementTypes, EmberOp
from ember.dialect.shapes import shape_of


class Weight(EmberOp):
    """A model constant, referred to by name. The data lives in the weights table (and in the
    artifact's weights.safetensors), never in the IR; the host code receives it as a bound
    argument at load time. Its type must be static: the table stores a fixed size."""
    op_name = "ember.weight"
    element_types = ElementTypes.ANY
    not_lowered = "ember-bind-weights turns each ember.weight into an argument of the host " \
                  "function, bound to the weights table's data at load time"

    name = String(doc='the weights-table key (e.g. "fc1.weight")')
    mutable = Bool(optional=True, doc="a buffer the model changes in place: the runtime writes "
                                      "its new value back after each run, so its value is "
                                      "known only at run time")

    @classmethod
    def defining(cls, value) -> Optional["Weight"]:
        """The weight defining `value`, if it is a compile-time constant: a `mutable` one is
        not, so the passes that fold, merge or repack weights never see it."""
        op = super().defining(value)
        return None if op is None or op.mutable else op

    def verify(self) -> Optional[str]:
        shape = shape_of(self.result)
        if shape is None or any(d is None for d in shape):
            return "weight must have a static ranked tensor type"
        if not self.name:
            return "weight name must not be empty"
        return None
