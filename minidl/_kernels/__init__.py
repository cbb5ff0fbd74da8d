"""minidl's compiled kernels, and the NumPy path used when they are not built.

``layers/`` calls only what is here; the compiled kernel runs when it was built and the
vectorised NumPy path otherwise (warning once, with the command that builds them).

What is here:

* ``convolution``: ``ConvPlan`` / ``plan_conv`` (a convolution validated once into a cached
  plan: sizes, multiply-adds, algorithm, workspace), the algorithms behind FastConv
  (``convolution.forward`` / ``convolution.backward``) and their setting
  (``set_conv_algorithm``, ``set_conv_autotune``);
* ``im2col`` / ``col2im`` (per-image column layout) and ``im2col_batched`` /
  ``col2im_batched`` (images side by side), checked wrappers for callers outside the plans
  (pooling's NumPy path, the CS231n names, tests);
* ``maxpool_forward`` / ``maxpool_backward`` / ``avgpool_forward`` / ``avgpool_backward``;
* ``batchnorm_forward_train`` / ``batchnorm_backward``: spatial batch norm in two passes each;
* ``relu_forward`` / ``relu_backward``;
* ``gemm``: minidl's own packed GEMM (checked, one thread; ``gemm_info()`` names its
  micro-kernel);
* threads (``omp_max_threads``, ``set_parallel_min_work``: small calls stay serial), the
  per-image path's BLAS (``images_available``), the workspace bound
  (``set_workspace_limit(nbytes)``, default 256 MB or MINIDL_WORKSPACE_MB) and the reusable
  scratch arrays (``workspace(name, shape, dtype)``, ``release_workspaces()``).

Every wrapper checks what its C code needs to stay in bounds (dtype, contiguity, shapes,
window extents) before entering it, so a wrong call raises ValueError instead of reading
outside an array; the convolution algorithms take a ConvPlan instead, which did those checks
once. ``direct_available()`` says whether the compiled kernels beyond im2col/col2im can run.
"""
import os
import threading
import warnings

import numpy as np

from . import convolution, numpy_im2col
from .convolution import (ConvPlan, forced_algorithm, get_conv_algorithm, get_conv_autotune,
                          plan_conv, set_conv_algorithm, set_conv_autotune)

try:  # the compiled extensions are optional (see setup.py); they are built as one set
    from . import _common, _conv, _direct_conv, _eltwise, _gemm, _norm, _pool
except ImportError:  # pragma: no cover - exercised only on machines without a compiler
    _common = _conv = _direct_conv = _eltwise = _gemm = _norm = _pool = None

_BUILD_HINT = "pip install -e . (needs a C compiler and Cython)"
_warned = False
_force_numpy = False
_FLOATS = (np.float32, np.float64)


def _env_workspace():
    value = os.environ.get("MINIDL_WORKSPACE_MB")
    if not value:
        return 256 * 2**20
    try:
        mb = float(value)
    except ValueError:
        raise ValueError(f"MINIDL_WORKSPACE_MB must be a number of megabytes, got {value!r}") from None
    if mb <= 0:
        raise ValueError(f"MINIDL_WORKSPACE_MB must be positive, got {value!r}")
    return int(mb * 2**20)


_workspace_limit = _env_workspace()


def set_workspace_limit(nbytes):
    """Bound the im2col column matrix of one convolution call to ``nbytes`` (default 256 MB).

    FastConv unfolds at most as many images at a time as fit (always at least one), so a
    large layer at a large batch costs more GEMM calls instead of more memory. Returns the
    previous limit. MINIDL_WORKSPACE_MB sets the default at import.
    """
    global _workspace_limit
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 1:
        raise ValueError(f"set_workspace_limit: nbytes must be a positive integer, got {nbytes!r}")
    old, _workspace_limit = _workspace_limit, int(nbytes)
    convolution.settings_changed()
    return old


def get_workspace_limit():
    """The current im2col workspace bound in bytes."""
    return _workspace_limit


_tls = threading.local()


