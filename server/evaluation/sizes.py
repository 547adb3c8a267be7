"""Approximate memory of a fitted model: numpy / scipy buffers plus containers, followed deeply."""
from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp


def deep_nbytes(obj, _seen: set | None = None, _depth: int = 0) -> int:
    seen = _seen if _seen is not None else set()
    if obj is None or id(obj) in seen or _depth > 8:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.base is None or id(obj.base) not in seen else 0
    if sp.issparse(obj):
        return sum(deep_nbytes(getattr(obj, a, None), seen, _depth + 1) for a in ("data", "indices", "indptr", "row", "col"))
    if isinstance(obj, (str, bytes, int, float, bool)):
        return sys.getsizeof(obj)
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(deep_nbytes(k, seen, _depth + 1) + deep_nbytes(v, seen, _depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + sum(deep_nbytes(v, seen, _depth + 1) for v in obj)
    total = sys.getsizeof(obj)
    if hasattr(obj, "__dict__"):
        total += deep_nbytes(vars(obj), seen, _depth + 1)
    for s in getattr(type(obj), "__slots__", ()):
        total += deep_nbytes(getattr(obj, s, None), seen, _depth + 1)
    return total
