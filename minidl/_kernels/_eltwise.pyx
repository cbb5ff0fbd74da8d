# cython: language_level=3
"""Elementwise kernels (ReLU forward and backward, and add + ReLU fused), in blocks of values
per OpenMP piece."""
from cython.parallel cimport prange

from ._common cimport MINIDL_CHECK, floating, parallel_for

# Elementwise, in blocks of _RELU_BLOCK values per OpenMP piece. Each is one pass over memory
# where NumPy's formulas take two for the gradient (the mask, then the product), and unlike
# NumPy's ufuncs they use the OpenMP threads.

DEF _RELU_BLOCK = 32768


cdef inline void _relu_fwd_block(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    # -0.0 -> +0.0 and NaN -> NaN, exactly as np.maximum(x, 0); a separate function so that
    # the compiler vectorises the loop (inside the prange body it does not)
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        out[i] = 0 if v <= 0 else v


cdef inline void _relu_bwd_block(const floating *d, const floating *x, floating *dx,
                                 Py_ssize_t n) noexcept nogil:
    # the mask as 1.0 / 0.0 times dout, as NumPy's dout * (x > 0) (so -0.0 and NaN agree)
    cdef Py_ssize_t i
    cdef floating one = 1, zero = 0
    for i in range(n):
        dx[i] = d[i] * (one if x[i] > 0 else zero)


cdef inline void _add_relu_block(const floating *a, const floating *b, floating *out,
                                 Py_ssize_t n) noexcept nogil:
    # max(a + b, 0) with the sum rounded to T first: np.maximum(a + b, 0) bit for bit
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = a[i] + b[i]
        out[i] = 0 if v <= 0 else v


def relu_forward(const floating[::1] x, floating[::1] out):
    """out = max(x, 0) elementwise, exactly as np.maximum(x, 0) (NaN passes through)."""
    cdef Py_ssize_t n = x.shape[0], nb = (n + _RELU_BLOCK - 1) // _RELU_BLOCK
    cdef Py_ssize_t b, i0
    cdef const floating *xp = &x[0] if n else NULL
    cdef floating *op = &out[0] if n else NULL
    cdef bint par = parallel_for(n)
    with nogil:
        for b in prange(nb, schedule="guided", use_threads_if=par):
            i0 = b * _RELU_BLOCK
            _relu_fwd_block(xp + i0, op + i0, min(n - i0, _RELU_BLOCK))


def relu_backward(const floating[::1] dout, const floating[::1] x, floating[::1] dx):
    """dx = dout * (x > 0) elementwise, as NumPy computes it (the mask as 1.0 or 0.0)."""
    cdef Py_ssize_t n = x.shape[0], nb = (n + _RELU_BLOCK - 1) // _RELU_BLOCK
    cdef Py_ssize_t b, i0
    cdef const floating *dp = &dout[0] if n else NULL
    cdef const floating *xp = &x[0] if n else NULL
    cdef floating *gp = &dx[0] if n else NULL
    cdef bint par = parallel_for(n)
    with nogil:
        for b in prange(nb, schedule="guided", use_threads_if=par):
            i0 = b * _RELU_BLOCK
            _relu_bwd_block(dp + i0, xp + i0, gp + i0, min(n - i0, _RELU_BLOCK))


def add_relu_forward(const floating[::1] a, const floating[::1] b, floating[::1] out):
    """out = max(a + b, 0) elementwise in one pass (a residual sum and its ReLU), exactly as
    np.maximum(a + b, 0). Its gradient is relu_backward(dout, out), given to both inputs."""
    cdef Py_ssize_t n = a.shape[0], nb = (n + _RELU_BLOCK - 1) // _RELU_BLOCK
    cdef Py_ssize_t blk, i0
    cdef const floating *ap = &a[0] if n else NULL
    cdef const floating *bp = &b[0] if n else NULL
    cdef floating *op = &out[0] if n else NULL
    cdef bint par = parallel_for(n)
    MINIDL_CHECK(b.shape[0] == n and out.shape[0] == n)
    with nogil:
        for blk in prange(nb, schedule="guided", use_threads_if=par):
            i0 = blk * _RELU_BLOCK
            _add_relu_block(ap + i0, bp + i0, op + i0, min(n - i0, _RELU_BLOCK))
