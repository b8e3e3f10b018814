"""The weights table: every model constant by name, outside the IR.

The IR refers to constants only through `ember.weight {name}`; the arrays live here, are
rewritten by compile-time folding (`derive`), and are written to the artifact's
weights.safetensors. A table may be *abstract* (no data, as in `ember-opt` on a bare .mlir file):
passes then still rewrite the IR and name the derived entries, and the data is simply absent.
"""
from __future__ import annotations

from typing import Callable, Dict, Hashable, Iterable, List, Optional

import numpy as np


#: Suffixes of the entries holding a parameter's user-supplied low-bit codes
#: (`ember.quant.WeightOnly(weights=...)`), in ember's [K, N] layout: "<param>#codes" etc.
PROVIDED_CODES = ("#codes", "#scale", "#offset")


class WeightTable:
    def __init__(self, arrays: Optional[Dict[str, np.ndarray]] = None):
        self._arrays: Dict[str, Optional[np.ndarray]] = dict(arrays or {})
        self._derived: Dict[Hashable, str] = {}
        self._sources: Dict[str, List[str]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def __len__(self) -> int:
        return len(self._arrays)

    def names(self) -> List[str]:
        return list(self._arrays)

    def get(self, name: str) -> Optional[np.ndarray]:
        """The array of `name`, or None when the table holds no data for it."""
        return self._arrays.get(name)

    def add(self, name: str, array: Optional[np.ndarray]) -> None:
        self._arrays[name] = None if array is None else np.require(array, requirements="C")

    def unique_name(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._arrays:
            name = f"{hint}.{n}"
            n += 1
        return name

    def derive(self, hint: str, fn: Callable[..., np.ndarray], sources: Iterable[str],
               key: Optional[Hashable] = None) -> str:
        """Adds `fn(*source arrays)` under a new name built from `hint` and returns the name.

        With any source missing (an abstract table) the new entry is abstract too. A `key`
        identifying the computation makes a repeated derivation return the first one's name
        instead of storing the same data twice.
        """
        if key is not None and self._derived.get(key) in self._arrays:
            return self._derived[key]
        sources = list(sources)
        arrays = [self._arrays.get(s) for s in sources]
        name = self.unique_name(hint)
        self._sources[name] = sources
        self._arrays[name] = None if any(a is None for a in arrays) else \
            np.require(fn(*arrays), requirements="C")
        if key is not None:
            self._derived[key] = name
        return name

    def provided_codes(self, name: str) -> Optional[tuple]:
        """The user-supplied low-bit (codes [K, N], scales, offsets or None) of weight `name`
        when it is the plain transpose of a parameter [N, K] given them (a Linear's weight
        after ember-fold-constants), else None. Checked on the data, so a weight derived any
        other way never takes codes meant for its source."""
        sources = self._sources.get(name, [])
        if len(sources) != 1 or sources[0] + PROVIDED_CODES[0] not in self._arrays:
            return None
        derived, source = self._arrays.get(name), self._arrays.get(sources[0])
        if derived is None or source is None or derived.shape != source.T.shape or \
                not np.array_equal(derived, source.T):
            return None
        return tuple(self._arrays.get(sources[0] + suffix) for suffix in PROVIDED_CODES)

    def retain(self, used: Iterable[str]) -> None:
        """Drops every entry not in `used` (constants folded away or never referenced)."""
        keep = set(used)
        self._arrays = {k: v for k, v in self._arrays.items() if k in keep}

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values() if a is not None)
