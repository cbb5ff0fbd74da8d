"""minidl: a from-scratch deep-learning engine for learning and teaching CNNs.

NumPy layers with the coursework API (``minidl.layers``), compiled Cython + OpenMP kernels
(``minidl._kernels``), gradient checking (``minidl.gradcheck``), optimizers, a Solver,
modules and the lecture's architectures. See README.md for a tour.
"""
from ._command_startup import install_interrupt_hook as _install_interrupt_hook

_install_interrupt_hook()  # before the slow imports: Ctrl-C in them is one line, exit 130
del _install_interrupt_hook

from . import _kernels  # noqa: E402
from ._config import get_default_dtype, set_default_dtype
from ._kernels.convolution import (get_conv_algorithm, get_conv_autotune, set_conv_algorithm,
                                   set_conv_autotune)
from ._threads import blas_info, get_num_threads, set_num_threads

__version__ = "0.1.0"


def kernels_info():
    """Which convolution path runs, and with how many threads.

    Returns a dict: 'compiled' (the Cython kernels are built and imported), 'active' (they
    are used: compiled and not switched off), 'openmp' (built with OpenMP), 'path' (a short
    description), 'direct_kernels' (grouped/depthwise conv, pooling and batch-norm kernels),
    'per_image_gemm' (FastConv's per-image path, which needs SciPy's BLAS), 'gemm' (minidl's
    own GEMM: the ISA of its micro-kernel and its blocking, see _kernels.gemm_info), 'num_threads',
    'parallel_min_work' (smaller kernel calls run on one thread), 'debug_checks' (built with
    the kernels' index assertions: MINIDL_BOUNDSCHECK=1 or MINIDL_SANITIZE=address),
    'conv_algorithm' and 'conv_autotune' (set_conv_algorithm / set_conv_autotune),
    'conv_plans' (one line per cached convolution plan: its geometry and the algorithm it
    runs) and 'blas' (libraries found by threadpoolctl).
    """
    compiled = _kernels.compiled_available()
    active = _kernels.use_compiled()
    if active:
        path = "compiled Cython kernels" + (" with OpenMP" if _kernels.openmp_enabled() else " (serial, no OpenMP)")
    else:
        path = "NumPy im2col fallback" + ("" if compiled else " (compiled kernels not built: pip install -e .)")
    return {
        "compiled": compiled,
        "active": active,
        "openmp": _kernels.openmp_enabled(),
        "path": path,
        "direct_kernels": _kernels.direct_available(),
        "per_image_gemm": _kernels.images_available(),
        "gemm": _kernels.gemm_info(),
        "num_threads": get_num_threads(),
        "parallel_min_work": _kernels.get_parallel_min_work(),
        "debug_checks": _kernels.debug_checks(),
        "conv_algorithm": get_conv_algorithm(),
        "conv_autotune": get_conv_autotune(),
        "conv_plans": [p.describe() for p in _kernels.convolution.cached_plans()],
        "blas": blas_info(),
    }


# Imported last, and as the function: this binds the name minidl.summary to the function
# (the contract's minidl.summary(model, input_shape)), not to the submodule of that name.
from .summary import summary  # noqa: E402
from ._threads import _init_from_env as _init_threads  # noqa: E402

_init_threads()
del _init_threads
