"""ember's runtime: load a compiled artifact and run it (AITemplate's Model API).

    model = ember.runtime.load("out/mlp")
    y = model(x)                                  # allocate outputs, return them
    shapes = model.run({"x": x}, {"y": y_max})    # caller-allocated (max-shape) outputs
"""
from ember.artifact.store import ArtifactError
from ember.runtime.errors import (ArgumentError, ArgumentTypeError, DivisionByZeroError,
                                  EmberRuntimeError, ExecutionError, IndexOutOfRangeError,
                                  UnboundConstantError)
from ember.runtime.model import Model

__all__ = ["Model", "load", "ArtifactError", "EmberRuntimeError", "ArgumentError",
           "ArgumentTypeError", "UnboundConstantError", "ExecutionError", "IndexOutOfRangeError",
           "DivisionByZeroError"]


def load(path, **options) -> Model:
    """The artifact at `path` as a Model; `options` are Model's (num_threads, num_runtimes,
    verify, graph_mode)."""
    return Model(path, **options)
