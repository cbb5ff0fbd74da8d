# cython: language_level=3
"""Max and average pooling, one (H, W) plane per OpenMP piece (C loops in _pool_impl.h).

Windows are clipped to the plane in the C loops, so no geometry reads outside it; the Python
wrappers in ``minidl._kernels`` reject geometries with a window entirely in the padding.
"""
from cython.parallel cimport prange

from ._common cimport floating, parallel_for

cdef extern from "_pool.h" nogil:
    void maxpool_forward_f(const float *x, float *out, int *idx, int H, int W, int KH, int KW,
                           int sh, int sw, int ph, int pw, int HO, int WO)
    void maxpool_forward_d(const double *x, double *out, int *idx, int H, int W, int KH, int KW,
                           int sh, int sw, int ph, int pw, int HO, int WO)
    void maxpool_backward_f(const float *dout, const int *idx, float *dx, int H, int W, int HO, int WO)
    void maxpool_backward_d(const double *dout, const int *idx, double *dx, int H, int W, int HO, int WO)
    void avgpool_forward_f(const float *x, float *out, int H, int W, int KH, int KW, int sh,
                           int sw, int ph, int pw, int HO, int WO)
    void avgpool_forward_d(const double *x, double *out, int H, int W, int KH, int KW, int sh,
                           int sw, int ph, int pw, int HO, int WO)
    void avgpool_backward_f(const float *dout, float *dx, int H, int W, int KH, int KW, int sh,
                            int sw, int ph, int pw, int HO, int WO)
    void avgpool_backward_d(const double *dout, double *dx, int H, int W, int KH, int KW, int sh,
                            int sw, int ph, int pw, int HO, int WO)


def maxpool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] out, int[:, :, ::1] idx,
                    int kh, int kw, int sh, int sw, int ph, int pw):
    """Per plane p: out[p] (HO, WO) = window maxima of x[p] (H, W); idx[p] = flat argmax in x[p]."""
    cdef int P = x.shape[0], H = x.shape[1], W = x.shape[2], HO = out.shape[1], WO = out.shape[2]
    cdef Py_ssize_t p
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef int *ip = &idx[0, 0, 0]
    cdef long xs = <long>H * W, os = <long>HO * WO
    cdef bint par = parallel_for(<long>P * HO * WO * kh * kw)
    with nogil:
        for p in prange(P, schedule="guided", use_threads_if=par):
            if floating is float:
                maxpool_forward_f(xp + p * xs, op + p * os, ip + p * os, H, W, kh, kw, sh, sw, ph, pw, HO, WO)
            else:
                maxpool_forward_d(xp + p * xs, op + p * os, ip + p * os, H, W, kh, kw, sh, sw, ph, pw, HO, WO)


def maxpool_backward(const floating[:, :, ::1] dout, const int[:, :, ::1] idx,
                     floating[:, :, ::1] dx):
    """dx[p] (H, W) = dout[p] scattered (summed) to the stored argmax positions."""
    cdef int P = dx.shape[0], H = dx.shape[1], W = dx.shape[2], HO = dout.shape[1], WO = dout.shape[2]
    cdef Py_ssize_t p
    cdef const floating *dp = &dout[0, 0, 0]
    cdef const int *ip = &idx[0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0]
    cdef long xs = <long>H * W, os = <long>HO * WO
    cdef bint par = parallel_for(<long>P * (H * W + HO * WO))
    with nogil:
        for p in prange(P, schedule="guided", use_threads_if=par):
            if floating is float:
                maxpool_backward_f(dp + p * os, ip + p * os, xp + p * xs, H, W, HO, WO)
            else:
                maxpool_backward_d(dp + p * os, ip + p * os, xp + p * xs, H, W, HO, WO)


def avgpool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                    int kh, int kw, int sh, int sw, int ph, int pw):
    """Per plane: window means (zero padding counted in the divisor)."""
    cdef int P = x.shape[0], H = x.shape[1], W = x.shape[2], HO = out.shape[1], WO = out.shape[2]
    cdef Py_ssize_t p
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef long xs = <long>H * W, os = <long>HO * WO
    cdef bint par = parallel_for(<long>P * HO * WO * kh * kw)
    with nogil:
        for p in prange(P, schedule="guided", use_threads_if=par):
            if floating is float:
                avgpool_forward_f(xp + p * xs, op + p * os, H, W, kh, kw, sh, sw, ph, pw, HO, WO)
            else:
                avgpool_forward_d(xp + p * xs, op + p * os, H, W, kh, kw, sh, sw, ph, pw, HO, WO)


def avgpool_backward(const floating[:, :, ::1] dout, floating[:, :, ::1] dx,
                     int kh, int kw, int sh, int sw, int ph, int pw):
    """Per plane: each output's gradient spread evenly over its window (padding included)."""
    cdef int P = dx.shape[0], H = dx.shape[1], W = dx.shape[2], HO = dout.shape[1], WO = dout.shape[2]
    cdef Py_ssize_t p
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0]
    cdef long xs = <long>H * W, os = <long>HO * WO
    cdef bint par = parallel_for(<long>P * HO * WO * kh * kw)
    with nogil:
        for p in prange(P, schedule="guided", use_threads_if=par):
            if floating is float:
                avgpool_backward_f(dp + p * os, xp + p * xs, H, W, kh, kw, sh, sw, ph, pw, HO, WO)
            else:
                avgpool_backward_d(dp + p * os, xp + p * xs, H, W, kh, kw, sh, sw, ph, pw, HO, WO)
