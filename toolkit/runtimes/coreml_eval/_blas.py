"""Run NumPy's BLAS single-threaded while the evaluator works.

The evaluator's matrix products are small (a 1x1 convolution of MobileNetV2 is a few
MFLOP). OpenBLAS splits each across all cores and spin-waits for its threads; when the
cores are busy with anything else, that made one product ~100x slower here (16x32 @
32x3136: 8 ms with 2 threads on a loaded 2-core machine, 0.08 ms with 1), and MobileNetV2
1.0/224 went from 60 to 500 ms per image. One thread is never much slower on an idle
machine. The thread count is restored afterwards; where no OpenBLAS is loaded (macOS
Accelerate, MKL) nothing changes.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager

_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_", "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
        "openblas_get_num_threads64_", "openblas_get_num_threads")
_cache: list = []


def _openblas():
    """(get, set) functions of the OpenBLAS NumPy loaded, or None."""
    if _cache:
        return _cache[0]
    found = None
    try:
        import numpy  # noqa: F401  (make sure its BLAS is loaded)

        with open("/proc/self/maps") as maps:
            fields = [line.split() for line in maps]
        paths = {f[-1] for f in fields
                 if len(f) >= 6 and "openblas" in f[-1].lower() and ".so" in f[-1]}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            get = next((getattr(lib, n) for n in _GET if hasattr(lib, n)), None)
            set_ = next((getattr(lib, n) for n in _SET if hasattr(lib, n)), None)
            if get and set_:
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                found = (get, set_)
                break
    except (OSError, ValueError, AttributeError):
        found = None
    _cache.append(found)
    return found


@contextmanager
def single_threaded_blas():
    funcs = _openblas()
    if funcs is None:
        yield
        return
    get, set_ = funcs
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)
