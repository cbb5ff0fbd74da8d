# cython: language_level=3
"""Spatial batch norm in two passes over memory per channel (C loops in _norm_impl.h), plain
or with a ReLU fused after it (out = max(bn(x), 0), the gradient masked inside the same two
passes), and the fused evaluation-mode (running statistics) forward and backward in one pass.

Parallel over channels; statistics are accumulated in double around a shift. x is viewed as
(N, C, M) with M = H*W: channel c is N planes of M values, one every C*M.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt

from ._common cimport MINIDL_CHECK, floating, parallel_for

cdef extern from "_norm.h" nogil:
    void bn_stats_f(const float *x, int N, long M, long xs, double *mean, double *var)
    void bn_stats_d(const double *x, int N, long M, long xs, double *mean, double *var)
    void bn_apply_f(const float *x, float *out, int N, long M, long xs, float mhi, float mlo,
                    float a, float beta)
    void bn_apply_d(const double *x, double *out, int N, long M, long xs, double mhi, double mlo,
                    double a, double beta)
    void bn_apply_relu_f(const float *x, float *out, int N, long M, long xs, float mhi,
                         float mlo, float a, float beta)
    void bn_apply_relu_d(const double *x, double *out, int N, long M, long xs, double mhi,
                         double mlo, double a, double beta)
    void bn_grad_sums_f(const float *x, const float *dout, int N, long M, long xs, float mhi,
                        float mlo, double *sum_d, double *sum_dx)
    void bn_grad_sums_d(const double *x, const double *dout, int N, long M, long xs, double mhi,
                        double mlo, double *sum_d, double *sum_dx)
    void bn_grad_sums_relu_f(const float *x, const float *dout, int N, long M, long xs,
                             float mhi, float mlo, float a, float beta, double *sum_d,
                             double *sum_dx)
    void bn_grad_sums_relu_d(const double *x, const double *dout, int N, long M, long xs,
                             double mhi, double mlo, double a, double beta, double *sum_d,
                             double *sum_dx)
    void bn_grad_apply_f(const float *x, const float *dout, float *dx, int N, long M, long xs,
                         float mhi, float mlo, float ga, float gb, float gc)
    void bn_grad_apply_d(const double *x, const double *dout, double *dx, int N, long M, long xs,
                         double mhi, double mlo, double ga, double gb, double gc)
    void bn_grad_apply_relu_f(const float *x, const float *dout, float *dx, int N, long M,
                              long xs, float mhi, float mlo, float a, float beta, float ga,
                              float gb, float gc)
    void bn_grad_apply_relu_d(const double *x, const double *dout, double *dx, int N, long M,
                              long xs, double mhi, double mlo, double a, double beta, double ga,
                              double gb, double gc)
    void bn_relu_grad_eval_f(const float *x, const float *dout, float *dx, int N, long M,
                             long xs, float mhi, float mlo, float a, float beta, double *sum_d,
                             double *sum_dx)
    void bn_relu_grad_eval_d(const double *x, const double *dout, double *dx, int N, long M,
                             long xs, double mhi, double mlo, double a, double beta,
                             double *sum_d, double *sum_dx)


cdef inline floating _scale(floating gamma, double var, double eps) noexcept nogil:
    # gamma / sqrt(var + eps), rounded to T: the forward's scale, computed by this one
    # expression wherever the fused backward recomputes the forward's ReLU mask
    return <floating>(gamma / sqrt(var + eps))


cdef inline void _check_channel(int N, long M, long xs, Py_ssize_t c,
                                Py_ssize_t size) noexcept nogil:
    # the last value of channel c, (N-1)*xs + c*M + M - 1, lies inside the (N, C, M) buffer
    MINIDL_CHECK(N >= 1 and M >= 1 and c * M + M <= xs and (N - 1) * xs + c * M + M <= size)


cdef inline void _apply(const floating *x, floating *out, int N, long M, long xs, double mean,
                        floating a, floating beta, bint relu) noexcept nogil:
    # the mean as a T pair (its rounding and the remainder; the remainder is 0 in double)
    cdef floating mhi = <floating>mean
    cdef floating mlo = <floating>(mean - mhi)
    if floating is float:
        if relu:
            bn_apply_relu_f(x, out, N, M, xs, mhi, mlo, a, beta)
        else:
            bn_apply_f(x, out, N, M, xs, mhi, mlo, a, beta)
    else:
        if relu:
            bn_apply_relu_d(x, out, N, M, xs, mhi, mlo, a, beta)
        else:
            bn_apply_d(x, out, N, M, xs, mhi, mlo, a, beta)


cdef inline void _backward_channel(const floating *x, const floating *d, floating *dx, int N,
                                   long M, long xs, double mean, double istd, floating gamma,
                                   floating a, floating beta, bint relu,
                                   double *dgamma, double *dbeta) noexcept nogil:
    # training-mode gradient of one channel in two passes: the sums, then dx in closed form
    # dx = ga * g + gb * (x - mean) + gc, g = dout (times the ReLU mask when fused, which is
    # recomputed with the forward's scale a and shift beta)
    cdef double cnt = <double>N * M
    cdef double s_d = 0, s_dx = 0, ga, gb, gc
    cdef floating mhi = <floating>mean
    cdef floating mlo = <floating>(mean - mhi)
    if floating is float:
        if relu:
            bn_grad_sums_relu_f(x, d, N, M, xs, mhi, mlo, a, beta, &s_d, &s_dx)
        else:
            bn_grad_sums_f(x, d, N, M, xs, mhi, mlo, &s_d, &s_dx)
    else:
        if relu:
            bn_grad_sums_relu_d(x, d, N, M, xs, mhi, mlo, a, beta, &s_d, &s_dx)
        else:
            bn_grad_sums_d(x, d, N, M, xs, mhi, mlo, &s_d, &s_dx)
    dgamma[0] = istd * s_dx
    dbeta[0] = s_d
    ga = gamma * istd
    gb = -ga * istd * istd * s_dx / cnt
    gc = -ga * s_d / cnt
    if floating is float:
        if relu:
            bn_grad_apply_relu_f(x, d, dx, N, M, xs, mhi, mlo, a, beta, <float>ga, <float>gb,
                                 <float>gc)
        else:
            bn_grad_apply_f(x, d, dx, N, M, xs, mhi, mlo, <float>ga, <float>gb, <float>gc)
    else:
        if relu:
            bn_grad_apply_relu_d(x, d, dx, N, M, xs, mhi, mlo, a, beta, ga, gb, gc)
        else:
            bn_grad_apply_d(x, d, dx, N, M, xs, mhi, mlo, ga, gb, gc)


def batchnorm_forward_train(const floating[:, :, ::1] x, const floating[::1] gamma,
                            const floating[::1] beta, double eps, floating[:, :, ::1] out,
                            double[::1] mean, double[::1] var, bint relu=False):
    """x viewed as (N, C, M): per channel, mean/var (biased) in one pass, out in a second
    (with relu: out = max(bn(x), 0), written once). Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c, size = x.size
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            _check_channel(N, M, xs, c, size)
            if floating is float:
                bn_stats_f(xp + c * M, N, M, xs, &mean[c], &var[c])
            else:
                bn_stats_d(xp + c * M, N, M, xs, &mean[c], &var[c])
            _apply(xp + c * M, op + c * M, N, M, xs, mean[c], _scale(gamma[c], var[c], eps),
                   beta[c], relu)


