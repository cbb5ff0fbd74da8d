/* The C transforms of Winograd convolution F(2x2,3x3) and F(4x4,3x3), for float (_f) and
   double (_d); see _winograd_impl.h and _winograd.pyx. */
#ifndef MINIDL_WINOGRAD_H
#define MINIDL_WINOGRAD_H
#include "_simd.h"

/* The transforms' loops write several output rows from one pointer; GCC's run-time alias
   checks give up at that many streams and leave them scalar. The rows never overlap
   (callers pass disjoint ranges), which this pragma states. */
#if defined(__clang__)
#define WINO_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define WINO_IVDEP _Pragma("GCC ivdep")
#else
#define WINO_IVDEP
#endif

/* The tiles t in [0, n) whose column t*m + off lies in [0, size), as [lo, hi) with
   0 <= lo <= hi <= n for every offset (an empty range when every tile sees padding only).
   Every gather and scatter of a tile row indexes only inside this range. */
static inline void wino_tile_range(long off, long m, long size, long n, long *lo, long *hi)
{
    /* ceil(a / m) for m > 0 and either sign of a (C division truncates toward zero) */
    long a = -off, b = size - off;
    long l = a >= 0 ? (a + m - 1) / m : -((-a) / m);
    long h = b >= 0 ? (b + m - 1) / m : -((-b) / m);
    if (l < 0) l = 0;
    if (l > n) l = n;
    if (h > n) h = n;
    if (h < l) h = l;
    MINIDL_CHECK(0 <= l && l <= h && h <= n);
    *lo = l;
    *hi = h;
}

/* ---- the tile-wise products in float32 on AVX-512: C (F, B) (+)= A (F, K) @ Bm (K, B) ----
   For a BLAS that runs no AVX-512 code on an AVX-512 CPU: OpenBLAS held to its Haswell
   kernels measured 1.5-2.5x slower than this on these small products, its own AVX-512
   kernels as fast or faster (minidl._kernels.winograd picks by the BLAS). Register blocks
   of 12 rows x 32 columns (24 accumulators), the last rows and columns through masked
   loads and stores (masked-off lanes are neither read nor written), so any F, B >= 1 and
   K >= 0 stay inside the three matrices. Compiled only for x86-64 GCC/clang;
   wino_simd_products() says at run time whether the CPU can run it. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(MINIDL_NO_CLONES)
#include <immintrin.h>

static int wino_simd_products(void)
{
    return __builtin_cpu_supports("avx512f");
}

__attribute__((target("avx512f,fma"), always_inline))
static inline void wino_sgemm_block(const int mr, const int nv, long K, const float *restrict a,
                                    long lda, const float *restrict b, long ldb,
                                    float *restrict c, long ldc, __mmask16 m0, __mmask16 m1,
                                    int accumulate)
{
    /* mr rows (<= 12) and nv vectors (1 or 2) of 16 columns, masks m0 / m1 per vector;
       C = A B, or C += A B with accumulate */
    __m512 acc[12][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = accumulate ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        acc[r][1] = accumulate && nv == 2 ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16)
                                          : _mm512_setzero_ps();
    }
    for (long k = 0; k < K; k++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + k * ldb);
        const __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(m1, b + k * ldb + 16)
                                  : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) {
            const __m512 ar = _mm512_set1_ps(a[r * lda + k]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            if (nv == 2)
                acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        if (nv == 2)
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

#define WINO_SGEMM_ROWS(MR)                                                                  \
    case MR:                                                                                 \
        if (nv == 2)                                                                         \
            wino_sgemm_block(MR, 2, K, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc,   \
                             m0, m1, accumulate);                                            \
        else                                                                                 \
            wino_sgemm_block(MR, 1, K, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc,   \
                             m0, m1, accumulate);                                            \
        break;

__attribute__((target("avx512f,fma")))
static void wino_sgemm(long F, long B, long K, const float *a, long lda, const float *b,
                       long ldb, float *c, long ldc, int accumulate)
{
    for (long j = 0; j < B; j += 32) {    /* column panels of 32, the last one masked */
        const long nb = B - j;
        const int nv = nb > 16 ? 2 : 1;
        const __mmask16 m0 = nb >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nb) - 1);
        const __mmask16 m1 = nb >= 32 ? (__mmask16)0xFFFF
                           : nb > 16 ? (__mmask16)((1u << (nb - 16)) - 1) : (__mmask16)0;
        for (long i = 0; i < F; i += 12) {
            switch (F - i < 12 ? F - i : 12) {
                WINO_SGEMM_ROWS(12) WINO_SGEMM_ROWS(11) WINO_SGEMM_ROWS(10) WINO_SGEMM_ROWS(9)
                WINO_SGEMM_ROWS(8) WINO_SGEMM_ROWS(7) WINO_SGEMM_ROWS(6) WINO_SGEMM_ROWS(5)
                WINO_SGEMM_ROWS(4) WINO_SGEMM_ROWS(3) WINO_SGEMM_ROWS(2) WINO_SGEMM_ROWS(1)
            }
        }
    }
}
#undef WINO_SGEMM_ROWS
#else
static int wino_simd_products(void) { return 0; }
static void wino_sgemm(long F, long B, long K, const float *a, long lda, const float *b,
                       long ldb, float *c, long ldc, int accumulate)
{
    (void)F; (void)B; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
}
#endif

/* dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols: a (rows, cols) matrix transposed in
   16 x 16 tiles that stay in L1 (the filter gradient's V blocks, for the products kernel). */
MINIDL_CLONES
static void wino_transpose(const float *restrict src, long rows, long cols, long lds,
                           float *restrict dst, long ldd)
{
    for (long i0 = 0; i0 < rows; i0 += 16) {
        const long i1 = i0 + 16 < rows ? i0 + 16 : rows;
        for (long j0 = 0; j0 < cols; j0 += 16) {
            const long j1 = j0 + 16 < cols ? j0 + 16 : cols;
            for (long j = j0; j < j1; j++)
                for (long i = i0; i < i1; i++)
                    dst[j * ldd + i] = src[i * lds + j];
        }
    }
}

#define T float
#define FN(name) name##_f
#include "_winograd_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_d
#include "_winograd_impl.h"
#undef T
#undef FN
#endif
