# cython: language_level=3
"""minidl's own GEMM: packed panels and a register-blocked micro-kernel per ISA level.

The C lives in _gemm.h / _gemm_impl.h; the cdef functions here are the entry points other
kernel modules cimport (see _gemm.pxd), and ``matmul`` is the checked Python entry for tests
and benchmarks. Nothing here starts threads: callers parallelise around it.
"""
cdef extern from "_gemm.h" nogil:
    ctypedef struct minidl_gemm_blocking:
        int mr, nr, kc, mc, nc
    int minidl_gemm_level()
    minidl_gemm_blocking gemm_blocking_f()
    minidl_gemm_blocking gemm_blocking_d()
    long gemm_workspace_f(long m, long n, long k)
    long gemm_workspace_d(long m, long n, long k)
    void gemm_f(int ta, int tb, long m, long n, long k, const float *A, long lda,
                const float *B, long ldb, int accumulate, float *C, long ldc, float *ws)
    void gemm_d(int ta, int tb, long m, long n, long k, const double *A, long lda,
                const double *B, long ldb, int accumulate, double *C, long ldc, double *ws)
    long gemm_packed_a_size_f(long m, long k)
    long gemm_packed_a_size_d(long m, long k)
    long gemm_packed_b_size_f(long k, long n)
    long gemm_packed_b_size_d(long k, long n)
    void gemm_pack_a_f(int ta, const float *A, long lda, long m, long k, float *Ap)
    void gemm_pack_a_d(int ta, const double *A, long lda, long m, long k, double *Ap)
    void gemm_pack_b_f(int tb, const float *B, long ldb, long k, long n, float *Bp)
    void gemm_pack_b_d(int tb, const double *B, long ldb, long k, long n, double *Bp)
    void gemm_pack_b_im2col_f(const float *x, long x_step, int C, int H, int W, int KH,
                              int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                              int WO, long P, long q0, long q1, float *Bp)
    void gemm_pack_b_im2col_d(const double *x, long x_step, int C, int H, int W, int KH,
                              int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                              int WO, long P, long q0, long q1, double *Bp)
    void im2col_rows_f(const float *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, float *cols)
    void im2col_rows_d(const double *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, double *cols)
    void col2im_rows_f(float *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, float *dx)
    void col2im_rows_d(double *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, double *dx)
    void gemm_packed_f(long m, long n, long k, const float *Ap, const float *Bp, float *C,
                       long ldc, int accumulate)
    void gemm_packed_d(long m, long n, long k, const double *Ap, const double *Bp, double *C,
                       long ldc, int accumulate)

from ._common cimport floating


cdef long sgemm_workspace(long m, long n, long k) noexcept nogil:
    return gemm_workspace_f(m, n, k)


cdef long dgemm_workspace(long m, long n, long k) noexcept nogil:
    return gemm_workspace_d(m, n, k)


cdef void sgemm(bint ta, bint tb, long m, long n, long k, const float *a, long lda,
                const float *b, long ldb, bint accumulate, float *c, long ldc,
                float *ws) noexcept nogil:
    gemm_f(ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc, ws)


cdef void dgemm(bint ta, bint tb, long m, long n, long k, const double *a, long lda,
                const double *b, long ldb, bint accumulate, double *c, long ldc,
                double *ws) noexcept nogil:
    gemm_d(ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc, ws)


cdef long spacked_a_size(long m, long k) noexcept nogil:
    return gemm_packed_a_size_f(m, k)


cdef long dpacked_a_size(long m, long k) noexcept nogil:
    return gemm_packed_a_size_d(m, k)


cdef long spacked_b_size(long k, long n) noexcept nogil:
    return gemm_packed_b_size_f(k, n)


cdef long dpacked_b_size(long k, long n) noexcept nogil:
    return gemm_packed_b_size_d(k, n)


cdef void spack_a(bint ta, const float *a, long lda, long m, long k, float *ap) noexcept nogil:
    gemm_pack_a_f(ta, a, lda, m, k, ap)


cdef void dpack_a(bint ta, const double *a, long lda, long m, long k, double *ap) noexcept nogil:
    gemm_pack_a_d(ta, a, lda, m, k, ap)


cdef void spack_b(bint tb, const float *b, long ldb, long k, long n, float *bp) noexcept nogil:
    gemm_pack_b_f(tb, b, ldb, k, n, bp)