def workspace(name, shape, dtype):
    """A reusable C-contiguous scratch array (per thread, per name), grown when too small.

    FastConv unfolds into these instead of fresh arrays, so a training loop does not pay the
    page faults of a new column matrix on every call. Their size is bounded by the chunking
    (see set_workspace_limit); ``release_workspaces()`` frees them.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    spaces = getattr(_tls, "spaces", None)
    if spaces is None:
        spaces = _tls.spaces = {}
    buf = spaces.get(name)
    if buf is None or buf.nbytes < nbytes:
        spaces[name] = None  # free the old buffer before allocating the larger one
        buf = spaces[name] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def release_workspaces():
    """Free this thread's scratch arrays (they are re-created on the next call)."""
    _tls.spaces = {}


def compiled_available():
    """True when the compiled kernels were built and imported."""
    return _common is not None


def direct_available():
    """True when the direct kernels (grouped/depthwise conv, pooling, batch norm) are usable now."""
    return _common is not None and not _force_numpy


def use_compiled(flag=None):
    """Get (no argument) or set whether the compiled kernels are used when available.

    ``use_compiled(False)`` forces the NumPy path, e.g. to compare the two in a benchmark.
    """
    global _force_numpy
    if flag is not None:
        _force_numpy = not flag
        convolution.settings_changed()
    return compiled_available() and not _force_numpy


def _compiled():
    global _warned
    if _force_numpy:
        return None
    if _conv is None and not _warned:
        _warned = True
        warnings.warn(
            "minidl: compiled kernels are not built; using the slower NumPy im2col path. "
            f"Build them with: {_BUILD_HINT}",
            RuntimeWarning,
            stacklevel=3,
        )
    return _conv


def openmp_enabled():
    """True when the compiled kernels run with OpenMP."""
    return _common is not None and _common.openmp_enabled()


def omp_max_threads():
    """Threads an OpenMP region of the kernels would use now (1 without OpenMP)."""
    return _common.omp_max_threads() if openmp_enabled() else 1


def debug_checks():
    """True when the compiled kernels carry their index assertions (see setup.py)."""
    return _common is not None and _common.debug_checks()


def set_omp_threads(n):
    """Set the OpenMP thread count of the kernels' runtime (a no-op without OpenMP)."""
    if openmp_enabled():
        _common.set_omp_threads(n)
    convolution.settings_changed()


PARALLEL_MIN_WORK = 131072
_parallel_min_work = PARALLEL_MIN_WORK
if _common is not None:
    _common.set_parallel_min_work(PARALLEL_MIN_WORK)


def set_parallel_min_work(n):
    """Run kernel loops with less work than n (multiply-adds or elements) on one thread.

    Waking a team of OpenMP threads costs microseconds on a quiet machine and milliseconds
    on a busy one, more than a small layer takes in all, so small calls stay serial. The
    default is PARALLEL_MIN_WORK; 0 makes every loop parallel (the tests use it to exercise
    the threaded code on small shapes).
    """
    global _parallel_min_work
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"set_parallel_min_work: n must be a non-negative integer, got {n!r}")
    _parallel_min_work = int(n)
    if _common is not None:  # the copy the compiled loops read
        _common.set_parallel_min_work(_parallel_min_work)
    convolution.settings_changed()


def get_parallel_min_work():
    """The threshold set by set_parallel_min_work."""
    return _parallel_min_work


# ---------------------------------------------------------------------------- checks

