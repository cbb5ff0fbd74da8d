"""One place that decides how many threads minidl's kernels and the BLAS use.

OpenMP (the compiled kernels) and the BLAS that NumPy ships are both set through
threadpoolctl, so ``set_num_threads(n)`` bounds every thread pool in the process. The
environment variable MINIDL_NUM_THREADS sets the default at import.
"""
import os

from threadpoolctl import ThreadpoolController

from . import _kernels

_controller = None
_num_threads = None


def _ctl():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def set_num_threads(n):
    """Use n threads in the compiled kernels (OpenMP) and in the BLAS."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _ctl().limit(limits=n)
    _kernels.set_omp_threads(n)
    _num_threads = n


def get_num_threads():
    """The number of threads minidl uses (set_num_threads, MINIDL_NUM_THREADS, or all cores)."""
    if _num_threads is not None:
        return _num_threads
    return _kernels.omp_max_threads() if _kernels.openmp_enabled() else (os.cpu_count() or 1)


def blas_info():
    """A list of dicts describing the BLAS/OpenMP libraries loaded in the process."""
    return [
        {k: info.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "filepath")}
        for info in _ctl().info()
    ]


def _init_from_env():
    value = os.environ.get("MINIDL_NUM_THREADS")
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"MINIDL_NUM_THREADS must be a positive integer, got {value!r}") from None
        set_num_threads(n)
