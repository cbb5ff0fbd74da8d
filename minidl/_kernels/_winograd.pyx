# cython: language_level=3
"""Winograd convolution F(2x2,3x3) and F(4x4,3x3) for 3x3, stride 1 (Lavin & Gray 2016).

Symbols: N images, C input channels, F output channels (filters), an (H, W) input plane and
an (HO, WO) output plane, tiles of m x m outputs (m = 2 or 4) read from alpha x alpha input
patches (alpha = m + 2), th x tw tiles per plane (th = ceil(HO/m), tw = ceil(WO/m)),
R = N*th tile rows in all, xi = i*alpha + j one of the alpha^2 tile elements. A tile row
(image n, tile row ty) is global row r = n*th + ty; a block is a run of tile rows [r0, r1)
whose B = (r1 - r0)*tw tiles are processed together.

One pass (forward, or the data gradient, which is the same convolution of dout) is

    U[xi] (F, C)   = G w G^T                        filter transform   (wino_filter)
    V[xi] (C, B)   = B^T d B                        input transform    (wino_input_rows)
    M[xi] (F, B)   = U[xi] @ V[xi]                  alpha^2 GEMMs      (_products)
    out            = A^T M A (+ bias)               output transform   (wino_output_rows)

and the filter gradient is

    Z[xi] (F, B)   = A dY A^T                        (wino_grad_rows)
    S[xi] (F, C)  += Z[xi] @ V[xi]^T                 alpha^2 GEMMs, summed over blocks
    dw             = G^T S G                         (wino_filter_grad)

V, M and Z hold a block's tiles side by side, V[xi][c][(r - r0)*tw + t], so that each tile
element is one GEMM over the block. Their tile elements lie xi_stride apart (not a multiple
of 4 KB: see xi_stride).

The GEMMs: in float32, where the CPU has AVX-512, a register-blocked kernel (wino_sgemm in
_winograd.h); otherwise, and in float64, the BLAS's ?gemm called single-threaded from the
OpenMP threads (minidl._kernels._common.gemm: it needs minidl._kernels._images_blas() to
have installed the BLAS, and the BLAS held at one thread meanwhile,
minidl._kernels._SingleThreadedBlas).

Two ways to run the blocks, chosen (with the block size) by minidl._kernels.winograd:

* ``*_blocks``: the blocks are spread over the OpenMP threads; each thread transforms its
  block into its own workspace row, multiplies, and transforms back, so that a block's V
  and M stay in that core's caches. For many tiles (large planes or batches).
* the ``*_block`` phase functions: one block at a time, each phase parallel on its own
  (the transforms over (channel, run of tile rows) pairs, the GEMMs over the alpha^2 tile
  elements). For few tiles (small N, small planes), where the first way would leave a
  thread idle.

The filter gradient's blocks sum into one S per slot, each slot a fixed range of blocks (the
slots, not the threads, own the sums), so its result does not depend on the OpenMP schedule.

Safety: the C transforms read an input plane only inside [0, H) x [0, W) and write an output
plane only inside [0, HO) x [0, WO), whatever the offsets (see _winograd_impl.h); the
functions here check every workspace, scratch and matrix size against the arrays before
any loop, so that a wrong call raises ValueError instead of writing past a workspace.
"""
from cython.parallel cimport prange, threadid

from ._common cimport MINIDL_CHECK, floating, gemm

cdef extern from "_winograd.h" nogil:
    int wino_simd_products()
    void wino_sgemm(long F, long B, long K, const float *a, long lda, const float *b, long ldb,
                    float *c, long ldc, int accumulate)
    void wino_transpose(const float *src, long rows, long cols, long lds, float *dst, long ldd)
    void wino_input_rows_f(const float *base, long img_stride, long H, long W, int m, long th,
                           long r0, long r1, long oy, long ox, long tw, float *v, long vs,
                           float *scr)
    void wino_input_rows_d(const double *base, long img_stride, long H, long W, int m, long th,
                           long r0, long r1, long oy, long ox, long tw, double *v, long vs,
                           double *scr)
    void wino_output_rows_f(const float *mm, long ms, int m, long th, long r0, long r1, long tw,
                            float *base, long img_stride, long HO, long WO, float bias,
                            float *scr)
    void wino_output_rows_d(const double *mm, long ms, int m, long th, long r0, long r1,
                            long tw, double *base, long img_stride, long HO, long WO,
                            double bias, double *scr)
    void wino_grad_rows_f(const float *base, long img_stride, long HO, long WO, int m, long th,
                          long r0, long r1, long tw, float *z, long zs, float *scr)
    void wino_grad_rows_d(const double *base, long img_stride, long HO, long WO, int m,
                          long th, long r0, long r1, long tw, double *z, long zs, double *scr)
    void wino_filter_f(const float *w, long C, int m, float *u, long us, float *scr)
    void wino_filter_d(const double *w, long C, int m, double *u, long us, double *scr)
    void wino_filter_grad_f(const float *s, long ss, long C, int m, float *dw, float *scr)
    void wino_filter_grad_d(const double *s, long ss, long C, int m, double *dw, double *scr)