def _float_array(fn, name, a, ndim):
    """a as a C-contiguous float32/float64 array of ndim dimensions (copied if strided)."""
    if not isinstance(a, np.ndarray) or a.dtype.type not in _FLOATS:
        raise TypeError(f"{fn}: {name} must be a float32 or float64 NumPy array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _check_dtypes(fn, **arrays):
    items = list(arrays.items())
    for k, a in items[1:]:
        if a.dtype != items[0][1].dtype:
            raise TypeError(f"{fn}: dtype mismatch: {items[0][0]} is {items[0][1].dtype}, "
                            f"{k} is {a.dtype}")


def _window_fits(fn, axis, size, k, s, p, d, out):
    """The last window must start inside the padded input and end inside it."""
    if min(size, k, s, d, out) < 1 or p < 0:
        raise ValueError(f"{fn}: sizes must be positive ({axis}: size {size}, kernel {k}, "
                         f"stride {s}, dilation {d}, output {out}, pad {p})")
    if (out - 1) * s + d * (k - 1) + 1 > size + 2 * p:
        raise ValueError(f"{fn}: output {axis} {out} needs {(out - 1) * s + d * (k - 1) + 1} "
                         f"padded input rows/columns, but the input has {size} + 2*{p}")


# ---------------------------------------------------------------------------- GEMM

def gemm(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    """op(a) @ op(b) through minidl's own packed GEMM (``_gemm``), on the calling thread.

    a (m, k), or (k, m) with trans_a; b (k, n), or (n, k) with trans_b; both float32 or both
    float64. out: None (a new (m, n) array) or a C-contiguous (m, n) array of their dtype,
    overwritten, or added to when accumulate is True. Returns out. For tests and benchmarks:
    the convolutions call the GEMM from their own OpenMP loops.
    """
    _require_direct("gemm")
    a = _float_array("gemm", "a", a, 2)
    b = _float_array("gemm", "b", b, 2)
    _check_dtypes("gemm", a=a, b=b)
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k:
        raise ValueError(f"gemm: op(a) is {m}x{k} (a {a.shape}, trans_a={trans_a}) but op(b) "
                         f"is {kb}x{n} (b {b.shape}, trans_b={trans_b}); inner sizes differ")
    if out is None:
        if accumulate:
            raise ValueError("gemm: accumulate=True needs an out array to add to")
        out = np.empty((m, n), dtype=a.dtype)
    elif (not isinstance(out, np.ndarray) or out.shape != (m, n) or out.dtype != a.dtype
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"gemm: out must be a writeable C-contiguous {a.dtype} array of shape "
                         f"{(m, n)}, got {getattr(out, 'dtype', type(out).__name__)} "
                         f"{getattr(out, 'shape', '')}")
    ws = np.empty(_gemm.workspace_size(a.dtype == np.float64, m, n, k), dtype=a.dtype)
    _gemm.matmul(a, b, out, bool(trans_a), bool(trans_b), bool(accumulate), ws)
    return out


def gemm_info():
    """The GEMM micro-kernel this CPU runs: {'isa': 'avx512' | 'avx2' | 'baseline',
    'float32': (MR, NR, KC, MC, NC), 'float64': (...)} (register tile and cache blocks), or
    None without the compiled kernels."""
    return _gemm.blocking() if _gemm is not None else None


# ---------------------------------------------------------------------------- im2col

def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Unfold x (N, C, H, W) into cols (N, C*KH*KW, HO*WO) for a convolution.

    The caller has validated that HO and WO are the output sizes of these parameters.
    """
    mod = _compiled()
    if mod is None or x.dtype not in _FLOATS:
        return numpy_im2col.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=x.dtype)
    if cols.size:
        mod.im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Fold cols (N, C*KH*KW, HO*WO) back into an (N, C, H, W) array, summing overlaps."""
    mod = _compiled()
    if mod is None or cols.dtype not in _FLOATS:
        return numpy_im2col.col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    n, c, h, w = x_shape
    if cols.shape != (n, c * kh * kw, ho * wo):
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {(n, c * kh * kw, ho * wo)}")
    cols = np.ascontiguousarray(cols)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    if cols.size:
        mod.col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    return dx


def im2col_batched(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, out=None, threads=0):
    """Unfold x (N, C, H, W) into cols (C*KH*KW, N, HO*WO): the batch side by side.

    ``cols.reshape(C*KH*KW, N*HO*WO)`` is then the right operand of one GEMM for the chunk.
    ``out`` may be a preallocated C-contiguous array of that shape and dtype (reused).
    ``threads``: OpenMP threads for the copy (0: all). FastConv passes 1 when the BLAS
    threads around it are busy, so that the two thread pools never compete for the cores.
    """
    n, c, h, w = x.shape
    shape = (c * kh * kw, n, ho * wo)
    mod = _compiled()
    if mod is None:
        cols = numpy_im2col.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo).transpose(1, 0, 2)
        if out is None:
            return np.ascontiguousarray(cols)
        out[...] = cols
        return out
    x = _float_array("im2col_batched", "x", x, 4)
    _window_fits("im2col_batched", "height", h, kh, sh, ph, dh, ho)
    _window_fits("im2col_batched", "width", w, kw, sw, pw, dw, wo)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    elif out.shape != shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"im2col_batched: out must be a C-contiguous {x.dtype} array of shape "
                         f"{shape}, got {out.dtype} {out.shape}")
    if out.size:
        mod.im2col_batched(x, out, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, threads)
    return out


