"""minidl's compiled kernels, and the NumPy path used when they are not built.

``layers/`` calls only the functions here; they pick the compiled kernel when it was built
and the vectorised NumPy path otherwise (warning once, with the command that builds them).
Arguments are checked by the layers before they get here; this module checks only what the
C code needs to stay in bounds (dtype, contiguity, array shapes).
"""
import warnings

import numpy as np

from . import numpy_im2col

try:  # the compiled extension is optional: see setup.py
    from . import _im2col as _compiled_im2col
except ImportError:  # pragma: no cover - exercised only on machines without a compiler
    _compiled_im2col = None

_BUILD_HINT = "pip install -e . (needs a C compiler and Cython)"
_warned = False
_force_numpy = False


def compiled_available():
    """True when the compiled kernels were built and imported."""
    return _compiled_im2col is not None


def use_compiled(flag=None):
    """Get (no argument) or set whether the compiled kernels are used when available.

    ``use_compiled(False)`` forces the NumPy path, e.g. to compare the two in a benchmark.
    """
    global _force_numpy
    if flag is not None:
        _force_numpy = not flag
    return compiled_available() and not _force_numpy


def _compiled():
    global _warned
    if _force_numpy:
        return None
    if _compiled_im2col is None and not _warned:
        _warned = True
        warnings.warn(
            "minidl: compiled kernels are not built; using the slower NumPy im2col path. "
            f"Build them with: {_BUILD_HINT}",
            RuntimeWarning,
            stacklevel=3,
        )
    return _compiled_im2col


def openmp_enabled():
    """True when the compiled kernels run with OpenMP."""
    return _compiled_im2col is not None and _compiled_im2col.openmp_enabled()


def omp_max_threads():
    """Threads an OpenMP region of the kernels would use now (1 without OpenMP)."""
    return _compiled_im2col.omp_max_threads() if openmp_enabled() else 1


def set_omp_threads(n):
    """Set the OpenMP thread count of the kernels' runtime (a no-op without OpenMP)."""
    if openmp_enabled():
        _compiled_im2col.set_omp_threads(n)


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Unfold x (N, C, H, W) into cols (N, C*KH*KW, HO*WO) for a convolution.

    The caller has validated that HO and WO are the output sizes of these parameters.
    """
    mod = _compiled()
    if mod is None or x.dtype not in (np.float32, np.float64):
        return numpy_im2col.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=x.dtype)
    mod.im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Fold cols (N, C*KH*KW, HO*WO) back into an (N, C, H, W) array, summing overlaps."""
    mod = _compiled()
    if mod is None or cols.dtype not in (np.float32, np.float64):
        return numpy_im2col.col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    n, c, h, w = x_shape
    if cols.shape != (n, c * kh * kw, ho * wo):
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {(n, c * kh * kw, ho * wo)}")
    cols = np.ascontiguousarray(cols)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    mod.col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    return dx
