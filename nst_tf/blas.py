"""numpy's (and scipy's) OpenBLAS held to one thread around the BLAS and LAPACK calls made between
TensorFlow ops: WCT's eigendecompositions, and L-BFGS-B's vector operations on the image's pixels.

OpenBLAS's worker threads spin while they wait for each other. When something else holds a core (a
training or another worker beside the run, TensorFlow's own pool still spinning after an op) they
wait for a thread that is not running, and a call that takes milliseconds takes seconds. Measured on
the 2-core AMD EPYC (2026-12-07, one other process busy): a 512 x 512 float64 `np.linalg.eigh` 0.20 s
on numpy's default two threads, 0.037 s on one (idle: 0.045 and 0.038 s); WCT's covariance powers
at 512 x 512 took 0.85-18 s per image with the default threads, 0.14 s on one, and an idle image
3.34 s against 3.07 s; L-BFGS 1.15x faster an iteration at 256 x 192 (bench/blas_threads.py).

threadpoolctl does this for any BLAS; the project needs it around two calls, so it calls OpenBLAS's
own `set_num_threads` through ctypes, and does nothing where the BLAS is not an OpenBLAS found in
/proc/self/maps (MKL, Accelerate, other systems).
"""

import contextlib
import ctypes
import functools
import sys
import threading

# (set, get) symbol pairs: numpy's and scipy's wheels (scipy-openblas, 64- and 32-bit integers), then
# a system OpenBLAS (64- and 32-bit integers).
SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_lock = threading.Lock()
_held = {"blocks": 0, "libs": [], "before": []}  # blocks open in any thread; what they changed


def openblas():
    """[(set_num_threads, get_num_threads)] of each OpenBLAS loaded in this process (numpy's, and
    scipy's once imported); [] where none is found. Looked up again when modules were imported
    since the last call (scipy's is loaded by its first import of scipy.linalg or scipy.optimize)."""
    return _loaded(len(sys.modules))


@functools.lru_cache(maxsize=1)
def _loaded(modules):
    try:
        with open("/proc/self/maps") as maps:
            fields = [line.split(None, 5) for line in maps if "openblas" in line]
    except OSError:
        return []
    paths = sorted({f[5].strip() for f in fields if len(f) == 6})
    return [functions for functions in map(_functions, paths) if functions]


@functools.cache
def _functions(path):
    """(set, get) of the OpenBLAS at `path`, or None."""
    if "openblas" not in path.rsplit("/", 1)[-1]:
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for set_name, get_name in SYMBOLS:
        if hasattr(lib, set_name) and hasattr(lib, get_name):
            return getattr(lib, set_name), getattr(lib, get_name)
    return None


@contextlib.contextmanager
def one_thread():
    """Inside the block, every OpenBLAS found runs on one thread; once the last block open in any
    thread ends, on as many as before the first began (OpenBLAS's setting is the process's)."""
    with _lock:
        if _held["blocks"] == 0:
            _held["libs"] = openblas()
            _held["before"] = [get() for _, get in _held["libs"]]
            for set_threads, _ in _held["libs"]:
                set_threads(1)
        _held["blocks"] += 1
    try:
        yield
    finally:
        with _lock:
            _held["blocks"] -= 1
            if _held["blocks"] == 0:
                for (set_threads, _), n in zip(_held["libs"], _held["before"]):
                    set_threads(n)
