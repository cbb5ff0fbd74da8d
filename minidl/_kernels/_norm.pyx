# cython: language_level=3
"""Spatial batch norm in two passes over memory per channel (C loops in _norm_impl.h).

Parallel over channels; statistics are accumulated in double around a shift.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt

from ._common cimport floating, parallel_for

cdef extern from "_norm.h" nogil:
    void bn_stats_f(const float *x, int N, long M, long xs, double *mean, double *var)
    void bn_stats_d(const double *x, int N, long M, long xs, double *mean, double *var)
    void bn_apply_f(const float *x, float *out, int N, long M, long xs, float mhi, float mlo,
                    float a, float beta)
    void bn_apply_d(const double *x, double *out, int N, long M, long xs, double mhi, double mlo,
                    double a, double beta)
    void bn_grad_sums_f(const float *x, const float *dout, int N, long M, long xs, float mhi,
                        float mlo, double *sum_d, double *sum_dx)
    void bn_grad_sums_d(const double *x, const double *dout, int N, long M, long xs, double mhi,
                        double mlo, double *sum_d, double *sum_dx)
    void bn_grad_apply_f(const float *x, const float *dout, float *dx, int N, long M, long xs,
                         float mhi, float mlo, float a, float b, float c)
    void bn_grad_apply_d(const double *x, const double *dout, double *dx, int N, long M, long xs,
                         double mhi, double mlo, double a, double b, double c)


def batchnorm_forward_train(const floating[:, :, ::1] x, const floating[::1] gamma,
                            const floating[::1] beta, double eps, floating[:, :, ::1] out,
                            double[::1] mean, double[::1] var):
    """x viewed as (N, C, M): per channel, mean/var (biased) in one pass, out in a second.

    Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c
    cdef double a
    cdef float mhi
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            if floating is float:
                bn_stats_f(xp + c * M, N, M, xs, &mean[c], &var[c])
            else:
                bn_stats_d(xp + c * M, N, M, xs, &mean[c], &var[c])
            a = gamma[c] / sqrt(var[c] + eps)
            if floating is float:
                mhi = <float>mean[c]
                bn_apply_f(xp + c * M, op + c * M, N, M, xs, mhi, <float>(mean[c] - mhi),
                           <float>a, beta[c])
            else:
                bn_apply_d(xp + c * M, op + c * M, N, M, xs, mean[c], 0.0, a, beta[c])


def batchnorm_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] dout,
                       const double[::1] mean, const double[::1] istd,
                       const floating[::1] gamma, floating[:, :, ::1] dx,
                       double[::1] dgamma, double[::1] dbeta):
    """Training-mode batch-norm gradient, two passes per channel (sums, then dx). Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef double cnt = <double>N * M
    cdef Py_ssize_t c
    cdef double a, b, cc, s_d, s_dx, s
    cdef float mhi
    cdef const floating *xp = &x[0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            s_d = 0
            s_dx = 0
            if floating is float:
                mhi = <float>mean[c]
                bn_grad_sums_f(xp + c * M, dp + c * M, N, M, xs, mhi, <float>(mean[c] - mhi),
                               &s_d, &s_dx)
            else:
                bn_grad_sums_d(xp + c * M, dp + c * M, N, M, xs, mean[c], 0.0, &s_d, &s_dx)
            s = istd[c]
            dgamma[c] = s * s_dx
            dbeta[c] = s_d
            a = gamma[c] * s
            b = -a * s * s * s_dx / cnt
            cc = -a * s_d / cnt
            if floating is float:
                bn_grad_apply_f(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mhi,
                                <float>(mean[c] - mhi), <float>a, <float>b, <float>cc)
            else:
                bn_grad_apply_d(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mean[c], 0.0,
                                a, b, cc)
