"""The runtime's exceptions.

Every check the runtime makes before calling compiled code raises one of these instead of
letting a bad pointer or shape reach C, where it would crash the process or corrupt memory.
They subclass the builtin a caller would expect (ValueError for a wrong value, TypeError for a
wrong type or dtype), so generic handlers keep working.
"""


class EmberRuntimeError(Exception):
    """Base of every error the runtime raises while loading or running a model."""


class ArgumentError(EmberRuntimeError, ValueError):
    """An input, output or constant argument that does not fit the model: count, names, shape,
    symbol range, layout (contiguity, writability), device, or output buffer size."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong kind (not a numpy array or torch tensor) or the wrong dtype."""


class UnboundConstantError(EmberRuntimeError, RuntimeError):
    """A run was attempted while an unbound constant has not been set with `set_constant`."""


class ExecutionError(EmberRuntimeError, RuntimeError):
    """The compiled code returned a non-zero status."""


class IndexOutOfRangeError(ExecutionError, IndexError):
    """A value the model used as an index was out of range for the tensor it indexes (an
    Embedding id, a gather / index_select / x[idx] / scatter index): PyTorch's IndexError. The
    message names the op and its source line, the tensors, the value and the size."""


class DivisionByZeroError(ExecutionError, ZeroDivisionError):
    """An integer division or remainder (//, %, fmod) by zero: PyTorch's ZeroDivisionError."""
