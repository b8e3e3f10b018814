"""Symbolic dimension expressions: the small language the artifact manifest uses for dynamic dims.

A dimension is an int or a string such as "s0", "2*s0" or "Max(s0, s1) + 1". The compiler writes
these strings (from torch.export's symbolic shapes) and the runtime evaluates them on every call,
so the grammar is deliberately tiny and parsed with `ast` into a checked tree, never `eval`ed:

    expr := int | symbol | expr (+ - * // %) expr | -expr | (expr) | Max(expr, ...) | Min(expr, ...)

`//` and `%` are floor division and modulo with Python's semantics (sympy's FloorDiv and Mod).
The module lives outside `ember.runtime` because both the artifact writer (to validate manifests
and derive output maximum shapes) and the runtime (to bind and evaluate shapes) need it.
"""
from __future__ import annotations

import ast
import operator
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple, Union

DimLike = Union[int, str]
Interval = Tuple[int, int]

_BINARY: Dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CALLS: Dict[str, Callable[..., int]] = {"Max": max, "Min": min}


class SymbolicError(ValueError):
    """A dimension expression outside the grammar, or one that cannot be evaluated or bounded."""


class Dim:
    """One parsed dimension: a constant, a bare symbol, or an expression over symbols."""

    __slots__ = ("text", "symbols", "_tree")

    def __init__(self, dim: DimLike):
        if isinstance(dim, bool) or not isinstance(dim, (int, str)):
            raise SymbolicError(f"a dimension must be an int or an expression string, got {dim!r}")
        self.text = str(dim)
        try:
            self._tree = ast.parse(self.text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise SymbolicError(f"dimension {self.text!r} does not parse: {exc.msg}") from None
        self.symbols: FrozenSet[str] = frozenset(_check(self._tree, self.text))

    @property
    def constant(self) -> Optional[int]:
        """The value when the dimension has no symbols, else None."""
        return None if self.symbols else self.evaluate({})

    @property
    def symbol(self) -> Optional[str]:
        """The symbol's name when the dimension is exactly one bare symbol, else None."""
        return self._tree.id if isinstance(self._tree, ast.Name) else None

    def evaluate(self, env: Mapping[str, int]) -> int:
        try:
            return _evaluate(self._tree, env)
        except KeyError as exc:
            raise SymbolicError(f"dimension {self.text!r}: symbol {exc.args[0]} is unbound") \
                from None
        except ZeroDivisionError:
            raise SymbolicError(f"dimension {self.text!r} divides by zero for {dict(env)}") \
                from None

    def bounds(self, ranges: Mapping[str, Interval]) -> Interval:
        """The (min, max) the dimension can take when each symbol ranges over `ranges`.

        Interval arithmetic: exact for sums and products of ranges, a valid (possibly loose)
        enclosure for `//`, `%`, Max and Min.
        """
        return _bounds(self._tree, ranges, self.text)

    def __repr__(self) -> str:
        return f"Dim({self.text!r})"


def format_shape(dims) -> str:
    """`[s0, 4]` for messages: the manifest's spelling of a shape."""
    return "[" + ", ".join(d.text if isinstance(d, Dim) else str(d) for d in dims) + "]"


def _check(node: ast.AST, text: str) -> set:
    """Validates `node` against the grammar and returns the symbols it uses."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return set()
    if isinstance(node, ast.Name) and node.id not in _CALLS:
        return {node.id}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _check(node.operand, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _check(node.left, text) | _check(node.right, text)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS
            and node.args and not node.keywords):
        return set().union(*(_check(arg, text) for arg in node.args))
    raise SymbolicError(f"dimension {text!r}: {ast.unparse(node)!r} is not allowed (use ints, "
                        f"symbols, + - * // %, parentheses, Max(...), Min(...))")


def _evaluate(node: ast.AST, env: Mapping[str, int]) -> int:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, env), _evaluate(node.right, env))
    return _CALLS[node.func.id](*(_evaluate(arg, env) for arg in node.args))


def _bounds(node: ast.AST, ranges: Mapping[str, Interval], text: str) -> Interval:
    if isinstance(node, ast.Constant):
        return node.value, node.value
    if isinstance(node, ast.Name):
        if node.id not in ranges:
            raise SymbolicError(f"dimension {text!r}: symbol {node.id} has no declared range")
        return ranges[node.id]
    if isinstance(node, ast.UnaryOp):
        lo, hi = _bounds(node.operand, ranges, text)
        return (-hi, -lo) if isinstance(node.op, ast.USub) else (lo, hi)
    if isinstance(node, ast.Call):
        parts = [_bounds(arg, ranges, text) for arg in node.args]
        fn = _CALLS[node.func.id]
        return fn(lo for lo, _ in parts), fn(hi for _, hi in parts)
    (alo, ahi), (blo, bhi) = _bounds(node.left, ranges, text), _bounds(node.right, ranges, text)
    op = type(node.op)
    if op is ast.Add:
        return alo + blo, ahi + bhi
    if op is ast.Sub:
        return alo - bhi, ahi - blo
    if op is not ast.Mult and blo <= 0 <= bhi:
        raise SymbolicError(f"dimension {text!r}: divisor {ast.unparse(node.right)!r} may be zero")
    if op is ast.Mod:  # the result has the divisor's sign and is smaller than it in magnitude
        return (0, bhi - 1) if blo > 0 else (blo + 1, 0)
    # Products and floor quotients are monotone in each argument on these intervals (the divisor
    # interval excludes zero), so the extremes lie at the corners.
    corners = [_BINARY[op](a, b) for a in (alo, ahi) for b in (blo, bhi)]
    return min(corners), max(corners)