cdef void dpack_b(bint tb, const double *b, long ldb, long k, long n, double *bp) noexcept nogil:
    gemm_pack_b_d(tb, b, ldb, k, n, bp)


cdef void spack_b_im2col(const float *x, long x_step, int C, int H, int W, int KH, int KW,
                         int sh, int sw, int ph, int pw, int dh, int dw, int WO, long P,
                         long q0, long q1, float *bp) noexcept nogil:
    gemm_pack_b_im2col_f(x, x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, P, q0, q1,
                         bp)


cdef void dpack_b_im2col(const double *x, long x_step, int C, int H, int W, int KH, int KW,
                         int sh, int sw, int ph, int pw, int dh, int dw, int WO, long P,
                         long q0, long q1, double *bp) noexcept nogil:
    gemm_pack_b_im2col_d(x, x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, P, q0, q1,
                         bp)


cdef void sim2col_rows(const float *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                      int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                      long q1, float *cols) noexcept nogil:
    im2col_rows_f(x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, cols)


cdef void dim2col_rows(const double *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                      int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                      long q1, double *cols) noexcept nogil:
    im2col_rows_d(x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, cols)


cdef void scol2im_rows(float *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, float *dx) noexcept nogil:
    col2im_rows_f(cols, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, dx)


cdef void dcol2im_rows(double *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, double *dx) noexcept nogil:
    col2im_rows_d(cols, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, dx)


cdef void sgemm_prepacked(long m, long n, long k, const float *ap, const float *bp, float *c,
                          long ldc, bint accumulate) noexcept nogil:
    gemm_packed_f(m, n, k, ap, bp, c, ldc, accumulate)


cdef void dgemm_prepacked(long m, long n, long k, const double *ap, const double *bp,
                          double *c, long ldc, bint accumulate) noexcept nogil:
    gemm_packed_d(m, n, k, ap, bp, c, ldc, accumulate)


_ISA_NAMES = {4: "avx512", 3: "avx2", 0: "baseline"}


def blocking():
    """The GEMM this CPU runs: {'isa': 'avx512' | 'avx2' | 'baseline', 'float32': (MR, NR,
    KC, MC, NC), 'float64': (...)}: the micro-kernel's MR x NR register tile and the cache
    blocks, in elements."""
    cdef minidl_gemm_blocking f = gemm_blocking_f(), d = gemm_blocking_d()
    return {"isa": _ISA_NAMES[minidl_gemm_level()],
            "float32": (f.mr, f.nr, f.kc, f.mc, f.nc),
            "float64": (d.mr, d.nr, d.kc, d.mc, d.nc)}


def workspace_size(bint double, long m, long n, long k):
    """Elements of workspace that matmul needs for an m x n x k product."""
    return gemm_workspace_d(m, n, k) if double else gemm_workspace_f(m, n, k)


def matmul(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
           bint trans_a, bint trans_b, bint accumulate, floating[::1] ws):
    """c (m x n) (+)= op(a) @ op(b) on one thread; op transposes when trans_* is set.

    ws: workspace_size(m, n, k) elements. The shapes are checked here; the caller checks
    dtypes and contiguity (minidl._kernels.gemm)."""
    cdef long m = c.shape[0], n = c.shape[1]
    cdef long k = a.shape[0] if trans_a else a.shape[1]
    if (a.shape[1] if trans_a else a.shape[0]) != m or \
            (b.shape[1] if trans_b else b.shape[0]) != k or \
            (b.shape[0] if trans_b else b.shape[1]) != n:
        raise ValueError(f"matmul: op(a) {(a.shape[0], a.shape[1])} (trans_a={trans_a}) @ "
                         f"op(b) {(b.shape[0], b.shape[1])} (trans_b={trans_b}) does not give "
                         f"c {(m, n)}")
    cdef long need = gemm_workspace_d(m, n, k) if floating is double else gemm_workspace_f(m, n, k)
    if ws.shape[0] < need:
        raise ValueError(f"matmul: workspace has {ws.shape[0]} elements, needs {need}")
    if m == 0 or n == 0:
        return
    cdef const floating *ap = &a[0, 0] if a.shape[0] * a.shape[1] else NULL
    cdef const floating *bp = &b[0, 0] if b.shape[0] * b.shape[1] else NULL
    with nogil:
        gemm(trans_a, trans_b, m, n, k, ap, a.shape[1], bp, b.shape[1], accumulate,
             &c[0, 0], n, &ws[0])
