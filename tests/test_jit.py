"""server/jit.py: kernels compiled on first use, one signature each, warmed ahead."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from server import jit


@jit.kernel("float64(float32[:], int64)")
def _head_sum(x, n):
    t = 0.0
    for i in range(min(n, len(x))):
        t += x[i]
    return t


def test_a_kernel_computes_what_its_python_does():
    x = np.arange(10, dtype=np.float32)
    assert _head_sum(x, 4) == 6.0 == _head_sum.py(x, 4)
    assert _head_sum.compiled is not None


def test_a_kernel_refuses_other_dtypes_instead_of_compiling_again():
    with pytest.raises(TypeError):
        _head_sum(np.arange(10, dtype=np.float64), 4)


def test_warm_compiles_every_kernel_and_importing_does_not_load_numba():
    code = ("import sys; from server import jit; from server.placements import blend; "
            "assert 'numba' not in sys.modules, 'numba imported at import time'; "
            "jit.warm(); assert all(k.compiled is not None for k in jit.kernels()); print(len(jit.kernels()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr



def test_python_m_server_jit_fills_the_cache_of_the_request_path():
    out = subprocess.run([sys.executable, "-m", "server.jit"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "kernels compiled or loaded from the cache" in out.stdout


@jit.kernel("float32(float32[::1], int64)")
def _at(x, i):
    return x[i]


def test_an_index_out_of_range_raises_instead_of_reading_past_the_array():
    x = np.arange(4, dtype=np.float32)
    assert _at(x, 3) == 3.0
    with pytest.raises(IndexError):
        _at(x, 4)
    with pytest.raises(IndexError):
        _at(x, 1 << 40)


def test_the_disk_cache_is_per_option_set():
    """numba names its cache files after the function: the options' tag is in that name, so code
    compiled with other options (e.g. without bounds checks) is never loaded."""
    c = _at.compile()
    assert c.py_func.__qualname__.endswith("." + jit._TAG) and c.targetoptions["boundscheck"]
    assert _at.__name__ == "_at" and _at.py.__qualname__ == "_at"


@jit.kernel("int64(int64[:], int64)")
def _twice_at(x, i):
    return 2 * x[i]


@jit.kernel("int64(int64[::1])")
def _sum_twice(x):
    t = 0
    for i in range(len(x)):
        t += _twice_at(x, i)   # a helper kernel: compiled into this one (a C-contiguous array to [:])
    return t


def test_a_kernel_calls_a_helper_kernel_compiled_into_it():
    x = np.arange(5, dtype=np.int64)
    assert _sum_twice(x) == 20 == _sum_twice.py(x)
    assert jit.helpers(_sum_twice.py) == {"_twice_at": _twice_at}
    # its cache tag names its helpers' code; a kernel without helpers keeps the options' tag
    assert _sum_twice.compile().py_func.__qualname__.startswith("_sum_twice." + jit._TAG + "h")
    assert jit._tag(_twice_at.py) == jit._TAG


def test_a_helpers_change_changes_its_callers_cache_tag(monkeypatch):
    before = jit._tag(_sum_twice.py)
    other = jit.kernel("int64(int64[:], int64)")(lambda x, i: 3 * x[i])
    monkeypatch.setitem(_sum_twice.py.__globals__, "_twice_at", other)
    assert jit._tag(_sum_twice.py) != before


_HELPER = '''
from server.jit import kernel

@kernel("int64(int64)")
def helper(n):
    return n + {add}
'''
_CALLER = '''
from server.jit import kernel
from {pkg}.helper import helper

@kernel("int64(int64)")
def caller(n):
    return helper(n) * 10
'''


def test_a_cached_caller_is_not_served_with_an_old_helper(tmp_path):
    """The disk cache end to end: a helper in another file changes, its caller (whose own file
    did not) is compiled again instead of loaded with the old helper's code."""
    import os
    pkg = "jit_cache_probe"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "caller.py").write_text(_CALLER.format(pkg=pkg))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    code = f"from {pkg}.caller import caller; print(caller(1))"
    for add in (1, 2, 2):   # (the third run loads the second's cache)
        (tmp_path / pkg / "helper.py").write_text(_HELPER.format(add=add))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [str((1 + add) * 10)]
    assert any((tmp_path / "cache").rglob("*.nbi"))
