# cython: language_level=3
"""Convolution through im2col + GEMM: im2col / col2im for NCHW images, any stride, padding
and dilation (float32 and float64), and the per-image im2col + GEMM convolution.

Two column layouts, the same rows (c, i, j) and columns (y, x):

* per image, (N, C*KH*KW, HO*WO): cols[n, (c,i,j), (y,x)] = x[n, c, y*sh - ph + i*dh, x*sw - pw + j*dw]
  (zero in the padding); ``im2col`` / ``col2im``.
* batched, (C*KH*KW, N, HO*WO): the images side by side, so that a whole chunk of the batch
  is one GEMM W (F, C*KH*KW) @ cols (C*KH*KW, N*HO*WO); ``im2col_batched`` / ``col2im_batched``.

And the packed path (``conv_forward_packed`` / ``conv_backward_packed``): minidl's own GEMM
(``_gemm``) on blocks of output positions, im2col writing each block straight into the GEMM's
packed panels.

Both layouts are parallel over (image, channel) pairs, each of which owns its rows of cols (or its
plane of dx), so no two threads write the same memory. The Python wrappers in
``minidl._kernels`` validate shapes, dtypes and contiguity; every loop here also clamps its
column range to the row it writes (_tap_range, _flat_range), so that no geometry can make it
write outside.
"""
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from ._common cimport MINIDL_CHECK, floating, gemm, threads_for
from . cimport _gemm