def batchnorm_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] dout,
                       const double[::1] mean, const double[::1] istd,
                       const floating[::1] gamma, floating[:, :, ::1] dx,
                       double[::1] dgamma, double[::1] dbeta):
    """Training-mode batch-norm gradient, two passes per channel (sums, then dx). Parallel
    over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c, size = x.size
    cdef const floating *xp = &x[0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            _check_channel(N, M, xs, c, size)
            _backward_channel(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mean[c], istd[c],
                              gamma[c], 0, 0, False, &dgamma[c], &dbeta[c])


def batchnorm_relu_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] dout,
                            const double[::1] mean, const double[::1] var, double eps,
                            const floating[::1] gamma, const floating[::1] beta,
                            floating[:, :, ::1] dx, double[::1] dgamma, double[::1] dbeta):
    """Gradient of batchnorm_forward_train(..., relu=True) from the dout of its output: the
    ReLU mask (bn(x) > 0, recomputed from x, mean, var, eps, gamma and beta exactly as the
    forward computed bn(x)) applied inside batch norm's two passes. Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c, size = x.size
    cdef const floating *xp = &x[0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            _check_channel(N, M, xs, c, size)
            _backward_channel(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mean[c],
                              1.0 / sqrt(var[c] + eps), gamma[c], _scale(gamma[c], var[c], eps),
                              beta[c], True, &dgamma[c], &dbeta[c])


def batchnorm_relu_forward_eval(const floating[:, :, ::1] x, const floating[::1] gamma,
                                const floating[::1] beta, const double[::1] mean,
                                const double[::1] var, double eps, floating[:, :, ::1] out):
    """Evaluation mode with the ReLU fused: out = max((x - mean) * gamma / sqrt(var + eps)
    + beta, 0) with the given (running) statistics, in one pass. Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c, size = x.size
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            _check_channel(N, M, xs, c, size)
            _apply(xp + c * M, op + c * M, N, M, xs, mean[c], _scale(gamma[c], var[c], eps),
                   beta[c], True)


def batchnorm_relu_backward_eval(const floating[:, :, ::1] x, const floating[:, :, ::1] dout,
                                 const double[::1] mean, const double[::1] var, double eps,
                                 const floating[::1] gamma, const floating[::1] beta,
                                 floating[:, :, ::1] dx, double[::1] dgamma,
                                 double[::1] dbeta):
    """Gradient of batchnorm_relu_forward_eval (the statistics are constants): one pass per
    channel, dx = dout * mask * gamma / sqrt(var + eps) with the sums for dgamma and dbeta.
    Parallel over channels."""
    cdef int N = x.shape[0], C = x.shape[1]
    cdef long M = x.shape[2], xs = <long>C * x.shape[2]
    cdef Py_ssize_t c, size = x.size
    cdef double s_d, s_dx
    cdef floating mhi, mlo
    cdef const floating *xp = &x[0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0]
    cdef bint par = parallel_for(<long>N * C * M)
    with nogil:
        for c in prange(C, schedule="guided", use_threads_if=par):
            _check_channel(N, M, xs, c, size)
            s_d = 0
            s_dx = 0
            mhi = <floating>mean[c]
            mlo = <floating>(mean[c] - mhi)
            if floating is float:
                bn_relu_grad_eval_f(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mhi, mlo,
                                    _scale(gamma[c], var[c], eps), beta[c], &s_d, &s_dx)
            else:
                bn_relu_grad_eval_d(xp + c * M, dp + c * M, gp + c * M, N, M, xs, mhi, mlo,
                                    _scale(gamma[c], var[c], eps), beta[c], &s_d, &s_dx)
            dgamma[c] = s_dx / sqrt(var[c] + eps)
            dbeta[c] = s_d
