"""Force one FastConv algorithm, or parallel kernels, in a test (shared by the kernel test
files)."""
import contextlib

import minidl
from minidl import _kernels

# test name -> ConvPlan.algorithm ('numpy': the NumPy fallback, compiled kernels off)
PATHS = {"im2col": "gemm_batched", "images": "gemm_images", "direct": "direct_grouped",
         "1x1": "gemm_1x1", "packed": "gemm_packed", "winograd_2x2": "winograd_2x2",
         "winograd_4x4": "winograd_4x4", "numpy": None}


@contextlib.contextmanager
def forced_conv_path(path):
    """Every convolution planned inside runs ``path``; a geometry it cannot run is an error."""
    if path not in PATHS:
        raise ValueError(f"forced_conv_path: unknown path {path!r}; expected one of {list(PATHS)}")
    if path == "numpy":
        old = _kernels.use_compiled()
        _kernels.use_compiled(False)
        try:
            yield
        finally:
            _kernels.use_compiled(old)
    else:
        with _kernels.forced_algorithm(PATHS[path]):
            yield


@contextlib.contextmanager
def forced_parallel(threads=2):
    """Every OpenMP loop inside runs on ``threads`` threads, however small the shape."""
    old_work, old_threads = _kernels.get_parallel_min_work(), minidl.get_num_threads()
    _kernels.set_parallel_min_work(0)
    minidl.set_num_threads(threads)
    try:
        yield
    finally:
        _kernels.set_parallel_min_work(old_work)
        minidl.set_num_threads(old_threads)
