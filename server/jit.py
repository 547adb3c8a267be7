"""Compiled kernels: the request path's arithmetic loops, compiled by numba.

Why numba (a dependency since the engine's serve target, docs/engine.md): a fresh
recommendation does dozens of numpy calls of 1-3 µs each on a few hundred numbers, and the
call overhead, not the arithmetic, is most of their cost (``bench/floor.py``). A loop compiled
by numba does the same work in one call of ~1 µs plus the arithmetic. Numba compiles plain
Python functions over numpy arrays (no C toolchain at install time, no hand-written C), and
it is maintained by the numba project (Anaconda), with wheels for every platform we run on.

Use::

    from server.jit import kernel

    @kernel("float64(float32[:], int64)")
    def head_sum(scores, n): ...

- Each kernel has ONE explicit signature: calling it with other dtypes raises a TypeError
  instead of silently compiling a second version (an int32 index array where int64 was meant
  is a bug to see, not a slow path).
- Compiled on first use, not at import: a process that never calls a kernel (the builder,
  the CLI) never imports numba. ``warm_serving()`` compiles the request path's kernels ahead
  (each serving worker does it at start-up, in a thread, so that no request waits for a
  compilation).
- Machine code is cached on disk (numba's ``cache=True``: the module's ``__pycache__``, or
  ``NUMBA_CACHE_DIR`` when set, or a per-user folder when that is read-only): a worker that
  starts after the first one loads them in a fraction of a second.
- ``nogil=True``: a kernel releases the GIL, so one running in a thread (the builder, the
  threaded writer) does not stall the event loop.
- ``boundscheck=True``: an index out of range raises IndexError, as in numpy, instead of
  reading or writing past the array (a broken model or a bug must fail one recommender's
  answer, which the slot survives, never corrupt the worker). It costs nothing measurable
  here (a fresh request 335 / 319 µs without, 343 / 318 with).
- A kernel may call other kernels (shared compiled helpers: e.g. one call per slot that
  blends, then selects, with the same code as the kernels that do each alone): when it is
  compiled, the module globals it names that are kernels are handed to numba as their
  compiled dispatchers, and numba compiles the call into it (no Python in between). Their
  signatures hold there too: numba converts only what is safe (an array's layout to ``[:]``,
  not its dtype). numba's disk cache keys a kernel by its own file only, so a cached caller
  would keep an old copy of a helper changed in another file: the source and signature of
  every helper it calls (and of theirs) are part of its cache tag (``_tag``).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import threading
import types
import time
from typing import Callable

__all__ = ["kernel", "warm", "kernels"]

_lock = threading.RLock()   # (re-entered: compiling a kernel compiles the helpers it calls)
_ALL: list["Kernel"] = []
OPTIONS = {"cache": True, "nogil": True, "boundscheck": True}
# numba's disk cache is keyed by the function's name, file and signature, not by these options:
# the tag, part of the name the cache files are named after, keeps code compiled with other
# options from being loaded
_TAG = "o" + hashlib.sha1(repr(sorted(OPTIONS.items())).encode()).hexdigest()[:8]


def _names(code: types.CodeType):
    """The global names ``code`` (and the functions defined inside it) may read."""
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _names(c)


def helpers(fn: Callable) -> dict[str, "Kernel"]:
    """The kernels ``fn`` calls: its module's globals that it names and that are kernels."""
    g = fn.__globals__
    return {n: g[n] for n in sorted(set(_names(fn.__code__))) if isinstance(g.get(n), Kernel)}


