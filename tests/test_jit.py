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
