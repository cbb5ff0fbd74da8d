# cython: language_level=3
"""Grouped and depthwise convolution without im2col (the "direct" algorithm for thin groups).

Each function splits its work into independent pieces (one image and group, or one image and
channel) and runs them in an OpenMP ``prange``; the per-piece loops are C in
``_direct_conv_impl.h`` (vectorised, float32 and float64). Nothing here calls the BLAS, so a
parallel region never nests a multithreaded BLAS inside it. The loops use OpenMP's guided
schedule: on a shared machine a thread that is preempted leaves its pieces to the others
instead of holding the whole region back (as a static split would).

The Python wrappers in ``minidl._kernels`` check shapes, dtypes and contiguity before calling;
the C loops read and write only inside the padded planes those checks size (debug builds
assert it: _checks.h).
"""
from cython.parallel cimport prange

from ._common cimport floating, parallel_for

cdef extern from "_direct_conv.h" nogil:
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
    cdef bint par = parallel_for(<long>N * F * HO * WO * Cg * KH * KW)
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
    cdef bint par = parallel_for(<long>N * F * HO * WO * Cg * KH * KW)
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
    cdef bint par = parallel_for(<long>N * F * HO * WO * Cg * KH * KW)
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
    cdef bint par = parallel_for(<long>N * F * HO * WO * KH * KW)
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