def _tag(fn: Callable) -> str:
    """The cache tag of a kernel of ``fn``: ``_TAG`` (the options), and when it calls helpers,
    a digest of each one's signature and source, and of its own helpers' (numba checks only the
    caller's file: a helper changed elsewhere would otherwise be served from the old cache)."""
    seen: dict[str, str] = {}
    todo = list(helpers(fn).values())
    while todo:
        k = todo.pop()
        name = f"{k.py.__module__}.{k.py.__qualname__}"
        if name in seen:
            continue
        try:
            text = inspect.getsource(k.py)
        except (OSError, TypeError):   # (no source file: its bytecode)
            text = repr(k.py.__code__.co_code)
        seen[name] = f"{k.signature}\n{text}"
        todo += helpers(k.py).values()
    if not seen:
        return _TAG
    return _TAG + "h" + hashlib.sha1(repr(sorted(seen.items())).encode()).hexdigest()[:8]


def _tagged(fn: Callable) -> Callable:
    """``fn`` (a copy: a plain function may back two kernels) with its cache tag (``_tag``) in
    its qualified name, and the kernels it calls as their compiled dispatchers in its globals
    (a copy of its module's: the module keeps its ``Kernel`` objects)."""
    calls = helpers(fn)
    glob = {**fn.__globals__, **{n: k.compile() for n, k in calls.items()}} if calls else fn.__globals__
    tagged = types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__)
    tagged.__qualname__, tagged.__module__, tagged.__doc__ = f"{fn.__qualname__}.{_tag(fn)}", fn.__module__, fn.__doc__
    return tagged


class Kernel:
    """A function compiled by numba on first call (or by ``warm``), with one signature.

    ``unchecked`` (None until compiled): the compiled function called without numba's dispatch,
    which types every argument to find the signature (~17 ns an argument, warm): the arguments
    are unboxed as the signature says, and only an array's item size is checked (a wrong ndim
    or layout is read as if right: a 2-d array where a 1-d one is expected writes past numba's
    struct). For a caller with many arguments whose types are the signature's by construction
    (``blend._fused``'s ``slot_select_2``/``_4``: ~50-75 arguments), the call without the checks;
    any other caller calls the kernel."""
    unchecked = None

    def __init__(self, fn: Callable, signature: str):
        self.py, self.signature, self.compiled = fn, signature, None
        functools.update_wrapper(self, fn)

    def compile(self):
        """The compiled dispatcher (compiled, or loaded from the disk cache, once per process)."""
        c = self.compiled
        if c is None:
            with _lock:
                c = self.compiled
                if c is None:
                    import numba
                    c = numba.njit(self.signature, **OPTIONS)(_tagged(self.py))
                    self.unchecked = c.overloads[c.signatures[0]].entry_point
                    self.compiled = c
        return c

    def __call__(self, *args):
        c = self.compiled
        if c is None:
            c = self.compile()
        return c(*args)

    def __repr__(self) -> str:
        return f"<kernel {self.py.__module__}.{self.py.__name__} {self.signature}>"


def kernel(signature: str) -> Callable[[Callable], Kernel]:
    """Decorator: ``fn`` compiled with numba for exactly ``signature`` (numba's string form,
    e.g. ``"int64(int32[:, :], float32[:])"``), on first use."""
    def wrap(fn: Callable) -> Kernel:
        k = Kernel(fn, signature)
        _ALL.append(k)
        return k
    return wrap


def kernels() -> list[Kernel]:
    """Every kernel defined so far (their modules imported)."""
    return list(_ALL)


def warm() -> float:
    """Compile (or load from the disk cache) every kernel defined so far; seconds spent."""
    t0 = time.perf_counter()
    for k in kernels():
        k.compile()
    return time.perf_counter() - t0


def warm_serving() -> float:
    """``warm`` with every module of the request path imported (its kernels registered): the
    serving module and every registered recommender."""
    import importlib

    t0 = time.perf_counter()
    importlib.import_module("server.serving")
    importlib.import_module("server.recommenders.registry").load_all()
    warm()
    return time.perf_counter() - t0


if __name__ == "__main__":   # python -m server.jit: fill the disk cache ahead (.ci/setup, a deploy step)
    from server import jit as _jit   # (this file runs as __main__: the kernels register in server.jit)
    took = _jit.warm_serving()
    print(f"{len(_jit.kernels())} kernels compiled or loaded from the cache in {took:.1f} s")