def im2col(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           int ho, int wo, int nthreads=0):
    """Fill cols (N, C*KH*KW, HO*WO) from x (N, C, H, W). nthreads 0: the OpenMP default."""
    cdef Py_ssize_t n_img = x.shape[0], n_ch = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t nc, n, c, P = <Py_ssize_t>ho * wo
    cdef int nt = nthreads if nthreads > 0 else threads_for(<long>n_img * n_ch * kh * kw * P)
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *cp = &cols[0, 0, 0]
    with nogil:
        for nc in prange(n_img * n_ch, schedule="guided", num_threads=nt):
            n = nc // n_ch
            c = nc % n_ch
            _unfold_channel(xp + nc * h * w, cp + (n * n_ch * kh * kw + c * kh * kw) * P, P,
                            h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


def im2col_batched(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
                   int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                   int ho, int wo, int nthreads=0):
    """Fill cols (C*KH*KW, N, HO*WO) from x (N, C, H, W)."""
    cdef Py_ssize_t n_img = x.shape[0], n_ch = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t nc, n, c, P = <Py_ssize_t>ho * wo
    cdef int nt = nthreads if nthreads > 0 else threads_for(<long>n_img * n_ch * kh * kw * P)
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *cp = &cols[0, 0, 0]
    with nogil:
        for nc in prange(n_img * n_ch, schedule="guided", num_threads=nt):
            n = nc // n_ch
            c = nc % n_ch
            _unfold_channel(xp + nc * h * w, cp + (c * kh * kw * n_img + n) * P, n_img * P,
                            h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


def col2im(const floating[:, :, ::1] cols, floating[:, :, :, ::1] dx,
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           int ho, int wo, int nthreads=0):
    """Scatter-add cols (N, C*KH*KW, HO*WO) into dx (N, C, H, W), which must start zeroed."""
    cdef Py_ssize_t n_img = dx.shape[0], n_ch = dx.shape[1], h = dx.shape[2], w = dx.shape[3]
    cdef Py_ssize_t nc, n, c, P = <Py_ssize_t>ho * wo
    cdef int nt = nthreads if nthreads > 0 else threads_for(<long>n_img * n_ch * kh * kw * P)
    cdef const floating *cp = &cols[0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    with nogil:
        for nc in prange(n_img * n_ch, schedule="guided", num_threads=nt):
            n = nc // n_ch
            c = nc % n_ch
            _fold_channel(cp + (n * n_ch * kh * kw + c * kh * kw) * P, P, xp + nc * h * w,
                          h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


def col2im_batched(const floating[:, :, ::1] cols, floating[:, :, :, ::1] dx,
                   int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                   int ho, int wo, int nthreads=0):
    """Scatter-add cols (C*KH*KW, N, HO*WO) into dx (N, C, H, W), which must start zeroed."""
    cdef Py_ssize_t n_img = dx.shape[0], n_ch = dx.shape[1], h = dx.shape[2], w = dx.shape[3]
    cdef Py_ssize_t nc, n, c, P = <Py_ssize_t>ho * wo
    cdef int nt = nthreads if nthreads > 0 else threads_for(<long>n_img * n_ch * kh * kw * P)
    cdef const floating *cp = &cols[0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    with nogil:
        for nc in prange(n_img * n_ch, schedule="guided", num_threads=nt):
            n = nc // n_ch
            c = nc % n_ch
            _fold_channel(cp + (c * kh * kw * n_img + n) * P, n_img * P, xp + nc * h * w,
                          h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


cdef inline void _unfold_channel(const floating *x, floating *cols, Py_ssize_t row_stride,
                                 Py_ssize_t h, Py_ssize_t w,
                                 int kh, int kw, int sh, int sw, int ph, int pw,
                                 int dh, int dw, int ho, int wo) noexcept nogil:
    # x: one (H, W) plane; cols: the KH*KW rows of this channel, row_stride apart
    cdef Py_ssize_t i, j, y, xo, iy, x_lo, x_hi, ix0
    cdef floating *out
    cdef floating *dst
    cdef const floating *src
    if sh == 1 and sw == 1 and wo == w:
        _unfold_channel_flat(x, cols, row_stride, h, w, kh, kw, ph, pw, dh, dw, ho)
        return
    for i in range(kh):
        for j in range(kw):
            out = cols + (i * kw + j) * row_stride
            ix0 = j * dw - pw
            # [x_lo, x_hi): the output columns whose input column xo*sw + ix0 lies in [0, w),
            # clamped to 0 <= x_lo <= x_hi <= wo, so the zero fills below stay inside the row
            # even when this tap sees only padding (pad or dilation beyond the input)
            _tap_range(ix0, sw, w, wo, &x_lo, &x_hi)
            # plain loops rather than memcpy/memset per row: rows are short (tens of values)
            # and the compiler vectorises these copies without a call per row
            for y in range(ho):
                iy = y * sh - ph + i * dh
                dst = out + y * wo
                if iy < 0 or iy >= h:
                    for xo in range(wo):
                        dst[xo] = 0
                    continue
                for xo in range(x_lo):
                    dst[xo] = 0
                if x_lo < x_hi:
                    # src[k] is input column ix0 + (x_lo + k)*sw: in [0, w) for k < x_hi - x_lo
                    src = x + iy * w + ix0 + x_lo * sw
                    if sw == 1:
                        for xo in range(x_hi - x_lo):
                            dst[x_lo + xo] = src[xo]
                    else:
                        for xo in range(x_hi - x_lo):
                            dst[x_lo + xo] = src[xo * sw]
                for xo in range(x_hi, wo):
                    dst[xo] = 0


cdef inline void _tap_range(Py_ssize_t ix0, Py_ssize_t sw, Py_ssize_t w, Py_ssize_t wo,
                            Py_ssize_t *x_lo, Py_ssize_t *x_hi) noexcept nogil:
    # The output columns xo in [0, wo) whose input column xo*sw + ix0 lies in [0, w), as
    # [x_lo, x_hi) with 0 <= x_lo <= x_hi <= wo for every geometry (an empty range when the
    # tap reads only padding). Every im2col/col2im loop over output columns uses this range.
    cdef Py_ssize_t lo = _ceil_div(-ix0, sw), hi = _ceil_div(w - ix0, sw)
    if lo < 0:
        lo = 0
    if lo > wo:
        lo = wo
    if hi > wo:
        hi = wo
    if hi < lo:
        hi = lo
    MINIDL_CHECK(0 <= lo and lo <= hi and hi <= wo)
    x_lo[0] = lo
    x_hi[0] = hi


cdef inline void _flat_range(Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t off,
                             Py_ssize_t *q0, Py_ssize_t *q1) noexcept nogil:
    # The output positions q in [0, ho*w) whose input position q + off lies in [0, h*w), as
    # [q0, q1) with 0 <= q0 <= q1 <= ho*w for every offset: an offset that puts the whole
    # row in the padding (|off| >= ho*w) gives an empty range at the end, never one past it.
    cdef Py_ssize_t P = ho * w, lo = -off if off < 0 else 0, hi = h * w - off
    if lo > P:
        lo = P
    if hi > P:
        hi = P
    if hi < lo:
        hi = lo
    MINIDL_CHECK(0 <= lo and lo <= hi and hi <= P)
    q0[0] = lo
    q1[0] = hi


cdef inline void _flat_columns(Py_ssize_t j, Py_ssize_t dw, Py_ssize_t pw, Py_ssize_t w,
                               Py_ssize_t *x_lo, Py_ssize_t *x_hi) noexcept nogil:
    # Stride 1 with WO == W: the output columns xo whose input column xo + j*dw - pw lies in
    # [0, W), as [x_lo, x_hi) with 0 <= x_lo <= x_hi <= W.
    _tap_range(j * dw - pw, 1, w, w, x_lo, x_hi)


cdef inline void _unfold_channel_flat(const floating *x, floating *cols, Py_ssize_t row_stride,
                                      Py_ssize_t h, Py_ssize_t w, int kh, int kw, int ph,
                                      int pw, int dh, int dw, int ho) noexcept nogil:
    # Stride 1 with WO == W (same padding): the output position q = y*W + xo reads the input
    # position q + off, off = (i*dh - ph)*W + j*dw - pw, so each kernel row (i, j) is one flat
    # copy of the in-bounds range, after which the positions whose input column falls outside
    # [0, W) (they read the neighbouring row, or nothing at the ends) are set to zero. Far
    # fewer, longer loops than one short copy per output row; the same values.
    cdef Py_ssize_t i, j, y, xo, q, q0, q1, off, x_lo, x_hi, P = ho * w
    cdef floating *out
    cdef const floating *src
    for i in range(kh):
        for j in range(kw):
            out = cols + (i * kw + j) * row_stride
            off = (i * dh - ph) * w + j * dw - pw
            _flat_range(h, w, ho, off, &q0, &q1)
            for q in range(q0):
                out[q] = 0
            if q0 < q1:
                # src[k] is input position q0 + off + k: in [0, h*w) for k < q1 - q0
                src = x + (q0 + off)
                for q in range(q1 - q0):
                    out[q0 + q] = src[q]
            for q in range(q1, P):
                out[q] = 0
            _flat_columns(j, dw, pw, w, &x_lo, &x_hi)
            if x_lo > 0 or x_hi < w:
                for y in range(ho):
                    for xo in range(x_lo):
                        out[y * w + xo] = 0
                    for xo in range(x_hi, w):
                        out[y * w + xo] = 0


cdef inline void _fold_channel_owned(floating *cols, Py_ssize_t row_stride, floating *dx,
                                     Py_ssize_t h, Py_ssize_t w,
                                     int kh, int kw, int sh, int sw, int ph, int pw,
                                     int dh, int dw, int ho, int wo) noexcept nogil:
    # _fold_channel for a column workspace this module owns and may overwrite: with stride 1
    # and WO == W the columns that fall outside the input are zeroed in place, and then each
    # kernel row (i, j) adds in as one flat range (see _unfold_channel_flat).
    cdef Py_ssize_t i, j, y, xo, q, q0, q1, off, x_lo, x_hi
    cdef floating *src
    cdef floating *dst
    if not (sh == 1 and sw == 1 and wo == w):
        _fold_channel(cols, row_stride, dx, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
        return
    for i in range(kh):
        for j in range(kw):
            src = cols + (i * kw + j) * row_stride
            off = (i * dh - ph) * w + j * dw - pw
            _flat_columns(j, dw, pw, w, &x_lo, &x_hi)
            if x_lo > 0 or x_hi < w:
                for y in range(ho):
                    for xo in range(x_lo):
                        src[y * w + xo] = 0
                    for xo in range(x_hi, w):
                        src[y * w + xo] = 0
            _flat_range(h, w, ho, off, &q0, &q1)
            if q0 < q1:
                dst = dx + (q0 + off)  # dst[k] is input position q0 + off + k, in [0, h*w)
                for q in range(q1 - q0):
                    dst[q] += src[q0 + q]


cdef inline void _fold_channel(const floating *cols, Py_ssize_t row_stride, floating *dx,
                               Py_ssize_t h, Py_ssize_t w,
                               int kh, int kw, int sh, int sw, int ph, int pw,
                               int dh, int dw, int ho, int wo) noexcept nogil:
    cdef Py_ssize_t i, j, y, xo, iy, x_lo, x_hi, ix0
    cdef const floating *src
    cdef floating *dst
    for i in range(kh):
        for j in range(kw):
            src = cols + (i * kw + j) * row_stride
            ix0 = j * dw - pw
            _tap_range(ix0, sw, w, wo, &x_lo, &x_hi)  # 0 <= x_lo <= x_hi <= wo
            if x_lo == x_hi:
                continue
            for y in range(ho):
                iy = y * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                # dst[k] is input column ix0 + (x_lo + k)*sw: in [0, w) for k < x_hi - x_lo
                dst = dx + iy * w + ix0 + x_lo * sw
                if sw == 1:
                    for xo in range(x_hi - x_lo):
                        dst[xo] += src[y * wo + x_lo + xo]
                else:
                    for xo in range(x_hi - x_lo):
                        dst[xo * sw] += src[y * wo + x_lo + xo]


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # ceil(a / b) for b > 0 and any sign of a (C division truncates toward zero)
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


# ------------------------------------------------------------------------------------------
# Convolution as per-image im2col + GEMM inside one OpenMP loop over images.
#
# Each thread unfolds one image into its own workspace and multiplies it with the BLAS called
# single-threaded from that thread, so the images run in parallel and no BLAS thread pool ever
# competes with the OpenMP threads for the cores. The GEMM is the BLAS's Fortran ?gemm, taken
# at run time from scipy.linalg.cython_blas (set_blas); without it this path is not used.

def conv_forward_images(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                        const floating[::1] bias, floating[:, :, ::1] out, floating[:, ::1] ws,
                        int groups, int sh, int sw, int ph, int pw, int dh, int dw, int ho,
                        int wo):
    """out (N, F, HO*WO) = conv(x (N, C, H, W), w (F, C/G, KH, KW)) + bias (F,; or None),
    one image per iteration (the bias is added while the image's output is in cache).

    ws: (threads, C*KH*KW*HO*WO) workspace, one row per OpenMP thread (its row count is the
    number of threads used). Needs set_blas first."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int G = groups, Fg = F // groups, Kg = Cg * KH * KW, P = ho * wo
    cdef int nt = ws.shape[0]
    cdef Py_ssize_t n, c, g
    cdef int tid
    cdef floating *cols
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef floating *wsp = &ws[0, 0]
    cdef Py_ssize_t wstride = ws.shape[1]
    cdef Py_ssize_t f, q
    cdef floating bf
    cdef floating *orow
    cdef const floating *bp = NULL
    if bias is not None:
        bp = &bias[0]
    with nogil:
        for n in prange(N, num_threads=nt, schedule="dynamic"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)  # one workspace row per thread of this region
            cols = wsp + tid * wstride
            for c in range(C):
                _unfold_channel(xp + (n * C + c) * H * W, cols + c * KH * KW * P, P, H, W,
                                KH, KW, sh, sw, ph, pw, dh, dw, ho, wo)
            for g in range(G):
                gemm(c'N', c'N', Fg, P, Kg, <floating>1, wp + g * Fg * Kg, Kg,
                      cols + g * Kg * P, P, <floating>0, op + (n * F + g * Fg) * P, P)
            if bp != NULL:
                for f in range(F):
                    bf = bp[f]
                    orow = op + (n * F + f) * P
                    for q in range(P):
                        orow[q] = orow[q] + bf


def conv_backward_images(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                         const floating[:, :, ::1] dout, floating[:, :, :, ::1] dx,
                         floating[:, ::1] dw_part, floating[:, ::1] ws_cols,
                         floating[:, ::1] ws_dcols, int groups, int sh, int sw, int ph, int pw,
                         int dh, int dw, int ho, int wo):
    """dx (N, C, H, W) and per-thread weight gradients dw_part (threads, F*C/G*KH*KW; summed
    by the caller, must start zeroed) from dout (N, F, HO*WO), one image per iteration."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int G = groups, Fg = F // groups, Kg = Cg * KH * KW, P = ho * wo
    cdef int nt = ws_cols.shape[0]
    cdef Py_ssize_t n, c, g
    cdef int tid
    cdef floating *cols
    cdef floating *dcols
    cdef floating *dwp
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef floating *cp0 = &ws_cols[0, 0]
    cdef floating *dcp0 = &ws_dcols[0, 0]
    cdef floating *dwp0 = &dw_part[0, 0]
    cdef Py_ssize_t wstride = ws_cols.shape[1], dwstride = dw_part.shape[1]
    with nogil:
        for n in prange(N, num_threads=nt, schedule="dynamic"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)
            cols = cp0 + tid * wstride
            dcols = dcp0 + tid * wstride
            dwp = dwp0 + tid * dwstride
            for c in range(C):
                _unfold_channel(xp + (n * C + c) * H * W, cols + c * KH * KW * P, P, H, W,
                                KH, KW, sh, sw, ph, pw, dh, dw, ho, wo)
            for g in range(G):
                # dw[g] += dout[n, g] (Fg, P) @ cols[g]^T (P, Kg)
                gemm(c'N', c'T', Fg, Kg, P, <floating>1, dp + (n * F + g * Fg) * P, P,
                      cols + g * Kg * P, P, <floating>1, dwp + g * Fg * Kg, Kg)
                # dcols[g] = w[g]^T (Kg, Fg) @ dout[n, g] (Fg, P)
                gemm(c'T', c'N', Kg, P, Fg, <floating>1, wp + g * Fg * Kg, Kg,
                      dp + (n * F + g * Fg) * P, P, <floating>0, dcols + g * Kg * P, P)
            memset(dxp + n * C * H * W, 0, <size_t>C * H * W * sizeof(floating))
            for c in range(C):
                _fold_channel_owned(dcols + c * KH * KW * P, P, dxp + (n * C + c) * H * W,
                                    H, W, KH, KW, sh, sw, ph, pw, dh, dw, ho, wo)


# ------------------------------------------------------------------------------------------
# Convolution through minidl's own GEMM (_gemm), one block of output positions at a time.
#
# Forward: the weights are packed once (the GEMM's A panels, shared by all threads); then each
# (image, group, block of `nc` output positions) is one OpenMP piece, whose im2col goes
# straight into the GEMM's B panels (no column matrix in memory, no second copy) and stays in
# L2 while the micro-kernels multiply it. Images smaller than a block go `span` whole images
# per block instead (their columns run on across image boundaries inside the panels), so that
# the last panel is not mostly padding and the weights stream past once per block, not once
# per image; that product goes through the thread's scratch into each image's rows of out. Backward, first the input gradient, parallel over
# (image, group): per block, dcols = w^T @ dout (w^T packed once) is folded into dx at once;
# then the weight gradient, parallel over blocks of its columns (rows of the im2col matrix):
# each piece unfolds its own rows of every block and accumulates dout @ cols^T into its own
# columns of dw. Each value of out, dx and dw is thus summed by one thread in one fixed order,
# so the results do not depend on the number of threads. A 1x1 convolution with stride 1 and
# no padding reads x and writes dx directly (its im2col matrix is x itself).

cdef inline bint _pointwise(int KH, int KW, int sh, int sw, int ph, int pw) noexcept nogil:
    return KH == 1 and KW == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0


cdef long _packed_a_size(bint dbl, long m, long k) noexcept nogil:
    return _gemm.dpacked_a_size(m, k) if dbl else _gemm.spacked_a_size(m, k)


cdef long _packed_b_size(bint dbl, long k, long n) noexcept nogil:
    return _gemm.dpacked_b_size(k, n) if dbl else _gemm.spacked_b_size(k, n)


cdef long _gemm_workspace(bint dbl, long m, long n, long k) noexcept nogil:
    return _gemm.dgemm_workspace(m, n, k) if dbl else _gemm.sgemm_workspace(m, n, k)


def packed_workspace(bint double, int G, int Fg, int Kg, int nc, int krows, bint pointwise,
                     int span=1, int P=0):
    """Sizes (elements) the packed path needs: (weights, per_thread): the packed weights of
    all G groups (w for forward, w^T for backward; the larger), and one thread's scratch for
    blocks of nc output positions and dw pieces of krows columns (forward or backward); with
    span > 1 the forward's blocks are span whole images of P positions (their packed columns
    and their Fg x span*P product)."""
    cdef long weights = G * max(_packed_a_size(double, Fg, Kg), _packed_a_size(double, Kg, Fg))
    cdef long fwd = _packed_b_size(double, Kg, nc)
    if span > 1:
        fwd = max(fwd, _packed_b_size(double, Kg, <long>span * P) + <long>Fg * span * P)
    cdef long bwd_dx = _packed_b_size(double, Fg, nc) + (0 if pointwise else <long>Kg * nc)
    cdef long bwd_dw = (0 if pointwise else <long>krows * nc) + _gemm_workspace(double, Fg, krows, nc)
    return weights, max(fwd, bwd_dx, bwd_dw)


def conv_forward_packed(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                        const floating[::1] bias, floating[:, :, ::1] out,
                        floating[::1] w_packed, floating[:, ::1] ws, int groups, int sh,
                        int sw, int ph, int pw, int dh, int dw, int ho, int wo, int nc,
                        int span=1):
    """out (N, F, HO*WO) = conv(x (N, C, H, W), w (F, C/G, KH, KW)) + bias (F,; or None).

    One OpenMP piece per (image, group, block of nc output positions), or with span > 1 per
    (run of span whole images, group): its blocks' columns span the images, which keeps the
    GEMM's panels full on small images, and its product goes through the thread's scratch
    into each image's rows of out. Every output value is the same sum whatever the blocking,
    so out does not depend on span or the thread count. w_packed and ws (one row per thread;
    its row count is the number of threads) are sized by packed_workspace."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int G = groups, Fg = F // groups, Kg = Cg * KH * KW, P = ho * wo
    cdef bint dbl = floating is double, pointwise = _pointwise(KH, KW, sh, sw, ph, pw)
    cdef long a_size = _packed_a_size(dbl, Fg, Kg)
    cdef long span_cols = <long>span * P
    cdef long span_b = _packed_b_size(dbl, Kg, span_cols) if span > 1 else 0
    cdef Py_ssize_t nblk = (P + nc - 1) // nc if nc > 0 else 0
    cdef Py_ssize_t nruns = (N + span - 1) // span if span > 0 else 0
    if nc < 1 or span < 1 or (span > 1 and pointwise) or out.shape[0] != N or \
            out.shape[1] != F or out.shape[2] != P or w_packed.shape[0] < G * a_size or \
            ws.shape[1] < _packed_b_size(dbl, Kg, nc) or \
            ws.shape[1] < span_b + (<long>Fg * span_cols if span > 1 else 0):
        raise ValueError(f"conv_forward_packed: out {(out.shape[0], out.shape[1], out.shape[2])}"
                         f", w_packed {w_packed.shape[0]}, ws {(ws.shape[0], ws.shape[1])}, "
                         f"nc {nc} or span {span} do not fit x {(N, C, H, W)}, "
                         f"w {(F, Cg, KH, KW)}")
    cdef int nt = ws.shape[0]
    cdef Py_ssize_t u, n, g, blk, f, q, q0, q1, n0, n1, i
    cdef floating *bp
    cdef floating *o
    cdef floating *cs
    cdef const floating *xg
    cdef floating bf
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0]
    cdef floating *wpk = &w_packed[0]
    cdef floating *wsp = &ws[0, 0]
    cdef Py_ssize_t wstride = ws.shape[1]
    cdef const floating *biasp = NULL
    if bias is not None:
        biasp = &bias[0]
    with nogil:
        for g in range(G):
            _gemm.pack_a(False, wp + g * Fg * Kg, Kg, Fg, Kg, wpk + g * a_size)
        if span > 1:
            # runs of whole images: columns [0, (n1 - n0)*P) of images n0..n1-1, packed,
            # multiplied into cs (Fg x that many), then copied out image by image
            for u in prange(nruns * G, num_threads=nt, schedule="dynamic"):
                n0 = (u // G) * span
                n1 = min(n0 + span, N)
                g = u % G
                MINIDL_CHECK(threadid() < nt and 0 <= n0 and n0 < n1 and n1 <= N)
                bp = wsp + threadid() * wstride
                cs = bp + span_b
                xg = xp + (n0 * C + g * Cg) * H * W
                _gemm.pack_b_im2col(xg, <long>C * H * W, Cg, H, W, KH, KW, sh, sw, ph, pw, dh,
                                    dw, wo, P, 0, (n1 - n0) * P, bp)
                _gemm.gemm_prepacked(Fg, (n1 - n0) * P, Kg, wpk + g * a_size, bp, cs,
                                     (n1 - n0) * P, False)
                for i in range(n1 - n0):
                    for f in range(Fg):
                        o = op + ((n0 + i) * F + g * Fg + f) * P
                        bf = biasp[g * Fg + f] if biasp != NULL else 0
                        for q in range(P):
                            o[q] = cs[f * (n1 - n0) * P + i * P + q] + bf
        else:
            for u in prange(N * G * nblk, num_threads=nt, schedule="dynamic"):
                n = u // (G * nblk)
                g = (u // nblk) % G
                blk = u % nblk
                q0 = blk * nc
                q1 = min(q0 + nc, P)
                MINIDL_CHECK(threadid() < nt)  # one workspace row per thread of this region
                bp = wsp + threadid() * wstride
                xg = xp + (n * C + g * Cg) * H * W
                if pointwise:
                    _gemm.pack_b(False, xg + q0, P, Kg, q1 - q0, bp)
                else:
                    _gemm.pack_b_im2col(xg, 0, Cg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, wo, P,
                                        q0, q1, bp)
                o = op + (n * F + g * Fg) * P + q0
                _gemm.gemm_prepacked(Fg, q1 - q0, Kg, wpk + g * a_size, bp, o, P, False)
                if biasp != NULL:
                    for f in range(Fg):
                        bf = biasp[g * Fg + f]
                        for q in range(q1 - q0):
                            o[f * P + q] = o[f * P + q] + bf


def conv_backward_packed(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                         const floating[:, :, ::1] dout, floating[:, :, :, ::1] dx,
                         floating[:, ::1] dw_out, floating[::1] w_packed, floating[:, ::1] ws,
                         int groups, int sh, int sw, int ph, int pw, int dh, int dw, int ho,
                         int wo, int nc, int krows):
    """dx (N, C, H, W) and dw_out (F, C/G*KH*KW; must start zeroed, accumulated into) from
    dout (N, F, HO*WO): dx parallel over (image, group), dw over pieces of krows of its
    columns. w_packed and ws (one row per thread) are sized by packed_workspace."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef int G = groups, Fg = F // groups, Kg = Cg * KH * KW, P = ho * wo
    cdef bint dbl = floating is double, pointwise = _pointwise(KH, KW, sh, sw, ph, pw)
    cdef long a_size = _packed_a_size(dbl, Kg, Fg), b_size = _packed_b_size(dbl, Fg, nc)
    cdef Py_ssize_t nblk = (P + nc - 1) // nc if nc > 0 else 0
    cdef Py_ssize_t kpieces = (Kg + krows - 1) // krows if krows > 0 else 0
    if nc < 1 or krows < 1 or dout.shape[0] != N or dout.shape[1] != F or \
            dout.shape[2] != P or dw_out.shape[0] != F or dw_out.shape[1] != Kg or \
            w_packed.shape[0] < G * a_size or ws.shape[1] < max(
                b_size + (0 if pointwise else <long>Kg * nc),
                (0 if pointwise else <long>krows * nc) + _gemm_workspace(dbl, Fg, krows, nc)):
        raise ValueError(f"conv_backward_packed: dout {(dout.shape[0], dout.shape[1], dout.shape[2])}"
                         f", dw {(dw_out.shape[0], dw_out.shape[1])}, w_packed "
                         f"{w_packed.shape[0]}, ws {(ws.shape[0], ws.shape[1])}, nc {nc} or "
                         f"krows {krows} do not fit x {(N, C, H, W)}, w {(F, Cg, KH, KW)}")
    cdef int nt = ws.shape[0]
    cdef Py_ssize_t u, n, g, blk, q0, q1, k0, k1
    cdef floating *bp
    cdef floating *dcols
    cdef floating *cols
    cdef floating *gws
    cdef floating *dxg
    cdef const floating *xg
    cdef const floating *d
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef floating *dwp = &dw_out[0, 0]
    cdef floating *wpk = &w_packed[0]
    cdef floating *wsp = &ws[0, 0]
    cdef Py_ssize_t wstride = ws.shape[1]
    with nogil:
        # dx: per block, dcols (Kg x block) = w[g]^T @ dout[n, g, block], folded into dx[n, g]
        for g in range(G):
            _gemm.pack_a(True, wp + g * Fg * Kg, Kg, Kg, Fg, wpk + g * a_size)
        for u in prange(N * G, num_threads=nt, schedule="dynamic"):
            n = u // G
            g = u % G
            MINIDL_CHECK(threadid() < nt)
            bp = wsp + threadid() * wstride
            dcols = bp + b_size
            dxg = dxp + (n * C + g * Cg) * H * W
            if not pointwise:
                memset(dxg, 0, <size_t>Cg * H * W * sizeof(floating))
            for blk in range(nblk):
                q0 = blk * nc
                q1 = min(q0 + nc, P)
                _gemm.pack_b(False, dp + (n * F + g * Fg) * P + q0, P, Fg, q1 - q0, bp)
                if pointwise:
                    _gemm.gemm_prepacked(Kg, q1 - q0, Fg, wpk + g * a_size, bp, dxg + q0, P,
                                         False)
                else:
                    _gemm.gemm_prepacked(Kg, q1 - q0, Fg, wpk + g * a_size, bp, dcols, q1 - q0,
                                         False)
                    _gemm.col2im_rows(dcols, Cg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, wo, 0,
                                      Kg, q0, q1, dxg)
        # dw[g][:, k0:k1] += dout[n, g, block] @ cols[n, g][k0:k1, block]^T, over n and blocks
        for u in prange(G * kpieces, num_threads=nt, schedule="dynamic"):
            g = u // kpieces
            k0 = (u % kpieces) * krows
            k1 = min(k0 + krows, Kg)
            MINIDL_CHECK(threadid() < nt)
            cols = wsp + threadid() * wstride
            gws = cols if pointwise else cols + <long>krows * nc
            for n in range(N):
                xg = xp + (n * C + g * Cg) * H * W
                for blk in range(nblk):
                    q0 = blk * nc
                    q1 = min(q0 + nc, P)
                    d = dp + (n * F + g * Fg) * P + q0
                    if pointwise:
                        _gemm.gemm(False, True, Fg, k1 - k0, q1 - q0, d, P, xg + k0 * P + q0, P,
                                   True, dwp + g * Fg * Kg + k0, Kg, gws)
                    else:
                        _gemm.im2col_rows(xg, Cg, H, W, KH, KW, sh, sw, ph, pw, dh, dw, wo, k0,
                                          k1, q0, q1, cols)
                        _gemm.gemm(False, True, Fg, k1 - k0, q1 - q0, d, P, cols, q1 - q0, True,
                                   dwp + g * Fg * Kg + k0, Kg, gws)