def col2im_batched(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, out=None, threads=0):
    """Fold cols (C*KH*KW, N, HO*WO) back into (N, C, H, W), summing overlapping windows.

    ``out`` may be a C-contiguous array of x_shape and cols' dtype to write into (overwritten).
    """
    n, c, h, w = x_shape
    shape = (c * kh * kw, n, ho * wo)
    if tuple(cols.shape) != shape:
        raise ValueError(f"col2im_batched: cols has shape {cols.shape}, expected {shape}")
    if out is not None and (out.shape != tuple(x_shape) or out.dtype != cols.dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"col2im_batched: out must be a C-contiguous {cols.dtype} array of "
                         f"shape {tuple(x_shape)}, got {out.dtype} {out.shape}")
    mod = _compiled()
    if mod is None:
        dx = numpy_im2col.col2im(cols.transpose(1, 0, 2), x_shape, kh, kw, sh, sw, ph, pw,
                                 dh, dw, ho, wo)
        if out is None:
            return dx
        out[...] = dx
        return out
    cols = _float_array("col2im_batched", "cols", cols, 3)
    _window_fits("col2im_batched", "height", h, kh, sh, ph, dh, ho)
    _window_fits("col2im_batched", "width", w, kw, sw, pw, dw, wo)
    if out is None:
        dx = np.zeros(x_shape, dtype=cols.dtype)
    else:
        dx = out
        dx.fill(0)
    if cols.size:
        mod.col2im_batched(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, threads)
    return dx


# ------------------------------------------------- per-image im2col + GEMM in one OpenMP loop

_images_lib = None  # None: not probed yet; False: unavailable; else the BLAS's threadpoolctl controller


def _images_blas():
    """The controller of the BLAS behind scipy.linalg.cython_blas, installed into the kernels.

    The per-image path calls that BLAS from inside an OpenMP loop, so it must be able to hold
    the BLAS at one thread meanwhile: without scipy, or when threadpoolctl cannot find the
    library it uses, the path is unavailable and FastConv keeps its NumPy-GEMM path.
    """
    global _images_lib
    if _images_lib is None:
        _images_lib = False
        if _common is not None:
            try:
                import scipy
                import scipy.linalg.cython_blas as cb
                from threadpoolctl import ThreadpoolController
            except ImportError:
                return False
            root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
            libs = [lib for lib in ThreadpoolController().lib_controllers
                    if lib.user_api == "blas" and os.path.abspath(lib.filepath).startswith(
                        (os.path.join(root, "scipy") + os.sep, os.path.join(root, "scipy.libs") + os.sep))]
            if len(libs) == 1:
                _common.set_blas(cb.__pyx_capi__["sgemm"], cb.__pyx_capi__["dgemm"])
                _images_lib = libs[0]
    return _images_lib


def images_available():
    """True when the per-image im2col + GEMM kernels can run (compiled, scipy's BLAS found)."""
    return not _force_numpy and bool(_images_blas())


class _SingleThreadedBlas:
    """Hold the per-image path's BLAS at one thread (calls from inside OpenMP threads)."""

    def __enter__(self):
        self.lib = _images_blas()
        self.old = self.lib.num_threads
        if self.old != 1:
            self.lib.set_num_threads(1)

    def __exit__(self, *exc):
        if self.old != 1:
            self.lib.set_num_threads(self.old)


def _require_direct(fn):
    if not direct_available():
        raise RuntimeError(f"{fn}: the compiled kernels are not available (not built, or "
                           f"use_compiled(False)); build them with: {_BUILD_HINT}")


# ---------------------------------------------------------------------------- pooling

