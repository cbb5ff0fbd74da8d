# cython: language_level=3
"""minidl's own GEMM (C in _gemm.h / _gemm_impl.h), cimportable, for float and double.

Row-major C (m x n) (+)= op(A) (m x k) @ op(B) (k x n) from packed panels with an AVX-512,
AVX2+FMA or baseline register-blocked micro-kernel (the CPU's, chosen at load time). Every
function is single-threaded and allocates nothing: call it inside your own OpenMP loop with a
workspace of your own per thread (its size from *_workspace / packed_*_size). ta / tb: False
= as stored, True = transposed (op(A)(i, p) = a[p*lda + i]); accumulate: False overwrites C
(beta = 0), True adds to it (beta = 1).

For products that reuse an operand (a convolution's weights) or whose producer can write the
packed layout directly (im2col), pack_a / pack_b / pack_b_im2col pack once and gemm_prepacked
multiplies the packed arrays.
"""
from ._common cimport floating

cdef long sgemm_workspace(long m, long n, long k) noexcept nogil
cdef long dgemm_workspace(long m, long n, long k) noexcept nogil
cdef void sgemm(bint ta, bint tb, long m, long n, long k, const float *a, long lda,
                const float *b, long ldb, bint accumulate, float *c, long ldc,
                float *ws) noexcept nogil
cdef void dgemm(bint ta, bint tb, long m, long n, long k, const double *a, long lda,
                const double *b, long ldb, bint accumulate, double *c, long ldc,
                double *ws) noexcept nogil

# elements a whole packed op(A) (m x k) / op(B) (k x n) takes, alignment room included
cdef long spacked_a_size(long m, long k) noexcept nogil
cdef long dpacked_a_size(long m, long k) noexcept nogil
cdef long spacked_b_size(long k, long n) noexcept nogil
cdef long dpacked_b_size(long k, long n) noexcept nogil
cdef void spack_a(bint ta, const float *a, long lda, long m, long k, float *ap) noexcept nogil
cdef void dpack_a(bint ta, const double *a, long lda, long m, long k, double *ap) noexcept nogil
cdef void spack_b(bint tb, const float *b, long ldb, long k, long n, float *bp) noexcept nogil
cdef void dpack_b(bint tb, const double *b, long ldb, long k, long n, double *bp) noexcept nogil
cdef void spack_b_im2col(const float *x, long x_step, int C, int H, int W, int KH, int KW,
                         int sh, int sw, int ph, int pw, int dh, int dw, int WO, long P,
                         long q0, long q1, float *bp) noexcept nogil
cdef void dpack_b_im2col(const double *x, long x_step, int C, int H, int W, int KH, int KW,
                         int sh, int sw, int ph, int pw, int dh, int dw, int WO, long P,
                         long q0, long q1, double *bp) noexcept nogil
# rows [k0, k1) x output positions [q0, q1) of one image's im2col matrix as a row-major
# (k1 - k0) x (q1 - q0) array, and the reverse (col2im_rows adds the block into dx (C, H, W)
# and may zero the entries of cols that stand for padding: cols is scratch)
cdef void sim2col_rows(const float *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                      int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                      long q1, float *cols) noexcept nogil
cdef void dim2col_rows(const double *x, int C, int H, int W, int KH, int KW, int sh, int sw,
                      int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                      long q1, double *cols) noexcept nogil
cdef void scol2im_rows(float *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, float *dx) noexcept nogil
cdef void dcol2im_rows(double *cols, int C, int H, int W, int KH, int KW, int sh, int sw,
                       int ph, int pw, int dh, int dw, int WO, long k0, long k1, long q0,
                       long q1, double *dx) noexcept nogil
cdef void sgemm_prepacked(long m, long n, long k, const float *ap, const float *bp, float *c,
                          long ldc, bint accumulate) noexcept nogil
cdef void dgemm_prepacked(long m, long n, long k, const double *ap, const double *bp,
                          double *c, long ldc, bint accumulate) noexcept nogil


cdef inline void gemm(bint ta, bint tb, long m, long n, long k, const floating *a, long lda,
                      const floating *b, long ldb, bint accumulate, floating *c, long ldc,
                      floating *ws) noexcept nogil:
    # ws: sgemm_workspace / dgemm_workspace(m, n, k) elements, this thread's own
    if floating is float:
        sgemm(ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc, ws)
    else:
        dgemm(ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc, ws)


cdef inline void pack_a(bint ta, const floating *a, long lda, long m, long k,
                        floating *ap) noexcept nogil:
    if floating is float:
        spack_a(ta, a, lda, m, k, ap)
    else:
        dpack_a(ta, a, lda, m, k, ap)


cdef inline void pack_b(bint tb, const floating *b, long ldb, long k, long n,
                        floating *bp) noexcept nogil:
    if floating is float:
        spack_b(tb, b, ldb, k, n, bp)
    else:
        dpack_b(tb, b, ldb, k, n, bp)


cdef inline void pack_b_im2col(const floating *x, long x_step, int C, int H, int W, int KH,
                               int KW, int sh, int sw, int ph, int pw, int dh, int dw, int WO,
                               long P, long q0, long q1, floating *bp) noexcept nogil:
    # the im2col matrix (C*KH*KW rows) of images of (C, H, W) planes (image i's at
    # x + i*x_step) and P output positions each, positions [q0, q1) of their concatenation
    # only (a block may span images), written as pack_b would pack it
    if floating is float:
        spack_b_im2col(x, x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, P, q0, q1, bp)
    else:
        dpack_b_im2col(x, x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, P, q0, q1, bp)


cdef inline void gemm_prepacked(long m, long n, long k, const floating *ap,
                                const floating *bp, floating *c, long ldc,
                                bint accumulate) noexcept nogil:
    # C (m x n) (+)= A @ B from pack_a(.., m, k, ap) and pack_b(.., k, n, bp) output
    if floating is float:
        sgemm_prepacked(m, n, k, ap, bp, c, ldc, accumulate)
    else:
        dgemm_prepacked(m, n, k, ap, bp, c, ldc, accumulate)


cdef inline void im2col_rows(const floating *x, int C, int H, int W, int KH, int KW, int sh,
                             int sw, int ph, int pw, int dh, int dw, int WO, long k0, long k1,
                             long q0, long q1, floating *cols) noexcept nogil:
    if floating is float:
        sim2col_rows(x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, cols)
    else:
        dim2col_rows(x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, cols)


cdef inline void col2im_rows(floating *cols, int C, int H, int W, int KH, int KW, int sh,
                             int sw, int ph, int pw, int dh, int dw, int WO, long k0, long k1,
                             long q0, long q1, floating *dx) noexcept nogil:
    if floating is float:
        scol2im_rows(cols, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, dx)
    else:
        dcol2im_rows(cols, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1, dx)
