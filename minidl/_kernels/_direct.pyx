# cython: language_level=3
"""Direct kernels: grouped/depthwise convolution, pooling and spatial batch norm.

Each function here splits its work into independent pieces (one image and group, one plane,
one channel) and runs them in an OpenMP ``prange``; the per-piece loops are C in
``_simd_impl.h`` (vectorised, float32 and float64). Nothing here calls the BLAS, so a
parallel region never nests a multithreaded BLAS inside it. The loops use OpenMP's guided
schedule: on a shared machine a thread that is preempted leaves its pieces to the others
instead of holding the whole region back (as a static split would).

The Python wrappers in ``minidl._kernels`` check shapes, dtypes and contiguity before calling;
these functions trust them (and cannot index out of bounds for arguments that pass those checks).
"""
from cython.parallel cimport prange
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double

cdef extern from "_simd.h" nogil:
    int gconv_forward_f(const float *x, const float *w, const float *bias, float *out, int Cg, int Fg, int H, int W,
                        int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int HO, int WO)
    int gconv_forward_d(const double *x, const double *w, const double *bias, double *out, int Cg, int Fg, int H, int W,
                        int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int HO, int WO)
    int gconv_backward_data_f(const float *dout, const float *w, float *dx, int Cg, int Fg, int H,
                              int W, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                              int HO, int WO)
    int gconv_backward_data_d(const double *dout, const double *w, double *dx, int Cg, int Fg, int H,
                              int W, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                              int HO, int WO)
    int gconv_backward_filter_f(const float *x, const float *dout, float *dwt, float *db, int n_img, long xs,
                                long ds, int Cg, int Fg, int H, int W, int KH, int KW, int sh,
                                int sw, int ph, int pw, int dh, int dw, int HO, int WO)
    int gconv_backward_filter_d(const double *x, const double *dout, double *dwt, double *db, int n_img, long xs,
                                long ds, int Cg, int Fg, int H, int W, int KH, int KW, int sh,
                                int sw, int ph, int pw, int dh, int dw, int HO, int WO)
    int dw_backward_fused_f(const float *x, const float *dout, const float *w, const float *wflip,
                            float *dx, float *dwp, float *dbp, int Fg, int H, int W, int KH,
                            int KW, int sh, int sw, int ph, int pw, int dh, int dw, int HO, int WO)
    int dw_backward_fused_d(const double *x, const double *dout, const double *w,
                            const double *wflip, double *dx, double *dwp, double *dbp, int Fg,
                            int H, int W, int KH, int KW, int sh, int sw, int ph, int pw, int dh,
                            int dw, int HO, int WO)
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


# Below this much work (multiply-adds or elements touched) a loop runs on the calling thread:
# waking a team of OpenMP threads costs microseconds on a quiet machine and milliseconds on a
# busy one, more than small layers (the coursework's 8x8 digits) take in all.
cdef long _min_parallel_work = 131072


def set_parallel_min_work(long n):
    """Loops with less work than n run serially (0: always parallel, for tests)."""
    global _min_parallel_work
    _min_parallel_work = n