def _pool_dims(fn, x_shape, kh, kw, sh, sw, ph, pw, ho, wo):
    n, c, h, w = x_shape
    _window_fits(fn, "height", h, kh, sh, ph, 1, ho)
    _window_fits(fn, "width", w, kw, sw, pw, 1, wo)
    # every window must overlap the input: it then has a real maximum / at least one term
    if ph >= kh or pw >= kw or (ho - 1) * sh - ph >= h or (wo - 1) * sw - pw >= w:
        raise ValueError(f"{fn}: some {kh}x{kw} windows (stride {sh},{sw}, pad {ph},{pw}) lie "
                         f"entirely in the padding of a {h}x{w} input")
    if h * w >= 2**31:
        raise ValueError(f"{fn}: a {h}x{w} plane is too large for 32-bit indices")


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, ho, wo):
    """x (N, C, H, W) -> out (N, C, HO, WO) and idx (N, C, HO, WO) int32: the flat position
    (in its H*W plane) of each window's first maximum. Padding never wins."""
    _require_direct("maxpool_forward")
    x = _float_array("maxpool_forward", "x", x, 4)
    _pool_dims("maxpool_forward", x.shape, kh, kw, sh, sw, ph, pw, ho, wo)
    n, c, h, w = x.shape
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    idx = np.empty((n, c, ho, wo), dtype=np.int32)
    if out.size:
        _pool.maxpool_forward(x.reshape(n * c, h, w), out.reshape(n * c, ho, wo),
                            idx.reshape(n * c, ho, wo), kh, kw, sh, sw, ph, pw)
    return out, idx


def maxpool_backward(dout, idx, x_shape):
    """dout (N, C, HO, WO), idx from maxpool_forward -> dx (N, C, H, W)."""
    _require_direct("maxpool_backward")
    dout = _float_array("maxpool_backward", "dout", dout, 4)
    n, c, h, w = (int(s) for s in x_shape)
    if not isinstance(idx, np.ndarray) or idx.dtype != np.int32 or idx.shape != dout.shape \
            or dout.shape[:2] != (n, c):
        raise ValueError(f"maxpool_backward: idx {getattr(idx, 'shape', None)} and dout "
                         f"{dout.shape} must match and fit x {(n, c, h, w)}")
    idx = np.ascontiguousarray(idx)
    if idx.size and (idx.min() < 0 or idx.max() >= h * w):
        raise ValueError("maxpool_backward: idx holds positions outside the input plane")
    dx = np.empty((n, c, h, w), dtype=dout.dtype)
    if dx.size:
        ho, wo = dout.shape[2:]
        _pool.maxpool_backward(dout.reshape(n * c, ho, wo), idx.reshape(n * c, ho, wo),
                             dx.reshape(n * c, h, w))
    return dx


def avgpool_forward(x, kh, kw, sh, sw, ph, pw, ho, wo):
    """x (N, C, H, W) -> window means (N, C, HO, WO); zero padding counts in the divisor."""
    _require_direct("avgpool_forward")
    x = _float_array("avgpool_forward", "x", x, 4)
    _pool_dims("avgpool_forward", x.shape, kh, kw, sh, sw, ph, pw, ho, wo)
    n, c, h, w = x.shape
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    if out.size:
        _pool.avgpool_forward(x.reshape(n * c, h, w), out.reshape(n * c, ho, wo),
                            kh, kw, sh, sw, ph, pw)
    return out


def avgpool_backward(dout, x_shape, kh, kw, sh, sw, ph, pw):
    """dout (N, C, HO, WO) -> dx (N, C, H, W) of avgpool_forward."""
    _require_direct("avgpool_backward")
    dout = _float_array("avgpool_backward", "dout", dout, 4)
    n, c, h, w = (int(s) for s in x_shape)
    ho, wo = dout.shape[2:]
    if dout.shape[:2] != (n, c):
        raise ValueError(f"avgpool_backward: dout {dout.shape} does not fit x {(n, c, h, w)}")
    _pool_dims("avgpool_backward", (n, c, h, w), kh, kw, sh, sw, ph, pw, ho, wo)
    dx = np.empty((n, c, h, w), dtype=dout.dtype)
    if dx.size:
        _pool.avgpool_backward(dout.reshape(n * c, ho, wo), dx.reshape(n * c, h, w),
                             kh, kw, sh, sw, ph, pw)
    return dx


# ------------------------------------------------------------------------- batch norm

