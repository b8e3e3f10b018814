"""Requests to an artifact, checked one by one and run together: what a server replica does
between its network and ember's runtime, with no serving engine in it (ember.serving.deployment
puts it behind Ray Serve).

A request is a set of named input arrays (a mapping, or a sequence in the artifact's input
order; JSON nested lists from HTTP). `ModelRunner.check` validates one against the artifact the
way a run would (names, dtypes, shapes, dynamic dims within their ranges) and refuses a request
with more rows than the artifact's batch dim allows, so a bad request fails alone, with ember's
message, before it can join a batch. `ModelRunner.run` runs checked requests: those whose shapes
agree beyond the batch dim are concatenated along it, in chunks the artifact's maximum admits,
and the outputs are split back, so every caller gets exactly its own rows.

The batch dim is dim 0 when every input and every output has the same symbol there (`s0` with
its declared range); an artifact without one runs each request on its own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ember.runtime.errors import ArgumentError, ArgumentTypeError
from ember.tensor_spec import numpy_dtype


class RequestTooLarge(ArgumentError):
    """A request has more rows along the batch dim than the artifact's maximum."""


@dataclass(frozen=True)
class BatchDim:
    """The artifact's batch dim: dim 0 of every input and output, `symbol` in [1, max_rows]."""
    symbol: str
    max_rows: int


def batch_dim(manifest: Mapping) -> Optional[BatchDim]:
    """The batch dim of an artifact's manifest, or None when it has none (static shapes, or
    dim 0 not one shared symbol with a finite maximum)."""
    entries = list(manifest["inputs"]) + [o for o in manifest["outputs"]
                                          if not o.get("writes_back")]
    leading = {str(e["shape"][0]) if e["shape"] else None for e in entries}
    if len(leading) != 1:
        return None
    symbol = leading.pop()
    bounds = manifest.get("symbols", {}).get(symbol)
    if bounds is None or bounds.get("max") is None:
        return None
    return BatchDim(symbol, int(bounds["max"]))


@dataclass
class RunnerStats:
    """What a runner has run: `requests` answered, in `calls` to the model holding `rows`
    rows in all (rows per call: how full dynamic batches are), `model_cpu_seconds` of CPU
    time of the thread making those calls (a runtime with several threads: its workers' time
    is not in it)."""
    requests: int = 0
    calls: int = 0
    rows: int = 0
    model_cpu_seconds: float = 0.0

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