# 1: the float32 tile-wise products run the AVX-512 kernel of _winograd.h; 0: the BLAS.
# minidl._kernels.winograd decides (set_simd_products); the BLAS until it does.
cdef int _simd_products = 0


def simd_products_available():
    """True when this CPU can run the AVX-512 float32 products kernel."""
    return bool(wino_simd_products())


def set_simd_products(bint flag):
    """Use (True, where the CPU allows) or bypass the AVX-512 products kernel in float32;
    returns the previous setting. float64 products always go to the BLAS."""
    global _simd_products
    old = bool(_simd_products)
    _simd_products = 1 if (flag and wino_simd_products()) else 0
    return old



cdef struct Tiling:
    int m
    long A2        # alpha^2
    long C, H, W   # input channels and plane
    long F, HO, WO # output channels and plane
    long th, tw, R # tiles per column and per row of a plane; tile rows in all
    long oy, ox    # input row/column of output (0, 0)'s patch


def scratch_size(int m, long tw, long tiles, long channels):
    """Values of per-thread scratch the transforms need for planes of tw tiles per row, runs
    of up to `tiles` tiles, and `channels` (the larger of C and F) for the filters."""
    cdef long A = m + 2
    return max((A + 1) * (tw * m + 2), A * m * tiles, (9 + 3 * A) * channels)