def gconv_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                  const floating[::1] bias, floating[:, :, :, ::1] out, int groups,
                  int sh, int sw, int ph, int pw, int dh, int dw):
    """out (N, F, HO, WO) = grouped convolution of x (N, C, H, W) with w (F, C/G, KH, KW),
    plus bias (F,) unless it is None.

    Parallel over (image, group). Returns the number of pieces that could not allocate their
    padded input copy (0 on success)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int HO = out.shape[2], WO = out.shape[3], G = groups, Fg = F // groups
    cdef long xstep = <long>Cg * H * W, wstep = <long>Fg * Cg * KH * KW, ostep = <long>Fg * HO * WO
    cdef Py_ssize_t k
    cdef int err = 0
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef const floating *bp = NULL
    if bias is not None:
        bp = &bias[0]
    cdef bint par = <long>N * F * HO * WO * Cg * KH * KW >= _min_parallel_work
    with nogil:
        for k in prange(<Py_ssize_t>N * G, schedule="guided", use_threads_if=par):
            if floating is float:
                err += -gconv_forward_f(xp + k * xstep, wp + (k % G) * wstep,
                                        bp + (k % G) * Fg if bp != NULL else NULL, op + k * ostep,
                                        Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
            else:
                err += -gconv_forward_d(xp + k * xstep, wp + (k % G) * wstep,
                                        bp + (k % G) * Fg if bp != NULL else NULL, op + k * ostep,
                                        Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
    return err


def gconv_backward_data(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] w,
                        floating[:, :, :, ::1] dx, int groups, int sh, int sw, int ph, int pw,
                        int dh, int dw):
    """dx (N, C, H, W) from dout (N, F, HO, WO) and w (F, C/G, KH, KW). Parallel over (image, group)."""
    cdef int N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int HO = dout.shape[2], WO = dout.shape[3], G = groups, Fg = F // groups
    cdef long xstep = <long>Cg * H * W, wstep = <long>Fg * Cg * KH * KW, ostep = <long>Fg * HO * WO
    cdef Py_ssize_t k
    cdef int err = 0
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    cdef bint par = <long>N * F * HO * WO * Cg * KH * KW >= _min_parallel_work
    with nogil:
        for k in prange(<Py_ssize_t>N * G, schedule="guided", use_threads_if=par):
            if floating is float:
                err += -gconv_backward_data_f(dp + k * ostep, wp + (k % G) * wstep, xp + k * xstep,
                                              Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
            else:
                err += -gconv_backward_data_d(dp + k * ostep, wp + (k % G) * wstep, xp + k * xstep,
                                              Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
    return err


def gconv_backward_filter(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dout,
                          floating[:, :, :, ::1] dw_out, floating[::1] db, int groups, int sh,
                          int sw, int ph, int pw, int dh, int dw):
    """dw (F, C/G, KH, KW) += sum over images of x (*) dout, and db (F,) += dout summed per
    filter unless db is None (both must start zeroed). Parallel over groups."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = dw_out.shape[0], Cg = dw_out.shape[1], KH = dw_out.shape[2], KW = dw_out.shape[3]
    cdef int HO = dout.shape[2], WO = dout.shape[3], G = groups, Fg = F // groups
    cdef long xs = <long>C * H * W, ds = <long>F * HO * WO
    cdef long xg = <long>Cg * H * W, dg = <long>Fg * HO * WO, wg = <long>Fg * Cg * KH * KW
    cdef Py_ssize_t g
    cdef int err = 0
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef floating *wp = &dw_out[0, 0, 0, 0]
    cdef floating *bp = NULL
    if db is not None:
        bp = &db[0]
    cdef bint par = <long>N * F * HO * WO * Cg * KH * KW >= _min_parallel_work
    with nogil:
        for g in prange(<Py_ssize_t>G, schedule="guided", use_threads_if=par):
            if floating is float:
                err += -gconv_backward_filter_f(xp + g * xg, dp + g * dg, wp + g * wg,
                                                bp + g * Fg if bp != NULL else NULL, N, xs, ds,
                                                Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
            else:
                err += -gconv_backward_filter_d(xp + g * xg, dp + g * dg, wp + g * wg,
                                                bp + g * Fg if bp != NULL else NULL, N, xs, ds,
                                                Cg, Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
    return err


def depthwise_backward_fused(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dout,
                             const floating[:, :, :, ::1] w, const floating[:, :, :, ::1] wflip,
                             floating[:, :, :, ::1] dx, floating[:, :, :, ::1] dw_part,
                             floating[:, ::1] db_part, int sh, int sw, int ph, int pw, int dh,
                             int dw):
    """Depthwise (groups == C, w (F, 1, KH, KW)) backward in one pass per (image, channel):
    dx (N, C, H, W) written; dw_part (N, F, KH, KW) and db_part (N, F) (unless None) get each
    image's share of dw and db (the caller sums over N: no two pieces write the same values,
    and the result does not depend on the thread count). wflip = w[:, :, ::-1, ::-1].

    Parallel over (image, channel). Returns the number of pieces that could not allocate
    their buffers (0 on success)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], KH = w.shape[2], KW = w.shape[3]
    cdef int HO = dout.shape[2], WO = dout.shape[3], Fg = F // C
    cdef long xstep = <long>H * W, ostep = <long>Fg * HO * WO, kk = <long>KH * KW
    cdef Py_ssize_t k
    cdef int err = 0
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef const floating *fp = &wflip[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    cdef floating *pp = &dw_part[0, 0, 0, 0]
    cdef floating *bp = NULL
    if db_part is not None:
        bp = &db_part[0, 0]
    cdef bint par = <long>N * F * HO * WO * KH * KW >= _min_parallel_work
    with nogil:
        for k in prange(<Py_ssize_t>N * C, schedule="guided", use_threads_if=par):
            if floating is float:
                err += -dw_backward_fused_f(xp + k * xstep, dp + k * ostep, wp + (k % C) * Fg * kk,
                                            fp + (k % C) * Fg * kk, gp + k * xstep,
                                            pp + k * Fg * kk, bp + k * Fg if bp != NULL else NULL,
                                            Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
            else:
                err += -dw_backward_fused_d(xp + k * xstep, dp + k * ostep, wp + (k % C) * Fg * kk,
                                            fp + (k % C) * Fg * kk, gp + k * xstep,
                                            pp + k * Fg * kk, bp + k * Fg if bp != NULL else NULL,
                                            Fg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, HO, WO)
    return err


def maxpool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] out, int[:, :, ::1] idx,
                    int kh, int kw, int sh, int sw, int ph, int pw):
    """Per plane p: out[p] (HO, WO) = window maxima of x[p] (H, W); idx[p] = flat argmax in x[p]."""
    cdef int P = x.shape[0], H = x.shape[1], W = x.shape[2], HO = out.shape[1], WO = out.shape[2]
    cdef Py_ssize_t p
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef int *ip = &idx[0, 0, 0]
    cdef long xs = <long>H * W, os = <long>HO * WO
    cdef bint par = <long>P * HO * WO * kh * kw >= _min_parallel_work
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
    cdef bint par = <long>P * (H * W + HO * WO) >= _min_parallel_work
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
    cdef bint par = <long>P * HO * WO * kh * kw >= _min_parallel_work
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
    cdef bint par = <long>P * HO * WO * kh * kw >= _min_parallel_work
    with nogil:
        for p in prange(P, schedule="guided", use_threads_if=par):
            if floating is float:
                avgpool_backward_f(dp + p * os, xp + p * xs, H, W, kh, kw, sh, sw, ph, pw, HO, WO)
            else:
                avgpool_backward_d(dp + p * os, xp + p * xs, H, W, kh, kw, sh, sw, ph, pw, HO, WO)


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
    cdef bint par = <long>N * C * M >= _min_parallel_work
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
    cdef bint par = <long>N * C * M >= _min_parallel_work
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


# ---------------------------------------------------------------------------- ReLU
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


def relu_forward(const floating[::1] x, floating[::1] out):
    """out = max(x, 0) elementwise, exactly as np.maximum(x, 0) (NaN passes through)."""
    cdef Py_ssize_t n = x.shape[0], nb = (n + _RELU_BLOCK - 1) // _RELU_BLOCK
    cdef Py_ssize_t b, i0
    cdef const floating *xp = &x[0] if n else NULL
    cdef floating *op = &out[0] if n else NULL
    cdef bint par = n >= _min_parallel_work
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
    cdef bint par = n >= _min_parallel_work
    with nogil:
        for b in prange(nb, schedule="guided", use_threads_if=par):
            i0 = b * _RELU_BLOCK
            _relu_bwd_block(dp + i0, xp + i0, gp + i0, min(n - i0, _RELU_BLOCK))