class ModelRunner:
    """Checks and runs requests on one loaded `ember.runtime.Model` (see the module
    docstring)."""

    def __init__(self, model, execute=None):
        """`execute(inputs by name) -> outputs by name` runs one merged call (default: the
        artifact's code; a benchmark serves the same model with eager PyTorch through it)."""
        self.model = model
        self.execute = execute or self._run_model
        manifest = model.manifest
        self.batch = batch_dim(manifest)
        self.input_names = model.get_input_names()
        self.output_names = [o["name"] for o in manifest["outputs"] if not o.get("writes_back")]
        self._dtypes = {e["name"]: numpy_dtype(e["dtype"]) for e in manifest["inputs"]}
        self.stats = RunnerStats()

    # -- one request --------------------------------------------------------------------
    def from_json(self, inputs: Any) -> Dict[str, np.ndarray]:
        """A request's inputs from JSON (a mapping of name to nested lists of numbers), as
        arrays of the artifact's dtypes; ArgumentError says what is wrong."""
        if not isinstance(inputs, Mapping):
            raise ArgumentError(f"'inputs' must be an object mapping input names "
                                f"{self.input_names} to arrays, got {type(inputs).__name__}")
        arrays = {}
        for name, value in inputs.items():
            if name not in self._dtypes:
                raise ArgumentError(f"unknown input {name!r}; the model takes "
                                    f"{self.input_names}")
            try:
                arrays[name] = np.asarray(value, dtype=self._dtypes[name])
            except (ValueError, TypeError) as e:
                raise ArgumentError(f"input {name!r} is not a rectangular array of numbers "
                                    f"of dtype {self._dtypes[name]}: {e}") from None
        return arrays

    def check(self, inputs: Any) -> Dict[str, np.ndarray]:
        """One request's inputs (a mapping by name or a sequence in input order, of numpy
        arrays) checked as a run would check them; returns them by name."""
        if isinstance(inputs, Mapping):
            given = dict(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) != len(self.input_names):
                raise ArgumentError(f"expected {len(self.input_names)} inputs "
                                    f"{self.input_names}, got {len(inputs)}")
            given = dict(zip(self.input_names, inputs))
        else:
            raise ArgumentTypeError(f"a request is a dict of input arrays by name (or a list "
                                    f"in order {self.input_names}), got {type(inputs).__name__}")
        missing = [n for n in self.input_names if n not in given]
        extra = [n for n in given if n not in self.input_names]
        if missing or extra:
            raise ArgumentError(f"the model takes inputs {self.input_names}; "
                                + (f"missing {missing}" if missing else f"unknown {extra}"))
        if self.batch is not None:
            rows = {n: np.shape(v)[0] if np.ndim(v) else None for n, v in given.items()}
            too_many = {n: r for n, r in rows.items() if r is not None and
                        r > self.batch.max_rows}
            if too_many:
                name, count = next(iter(too_many.items()))
                raise RequestTooLarge(f"input {name!r} has {count} rows; this artifact takes at "
                                      f"most {self.batch.max_rows} ({self.batch.symbol} <= "
                                      f"{self.batch.max_rows}): split the request")
        self.model.output_shapes(given)     # dtypes, ranks, static and dynamic dims
        return given

    # -- checked requests ---------------------------------------------------------------
    def run(self, requests: Sequence[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
        """The outputs (by name) of each checked request, in order; requests that agree beyond
        the batch dim run together."""
        results: List[Optional[Dict[str, np.ndarray]]] = [None] * len(requests)
        for chunk in self._chunks(requests):
            merged = {n: np.concatenate([requests[i][n] for i in chunk])
                      if len(chunk) > 1 else requests[chunk[0]][n] for n in self.input_names}
            started = time.thread_time()
            outputs = self.execute(merged)
            self.stats.model_cpu_seconds += time.thread_time() - started
            self.stats.calls += 1
            self.stats.rows += self._rows(merged)
            start = 0
            for i in chunk:
                rows = self._rows(requests[i])
                results[i] = {n: o[start:start + rows] for n, o in outputs.items()}
                start += rows
        self.stats.requests += len(requests)
        return results

    def _chunks(self, requests) -> List[List[int]]:
        """Indices of the requests to run together: the same shapes beyond dim 0, at most
        the artifact's maximum rows in all; every request alone without a batch dim."""
        if self.batch is None:
            return [[i] for i in range(len(requests))]
        groups: Dict[tuple, List[List[int]]] = {}      # shapes beyond dim 0 -> chunks
        filled: Dict[tuple, int] = {}                   # rows in each group's last chunk
        for i, request in enumerate(requests):
            key = tuple((request[n].shape[1:], request[n].dtype.str) for n in self.input_names)
            rows = self._rows(request)
            if key not in groups or filled[key] + rows > self.batch.max_rows:
                groups.setdefault(key, []).append([])
                filled[key] = 0
            groups[key][-1].append(i)
            filled[key] += rows
        return [chunk for chunks in groups.values() for chunk in chunks]

    def _rows(self, request) -> int:
        return request[self.input_names[0]].shape[0]

    def _run_model(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        shapes = self.model.output_shapes(inputs)
        outputs = {spec: np.empty(shape, dtype=numpy_dtype(self.model.get_output_dtype(spec)))
                   for spec, shape in zip(self.model.get_output_names(), shapes)}
        self.model.run(inputs, outputs)
        return {n: outputs[n] for n in self.output_names}