def _bn_view(fn, name, x):
    x = _float_array(fn, name, x, x.ndim if isinstance(x, np.ndarray) else 4)
    if x.ndim not in (2, 4):
        raise ValueError(f"{fn}: {name} must be (N, C) or (N, C, H, W), got shape {x.shape}")
    n, c = x.shape[:2]
    return x, x.reshape(n, c, -1)


def _bn_param(fn, name, a, c, dtype):
    a = np.ascontiguousarray(np.asarray(a, dtype=dtype).reshape(-1))
    if a.shape != (c,):
        raise ValueError(f"{fn}: {name} must have {c} values (one per channel), got shape {a.shape}")
    return a


def batchnorm_forward_train(x, gamma, beta, eps):
    """Training-mode batch norm over every axis but 1, for x (N, C) or (N, C, H, W).

    Returns out (x's shape and dtype), mean (C,) and var (C,) (biased, float64): one pass for
    the statistics and one for out, per channel, in parallel over channels.
    """
    fn = "batchnorm_forward_train"
    _require_direct("batchnorm_forward_train")
    x, x3 = _bn_view(fn, "x", x)
    c = x.shape[1]
    gamma = _bn_param(fn, "gamma", gamma, c, x.dtype)
    beta = _bn_param(fn, "beta", beta, c, x.dtype)
    if x3.shape[0] * x3.shape[2] == 0:
        raise ValueError(f"{fn}: x {x.shape} has no values to normalise")
    out = np.empty_like(x)
    mean = np.empty(c)
    var = np.empty(c)
    _norm.batchnorm_forward_train(x3, gamma, beta, float(eps), out.reshape(x3.shape), mean, var)
    return out, mean, var


def batchnorm_backward(dout, x, mean, var, gamma, eps):
    """Gradient of batchnorm_forward_train: -> dx (x's shape), dgamma (C,), dbeta (C,).

    Two passes per channel: sum(dout) and sum(dout * (x - mean)), then
    dx = gamma * istd * (dout - mean(dout) - xhat * mean(dout * xhat)), folded to
    a*dout + b*(x - mean) + c.
    dgamma and dbeta come back in x's dtype.
    """
    fn = "batchnorm_backward"
    _require_direct("batchnorm_backward")
    x, x3 = _bn_view(fn, "x", x)
    dout, d3 = _bn_view(fn, "dout", dout)
    _check_dtypes(fn, x=x, dout=dout)
    if dout.shape != x.shape:
        raise ValueError(f"{fn}: dout {dout.shape} must have x's shape {x.shape}")
    c = x.shape[1]
    mean = _bn_param(fn, "mean", mean, c, np.float64)
    istd = 1.0 / np.sqrt(_bn_param(fn, "var", var, c, np.float64) + eps)
    gamma = _bn_param(fn, "gamma", gamma, c, x.dtype)
    dx = np.empty_like(x)
    dgamma = np.empty(c)
    dbeta = np.empty(c)
    _norm.batchnorm_backward(x3, d3, mean, istd, gamma, dx.reshape(x3.shape), dgamma, dbeta)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)


# ---------------------------------------------------------------------------- ReLU

def _relu_ready(*arrays):
    return (direct_available() and arrays[0].dtype.type in _FLOATS
            and all(a.dtype == arrays[0].dtype and a.flags.c_contiguous for a in arrays))


def relu_forward(x):
    """max(x, 0) for a float array of any shape (the result of np.maximum(x, 0)); one pass,
    on the OpenMP threads when the kernels are built, NumPy otherwise."""
    if not _relu_ready(x):
        return np.maximum(x, 0)
    out = np.empty_like(x)
    _eltwise.relu_forward(x.reshape(-1), out.reshape(-1))
    return out


def relu_backward(dout, x):
    """dout * (x > 0) for float arrays of one shape (NumPy's result, in one pass)."""
    if dout.shape != x.shape or not _relu_ready(dout, x):
        return dout * (x > 0)
    dx = np.empty_like(dout)
    _eltwise.relu_backward(dout.reshape(-1), x.reshape(-1), dx.reshape(-1))
    return dx


from .fused import *  # noqa: E402,F401,F403 - batch norm + ReLU, add + ReLU (see fused.py)
from .winograd import (winograd_available, winograd_backward_data,  # noqa: E402 (needs the names above)
                       winograd_backward_filter, winograd_forward, winograd_workspace_bytes)