def xi_stride(long values, long itemsize):
    """The distance (in values) between tile elements of a V, M or Z holding `values` per
    tile element: at least `values`, and one cache line more than a multiple of 4 KB. The
    transforms write (or read) all alpha^2 tile elements at once; at a multiple of 4 KB
    apart, as (C, B) matrices often are, those 16 or 36 streams fall into the same cache
    sets and evict each other (measured: 6x slower)."""
    cdef long nbytes = values * itemsize
    cdef long padded = ((nbytes - 64 + 4095) // 4096) * 4096 + 64
    if padded < nbytes:
        padded = nbytes
    return (padded + itemsize - 1) // itemsize


cdef Tiling _tiling(int m, long C, long H, long W, long F, long N, long HO, long WO,
                    long oy, long ox) except *:
    cdef Tiling g
    if m != 2 and m != 4:
        raise ValueError(f"winograd: m must be 2 or 4, got {m}")
    if min(N, C, H, W, F, HO, WO) < 1:
        raise ValueError(f"winograd: empty geometry (N={N}, C={C}, H={H}, W={W}, F={F}, "
                         f"HO={HO}, WO={WO})")
    g.m = m
    g.A2 = (m + 2) * (m + 2)
    g.C, g.H, g.W, g.F, g.HO, g.WO = C, H, W, F, HO, WO
    g.th = (HO + m - 1) // m
    g.tw = (WO + m - 1) // m
    g.R = N * g.th
    g.oy, g.ox = oy, ox
    return g


cdef int _require(bint ok, str what) except -1:
    if not ok:
        raise ValueError(f"winograd kernel: {what}")
    return 0


cdef int _check_scratch(Tiling *g, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t nt,
                        long tiles) except -1:
    # scratch for nt threads whose transforms take runs of up to `tiles` tiles
    cdef long need = scratch_size(g.m, g.tw, tiles, max(g.C, g.F))
    _require(rows == nt and nt >= 1, f"scratch has {rows} rows for {nt} threads")
    _require(cols >= need, f"scratch rows of {cols} values, need {need}")
    return 0


cdef int _check_matrices(str name, Py_ssize_t *shape, Py_ssize_t *strides, long itemsize,
                         long A2, long rows, long cols) except -1:
    # a (A2, rows, cols) view of contiguous (rows, cols) matrices that do not overlap: every
    # index the loops form stays inside it (NumPy gives axes of length 1 any stride)
    _require(shape[0] == A2 and shape[1] == rows and shape[2] == cols,
             f"{name} ({shape[0]}, {shape[1]}, {shape[2]}) must be ({A2}, {rows}, {cols})")
    _require((cols == 1 or strides[2] == itemsize) and (rows == 1 or strides[1] == cols * itemsize)
             and strides[0] >= rows * cols * itemsize and strides[0] % itemsize == 0,
             f"{name} must hold contiguous (rows, cols) matrices")
    return 0


cdef inline long _ld(Py_ssize_t *shape, Py_ssize_t *strides, long itemsize):
    # the row length of a view _check_matrices accepted
    return shape[2] if shape[1] == 1 else strides[1] // itemsize


cdef long _check_phase(Tiling *g, long r0, long r1, long chunk_rows, str name,
                       Py_ssize_t *shape, Py_ssize_t *strides, long itemsize, long rows,
                       Py_ssize_t scr_rows, Py_ssize_t scr_cols) except -1:
    # the checks of a phase function over tile rows [r0, r1) with one scratch row per thread
    # and a (alpha^2, rows, (r1 - r0)*tw) view: returns the number of runs of chunk_rows rows
    _require(0 <= r0 and r0 < r1 and r1 <= g.R, f"tile rows [{r0}, {r1}) outside [0, {g.R})")
    _check_matrices(name, shape, strides, itemsize, g.A2, rows, (r1 - r0) * g.tw)
    _require(chunk_rows >= 1, "chunk_rows must be positive")
    _check_scratch(g, scr_rows, scr_cols, scr_rows, chunk_rows * g.tw)
    return (r1 - r0 + chunk_rows - 1) // chunk_rows


# ---------------------------------------------------------------- per-block pieces (nogil)
# V, M and Z: tile element xi's (channels, columns) matrix at xi * xs, rows ld apart.

cdef inline void _input_rows(const floating *x, Tiling *g, long rb, long r0, long r1,
                             long c0, long c1, floating *v, long ld, long xs,
                             floating *scr) noexcept nogil:
    # V[xi][c][(r - rb)*tw + t] for channels [c0, c1) and tile rows [r0, r1) of x (N, C, H, W)
    cdef long c
    for c in range(c0, c1):
        if floating is float:
            wino_input_rows_f(x + c * g.H * g.W, g.C * g.H * g.W, g.H, g.W, g.m, g.th, r0, r1,
                              g.oy, g.ox, g.tw, v + c * ld + (r0 - rb) * g.tw, xs, scr)
        else:
            wino_input_rows_d(x + c * g.H * g.W, g.C * g.H * g.W, g.H, g.W, g.m, g.th, r0, r1,
                              g.oy, g.ox, g.tw, v + c * ld + (r0 - rb) * g.tw, xs, scr)


cdef inline void _output_rows(const floating *mm, Tiling *g, long rb, long r0, long r1,
                              long f0, long f1, long ld, long xs, const floating *bias,
                              floating *out, floating *scr) noexcept nogil:
    # out (N, F, HO, WO) at tile rows [r0, r1), filters [f0, f1), from M[xi][f][(r - rb)*tw + t]
    cdef long f
    cdef floating bf
    for f in range(f0, f1):
        bf = bias[f] if bias != NULL else 0
        if floating is float:
            wino_output_rows_f(mm + f * ld + (r0 - rb) * g.tw, xs, g.m, g.th, r0, r1, g.tw,
                               out + f * g.HO * g.WO, g.F * g.HO * g.WO, g.HO, g.WO, bf, scr)
        else:
            wino_output_rows_d(mm + f * ld + (r0 - rb) * g.tw, xs, g.m, g.th, r0, r1, g.tw,
                               out + f * g.HO * g.WO, g.F * g.HO * g.WO, g.HO, g.WO, bf, scr)


cdef inline void _grad_rows(const floating *dout, Tiling *g, long rb, long r0, long r1,
                            long f0, long f1, floating *z, long ld, long xs,
                            floating *scr) noexcept nogil:
    # Z[xi][f][(r - rb)*tw + t] = A dY A^T for filters [f0, f1), tile rows [r0, r1) of dout
    cdef long f
    for f in range(f0, f1):
        if floating is float:
            wino_grad_rows_f(dout + f * g.HO * g.WO, g.F * g.HO * g.WO, g.HO, g.WO, g.m, g.th,
                             r0, r1, g.tw, z + f * ld + (r0 - rb) * g.tw, xs, scr)
        else:
            wino_grad_rows_d(dout + f * g.HO * g.WO, g.F * g.HO * g.WO, g.HO, g.WO, g.m, g.th,
                             r0, r1, g.tw, z + f * ld + (r0 - rb) * g.tw, xs, scr)


cdef inline void _products(const floating *u, const floating *v, floating *mm, long F, long C,
                           long ncols, long ldv, long vxs, long ldm, long mxs,
                           long xi) noexcept nogil:
    # M[xi] (F, ncols) = U[xi] (F, C) @ V[xi] (C, ncols), U (alpha^2, F, C) contiguous
    if floating is float:
        if _simd_products:
            wino_sgemm(F, ncols, C, u + xi * F * C, C, v + xi * vxs, ldv, mm + xi * mxs, ldm, 0)
            return
    gemm(c'N', c'N', <int>F, <int>ncols, <int>C, <floating>1, u + xi * F * C, <int>C,
         v + xi * vxs, <int>ldv, <floating>0, mm + xi * mxs, <int>ldm)


cdef inline void _filter_products(const floating *z, const floating *v, floating *s, long F,
                                  long C, long ncols, long ldz, long zxs, long ldv, long vxs,
                                  long xi, floating *vt) noexcept nogil:
    # S[xi] (F, C) += Z[xi] (F, ncols) @ V[xi]^T (ncols, C), S (alpha^2, F, C) contiguous.
    # The products kernel takes its right operand row-major: V[xi] is transposed into
    # vt (ncols * C values) first, in cache.
    if floating is float:
        if _simd_products:
            wino_transpose(v + xi * vxs, C, ncols, ldv, vt, C)
            wino_sgemm(F, C, ncols, z + xi * zxs, ldz, vt, C, s + xi * F * C, C, 1)
            return
    gemm(c'N', c'T', <int>F, <int>C, <int>ncols, <floating>1, z + xi * zxs, <int>ldz,
         v + xi * vxs, <int>ldv, <floating>1, s + xi * F * C, <int>C)


# ---------------------------------------------------------------- filters

cdef void _filter_pass(bint grad, const floating *src, floating *dst, long F, long C, int m,
                      floating[:, ::1] scr) except *:
    # grad False: dst u (alpha^2, F, C) = G w G^T of src w (F, C, 3, 3); grad True:
    # dst dw (F, C, 3, 3) = G^T s G of src s (alpha^2, F, C). Parallel over filters, one
    # scratch row per thread.
    cdef int nt = scr.shape[0]
    _require(nt >= 1 and scr.shape[1] >= (9 + 3 * (m + 2)) * C,
             "scratch too small for the filters")
    cdef Py_ssize_t f
    cdef int tid
    cdef floating *sp = &scr[0, 0]
    cdef long ss = scr.shape[1]
    with nogil:
        for f in prange(F, num_threads=nt, schedule="guided"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)
            if grad:
                if floating is float:
                    wino_filter_grad_f(src + f * C, F * C, C, m, dst + f * C * 9, sp + tid * ss)
                else:
                    wino_filter_grad_d(src + f * C, F * C, C, m, dst + f * C * 9, sp + tid * ss)
            else:
                if floating is float:
                    wino_filter_f(src + f * C * 9, C, m, dst + f * C, F * C, sp + tid * ss)
                else:
                    wino_filter_d(src + f * C * 9, C, m, dst + f * C, F * C, sp + tid * ss)


def filter_transform(const floating[:, :, :, ::1] w, floating[:, :, ::1] u,
                     floating[:, ::1] scr, int m):
    """u (alpha^2, F, C) = G w G^T of w (F, C, 3, 3), parallel over filters (one scratch row
    per thread)."""
    cdef long F = w.shape[0], C = w.shape[1], A = m + 2
    _require(m == 2 or m == 4, f"m must be 2 or 4, got {m}")
    _require(w.shape[2] == 3 and w.shape[3] == 3, "w must be (F, C, 3, 3)")
    _require(u.shape[0] == A * A and u.shape[1] == F and u.shape[2] == C,
             f"u {tuple(u.shape)[:3]} must be ({A * A}, {F}, {C})")
    if F and C:
        _filter_pass(False, &w[0, 0, 0, 0], &u[0, 0, 0], F, C, m, scr)


def filter_grad_transform(const floating[:, :, ::1] s, floating[:, :, :, ::1] dw,
                          floating[:, ::1] scr, int m):
    """dw (F, C, 3, 3) = G^T s G of the tile-summed products s (alpha^2, F, C), parallel
    over filters (one scratch row per thread)."""
    cdef long F = dw.shape[0], C = dw.shape[1], A = m + 2
    _require(m == 2 or m == 4, f"m must be 2 or 4, got {m}")
    _require(dw.shape[2] == 3 and dw.shape[3] == 3, "dw must be (F, C, 3, 3)")
    _require(s.shape[0] == A * A and s.shape[1] == F and s.shape[2] == C,
             f"s {tuple(s.shape)[:3]} must be ({A * A}, {F}, {C})")
    if F and C:
        _filter_pass(True, &s[0, 0, 0], &dw[0, 0, 0, 0], F, C, m, scr)


# ---------------------------------------------------------------- blocks over threads

def forward_blocks(const floating[:, :, :, ::1] x, const floating[:, :, ::1] u,
                   const floating[::1] bias, floating[:, :, :, ::1] out,
                   floating[:, ::1] ws_v, floating[:, ::1] ws_m, floating[:, ::1] scr,
                   int m, long oy, long ox, long block_rows, long vxs, long mxs):
    """out (N, F, HO, WO) = x (N, C, H, W) convolved with the transformed filters
    u (alpha^2, F, C) (+ bias (F,) or None), output (0, 0) reading input (oy, ox).

    Blocks of block_rows tile rows, spread over the threads, each with its own row of ws_v,
    ws_m and scr: V and M of a block, tile elements vxs and mxs values apart (xi_stride of
    C and F times block_rows*tw), and scratch_size values."""
    cdef Tiling g = _tiling(m, x.shape[1], x.shape[2], x.shape[3], out.shape[1], x.shape[0],
                            out.shape[2], out.shape[3], oy, ox)
    cdef int nt = ws_v.shape[0]
    cdef long ld = block_rows * g.tw
    _require(out.shape[0] == x.shape[0], "x and out hold different numbers of images")
    _require(u.shape[0] == g.A2 and u.shape[1] == g.F and u.shape[2] == g.C,
             f"u {tuple(u.shape)[:3]} must be ({g.A2}, {g.F}, {g.C})")
    _require(bias is None or bias.shape[0] == g.F, "bias must have F values")
    _require(block_rows >= 1, "block_rows must be positive")
    _require(vxs >= g.C * ld and mxs >= g.F * ld, "tile elements overlap")
    _require(ws_m.shape[0] == nt and ws_v.shape[1] >= g.A2 * vxs
             and ws_m.shape[1] >= g.A2 * mxs, "block workspaces too small")
    _check_scratch(&g, scr.shape[0], scr.shape[1], nt, ld)
    cdef long nb = (g.R + block_rows - 1) // block_rows
    cdef Py_ssize_t b, xi
    cdef long r0, r1
    cdef int tid
    cdef floating *v
    cdef floating *mm
    cdef floating *sc
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *up = &u[0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef const floating *bp = NULL
    if bias is not None:
        bp = &bias[0]
    cdef floating *vp0 = &ws_v[0, 0]
    cdef floating *mp0 = &ws_m[0, 0]
    cdef floating *sp0 = &scr[0, 0]
    cdef long vstride = ws_v.shape[1], mstride = ws_m.shape[1], sstride = scr.shape[1]
    with nogil:
        for b in prange(nb, num_threads=nt, schedule="dynamic"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)  # one workspace row per thread of this region
            v = vp0 + tid * vstride
            mm = mp0 + tid * mstride
            sc = sp0 + tid * sstride
            r0 = b * block_rows
            r1 = min(r0 + block_rows, g.R)  # the last block may be short; r1 - r0 <= block_rows
            _input_rows(xp, &g, r0, r0, r1, 0, g.C, v, ld, vxs, sc)
            for xi in range(g.A2):
                _products(up, v, mm, g.F, g.C, (r1 - r0) * g.tw, ld, vxs, ld, mxs, xi)
            _output_rows(mm, &g, r0, r0, r1, 0, g.F, ld, mxs, bp, op, sc)


def filter_grad_blocks(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dout,
                       floating[:, :, :, ::1] s_parts, floating[:, ::1] ws_v,
                       floating[:, ::1] ws_z, floating[:, ::1] ws_t, floating[:, ::1] scr,
                       int m, long oy, long ox, long block_rows, long vxs, long zxs):
    """s_parts[k] (alpha^2, F, C) += the products Z @ V^T of slot k's blocks: slot k of
    nslots = s_parts.shape[0] takes blocks [k*nb/nslots, (k+1)*nb/nslots), so the sum over
    slots does not depend on the schedule. x (N, C, H, W), dout (N, F, HO, WO).

    The slots are spread over the threads (more slots than threads keep the threads busy when
    one is held up); each thread has a row of ws_v and ws_z (V and Z of a block, tile elements
    vxs and zxs apart), ws_t (block_rows*tw*C values: one transposed tile element of V) and
    scr."""
    cdef Tiling g = _tiling(m, x.shape[1], x.shape[2], x.shape[3], dout.shape[1], x.shape[0],
                            dout.shape[2], dout.shape[3], oy, ox)
    cdef int ns = s_parts.shape[0], nt = ws_v.shape[0]
    cdef long ld = block_rows * g.tw
    _require(dout.shape[0] == x.shape[0], "x and dout hold different numbers of images")
    _require(s_parts.shape[1] == g.A2 and s_parts.shape[2] == g.F and s_parts.shape[3] == g.C,
             f"s_parts {tuple(s_parts.shape)[1:4]} must be ({g.A2}, {g.F}, {g.C})")
    _require(ns >= 1 and block_rows >= 1, "block_rows and the slots must be positive")
    _require(vxs >= g.C * ld and zxs >= g.F * ld, "tile elements overlap")
    _require(ws_z.shape[0] == nt and ws_v.shape[1] >= g.A2 * vxs
             and ws_z.shape[1] >= g.A2 * zxs, "block workspaces too small")
    _require(ws_t.shape[0] == nt and ws_t.shape[1] >= ld * g.C, "transpose workspace too small")
    _check_scratch(&g, scr.shape[0], scr.shape[1], nt, ld)
    cdef long nb = (g.R + block_rows - 1) // block_rows
    cdef Py_ssize_t k, b, xi
    cdef long r0, r1
    cdef int tid
    cdef floating *v
    cdef floating *z
    cdef floating *t
    cdef floating *sc
    cdef floating *sk
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef floating *spp = &s_parts[0, 0, 0, 0]
    cdef floating *vp0 = &ws_v[0, 0]
    cdef floating *zp0 = &ws_z[0, 0]
    cdef floating *tp0 = &ws_t[0, 0]
    cdef floating *sp0 = &scr[0, 0]
    cdef long vstride = ws_v.shape[1], zstride = ws_z.shape[1], sstride = scr.shape[1]
    cdef long tstride = ws_t.shape[1], pstride = g.A2 * g.F * g.C
    with nogil:
        for k in prange(ns, num_threads=nt, schedule="dynamic"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)  # the block workspaces belong to the thread, S to the slot
            v = vp0 + tid * vstride
            z = zp0 + tid * zstride
            t = tp0 + tid * tstride
            sc = sp0 + tid * sstride
            sk = spp + k * pstride
            for b in range(k * nb // ns, (k + 1) * nb // ns):
                r0 = b * block_rows
                r1 = min(r0 + block_rows, g.R)
                _input_rows(xp, &g, r0, r0, r1, 0, g.C, v, ld, vxs, sc)
                _grad_rows(dp, &g, r0, r0, r1, 0, g.F, z, ld, zxs, sc)
                for xi in range(g.A2):
                    _filter_products(z, v, sk, g.F, g.C, (r1 - r0) * g.tw, ld, zxs, ld, vxs,
                                     xi, t)


# ---------------------------------------------------------------- one block, phases parallel
# v, mm and z are (alpha^2, rows, columns) views with contiguous rows, whose tile elements may
# lie further apart than rows*columns (xi_stride), as minidl._kernels.winograd lays them out.

cdef void _transform_block(bint grad, const floating *src, Tiling *g, long channels,
                          floating[:, :, :] dst, floating[:, ::1] scr, long r0, long r1,
                          long chunk_rows, str name) except *:
    # dst (alpha^2, channels, (r1 - r0)*tw) = the tiles of rows [r0, r1) of src transformed:
    # B^T d B of the input (grad False) or A dY A^T of the output gradient (grad True),
    # parallel over (channel, run of chunk_rows tile rows) pairs
    cdef int nt = scr.shape[0]
    cdef long nch = _check_phase(g, r0, r1, chunk_rows, name, dst.shape, dst.strides,
                                 sizeof(floating), channels, scr.shape[0], scr.shape[1])
    cdef long ld = _ld(dst.shape, dst.strides, sizeof(floating))
    cdef long xs = dst.strides[0] // <long>sizeof(floating)
    cdef Py_ssize_t k
    cdef long c, q0, q1
    cdef int tid
    cdef floating *dp = &dst[0, 0, 0]
    cdef floating *sp = &scr[0, 0]
    cdef long ss = scr.shape[1]
    with nogil:
        for k in prange(channels * nch, num_threads=nt, schedule="guided"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)
            c = k // nch
            q0 = r0 + (k % nch) * chunk_rows
            q1 = min(q0 + chunk_rows, r1)  # a run of at most chunk_rows rows: fits the scratch
            if grad:
                _grad_rows(src, g, r0, q0, q1, c, c + 1, dp, ld, xs, sp + tid * ss)
            else:
                _input_rows(src, g, r0, q0, q1, c, c + 1, dp, ld, xs, sp + tid * ss)


def input_block(const floating[:, :, :, ::1] x, floating[:, :, :] v, floating[:, ::1] scr,
                int m, long oy, long ox, long HO, long WO, long r0, long r1, long chunk_rows):
    """v (alpha^2, C, (r1 - r0)*tw) = B^T d B of tile rows [r0, r1) of x (N, C, H, W) for an
    (HO, WO) output, parallel over (channel, run of chunk_rows tile rows) pairs."""
    cdef Tiling g = _tiling(m, x.shape[1], x.shape[2], x.shape[3], 1, x.shape[0], HO, WO,
                            oy, ox)
    _transform_block(False, &x[0, 0, 0, 0], &g, g.C, v, scr, r0, r1, chunk_rows, "v")


def output_block(const floating[:, :, :] mm, const floating[::1] bias,
                 floating[:, :, :, ::1] out, floating[:, ::1] scr, int m, long r0, long r1,
                 long chunk_rows):
    """out (N, F, HO, WO) at tile rows [r0, r1) = A^T M A (+ bias (F,) or None) of the
    products mm (alpha^2, F, (r1 - r0)*tw), parallel over (filter, run of rows) pairs."""
    cdef Tiling g = _tiling(m, 1, 1, 1, out.shape[1], out.shape[0], out.shape[2],
                            out.shape[3], 0, 0)
    cdef int nt = scr.shape[0]
    _require(bias is None or bias.shape[0] == g.F, "bias must have F values")
    cdef long nch = _check_phase(&g, r0, r1, chunk_rows, "mm", mm.shape, mm.strides,
                                 sizeof(floating), g.F, scr.shape[0], scr.shape[1])
    cdef long ld = _ld(mm.shape, mm.strides, sizeof(floating))
    cdef long xs = mm.strides[0] // <long>sizeof(floating)
    cdef Py_ssize_t k
    cdef long f, q0, q1
    cdef int tid
    cdef const floating *mp = &mm[0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef const floating *bp = NULL
    if bias is not None:
        bp = &bias[0]
    cdef floating *sp = &scr[0, 0]
    cdef long ss = scr.shape[1]
    with nogil:
        for k in prange(g.F * nch, num_threads=nt, schedule="guided"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)
            f = k // nch
            q0 = r0 + (k % nch) * chunk_rows
            q1 = min(q0 + chunk_rows, r1)
            _output_rows(mp, &g, r0, q0, q1, f, f + 1, ld, xs, bp, op, sp + tid * ss)


def grad_block(const floating[:, :, :, ::1] dout, floating[:, :, :] z, floating[:, ::1] scr,
               int m, long r0, long r1, long chunk_rows):
    """z (alpha^2, F, (r1 - r0)*tw) = A dY A^T of tile rows [r0, r1) of dout (N, F, HO, WO),
    parallel over (filter, run of rows) pairs."""
    cdef Tiling g = _tiling(m, 1, 1, 1, dout.shape[1], dout.shape[0], dout.shape[2],
                            dout.shape[3], 0, 0)
    _transform_block(True, &dout[0, 0, 0, 0], &g, g.F, z, scr, r0, r1, chunk_rows, "z")


def products_block(const floating[:, :, ::1] u, const floating[:, :, :] v,
                   floating[:, :, :] mm, int nthreads):
    """mm[xi] (F, B) = u[xi] (F, C) @ v[xi] (C, B) for every tile element xi (u contiguous),
    the alpha^2 GEMMs spread over nthreads OpenMP threads (each calling the BLAS
    single-threaded)."""
    cdef long A2 = u.shape[0], F = u.shape[1], C = u.shape[2], B = v.shape[2]
    _check_matrices("v", v.shape, v.strides, <long>sizeof(floating), A2, C, B)
    _check_matrices("mm", mm.shape, mm.strides, <long>sizeof(floating), A2, F, B)
    _require(u.strides[0] == F * C * <long>sizeof(floating), "u must be contiguous")
    if A2 == 0 or F == 0 or C == 0 or B == 0:
        return
    cdef long vxs = v.strides[0] // <long>sizeof(floating)
    cdef long mxs = mm.strides[0] // <long>sizeof(floating)
    cdef Py_ssize_t xi
    cdef const floating *up = &u[0, 0, 0]
    cdef const floating *vp = &v[0, 0, 0]
    cdef floating *mp = &mm[0, 0, 0]
    with nogil:
        for xi in prange(A2, num_threads=max(nthreads, 1), schedule="dynamic"):
            _products(up, vp, mp, F, C, B, B, vxs, B, mxs, xi)


def filter_products_block(const floating[:, :, :] z, const floating[:, :, :] v,
                          floating[:, :, ::1] s, floating[:, ::1] ws_t):
    """s[xi] (F, C) += z[xi] (F, B) @ v[xi]^T (B, C) for every tile element xi (s contiguous),
    the alpha^2 GEMMs spread over the OpenMP threads, one per row of ws_t (B*C values each,
    for a transposed tile element of v); each tile element is owned by one thread."""
    cdef long A2 = s.shape[0], F = s.shape[1], C = s.shape[2], B = v.shape[2]
    cdef int nt = ws_t.shape[0]
    _check_matrices("z", z.shape, z.strides, sizeof(floating), A2, F, B)
    _check_matrices("v", v.shape, v.strides, sizeof(floating), A2, C, B)
    _require(s.strides[0] == F * C * <long>sizeof(floating), "s must be contiguous")
    _require(nt >= 1 and ws_t.shape[1] >= B * C, "transpose workspace too small")
    if A2 == 0 or F == 0 or C == 0 or B == 0:
        return
    cdef long zxs = z.strides[0] // <long>sizeof(floating)
    cdef long vxs = v.strides[0] // <long>sizeof(floating)
    cdef Py_ssize_t xi
    cdef int tid
    cdef const floating *zp = &z[0, 0, 0]
    cdef const floating *vp = &v[0, 0, 0]
    cdef floating *sp = &s[0, 0, 0]
    cdef floating *tp = &ws_t[0, 0]
    cdef long ts = ws_t.shape[1]
    with nogil:
        for xi in prange(A2, num_threads=nt, schedule="dynamic"):
            tid = threadid()
            MINIDL_CHECK(tid < nt)
            _filter_products(zp, vp, sp, F, C, B, B, zxs, B, vxs, xi, tp + tid * ts)
