/* minidl's packed GEMM, instantiated by _gemm.h once per element type and ISA level with:
   T (float / double), GK(name) the level's function name (name_f_v4, name_d_base, ...),
   GEMM_TARGET that level's function attribute (MINIDL_TARGET_V4 / _V3 / nothing),
   GEMM_W lanes per vector (1: plain scalars), GEMM_MR x GEMM_NV the register block (MR rows
   of A, each broadcast against NV vectors of a row of B: an MR x NR tile of C, NR = NV*W),
   and GEMM_KC, GEMM_MC, GEMM_NC the cache blocking (see _gemm.h for the sizes and why).

   The layout is BLIS's: op(A) is copied into MR-row panels and op(B) into NR-column panels,
   each panel contiguous in the contraction index p, so that the micro-kernel reads both with
   unit stride, whatever the transposes. All matrices are row-major.

   With GK undefined this file instead defines the public functions of type T (FN(name)),
   which call the level the CPU runs. */

#ifdef GK
#define GEMM_NR (GEMM_NV * GEMM_W)
_Static_assert(GEMM_MC % GEMM_MR == 0 && GEMM_KC % 16 == 0, "GEMM blocking");

#if GEMM_W > 1
typedef T GK(vec) __attribute__((vector_size(GEMM_W * sizeof(T))));
#else
typedef T GK(vec);
#endif

/* C[0:mr, 0:nr] (+)= A panel (kc x MR: a[p*MR + r] is row r) @ B panel (kc x NR: b[p*NR + j]).
   The MR x NR accumulators stay in registers for the whole panel; a full tile is added to C
   with vector loads and stores, an edge tile (mr < MR or nr < NR, the rest of the panels
   being zeros) through a small array and loops clamped to mr x nr. */
GEMM_INLINE GEMM_TARGET void
GK(ukernel)(long kc, const T *restrict a, const T *restrict b, T *restrict c, long ldc,
            int accumulate, int mr, int nr)
{
    typedef GK(vec) V;
    V acc[GEMM_MR][GEMM_NV];
    GEMM_UNROLL
    for (int r = 0; r < GEMM_MR; r++) {
        GEMM_UNROLL
        for (int v = 0; v < GEMM_NV; v++)
            acc[r][v] = (V){0};
    }
    for (long p = 0; p < kc; p++) {
        V bv[GEMM_NV];
        GEMM_UNROLL
        for (int v = 0; v < GEMM_NV; v++)
            memcpy(&bv[v], b + v * GEMM_W, sizeof(V));
        GEMM_UNROLL
        for (int r = 0; r < GEMM_MR; r++) {
            const T ar = a[r];
            GEMM_UNROLL
            for (int v = 0; v < GEMM_NV; v++)
                acc[r][v] += ar * bv[v];
        }
        a += GEMM_MR;
        b += GEMM_NR;
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
        GEMM_UNROLL
        for (int r = 0; r < GEMM_MR; r++) {
            GEMM_UNROLL
            for (int v = 0; v < GEMM_NV; v++) {
                T *cp = c + r * ldc + v * GEMM_W;
                V cv = acc[r][v];
                if (accumulate) {
                    V old;
                    memcpy(&old, cp, sizeof(V));
                    cv += old;
                }
                memcpy(cp, &cv, sizeof(V));
            }
        }
    } else {
        T tile[GEMM_MR * GEMM_NR];
        for (int r = 0; r < GEMM_MR; r++)
            for (int v = 0; v < GEMM_NV; v++)
                memcpy(tile + r * GEMM_NR + v * GEMM_W, &acc[r][v], sizeof(V));
        MINIDL_CHECK(0 < mr && mr <= GEMM_MR && 0 < nr && nr <= GEMM_NR);
        for (int r = 0; r < mr; r++) {
            T *cr = c + r * ldc;
            for (int j = 0; j < nr; j++)
                cr[j] = (accumulate ? cr[j] : (T)0) + tile[r * GEMM_NR + j];
        }
    }
}

#if GEMM_W > 1
typedef GEMM_IT GK(ivec) __attribute__((vector_size(GEMM_W * sizeof(T))));

/* dst[i*ldd + k] = src[k*lds + i] for a W x W block: log2(W) rounds of two-vector shuffles
   (round b pairs rows i and i + b and swaps their b-blocks), all in registers. */
GEMM_INLINE GEMM_TARGET void GK(transpose)(const T *restrict src, long lds, T *restrict dst,
                                           long ldd)
{
    typedef GK(vec) V;
    typedef GK(ivec) IV;
    V r[GEMM_W];
    GEMM_UNROLL
    for (int i = 0; i < GEMM_W; i++)
        memcpy(&r[i], src + i * lds, sizeof(V));
    GEMM_UNROLL
    for (int b = 1; b < GEMM_W; b *= 2) {
        IV lo, hi;
        GEMM_UNROLL
        for (int k = 0; k < GEMM_W; k++) {
            lo[k] = (k & b) ? GEMM_W + k - b : k;
            hi[k] = (k & b) ? GEMM_W + k : k + b;
        }
        GEMM_UNROLL
        for (int i = 0; i < GEMM_W; i++)
            if (!(i & b)) {
                const V x = r[i], y = r[i + b];
                r[i] = __builtin_shuffle(x, y, lo);
                r[i + b] = __builtin_shuffle(x, y, hi);
            }
    }
    GEMM_UNROLL
    for (int i = 0; i < GEMM_W; i++)
        memcpy(dst + i * ldd, &r[i], sizeof(V));
}
#endif

/* Ap = op(A)[0:m, 0:k] in MR-row panels: panel i (rows i*MR ...) at Ap + i*MR*k, element
   (r, p) at [p*MR + r]; rows past m are zero. ta = 0: op(A)(i, p) = A[i*lda + p];
   ta = 1: A[p*lda + i]. */
static inline GEMM_TARGET void GK(pack_a)(int ta, const T *restrict A, long lda, long m, long k,
                                   T *restrict Ap)
{
    for (long i0 = 0; i0 < m; i0 += GEMM_MR) {
        const int rows = m - i0 < GEMM_MR ? (int)(m - i0) : GEMM_MR;
        T *restrict dst = Ap + i0 * k;
        if (!ta) {
            for (int r = 0; r < rows; r++) {
                const T *restrict src = A + (i0 + r) * lda;
                for (long p = 0; p < k; p++)
                    dst[p * GEMM_MR + r] = src[p];
            }
            for (int r = rows; r < GEMM_MR; r++)
                for (long p = 0; p < k; p++)
                    dst[p * GEMM_MR + r] = 0;
        } else if (rows == GEMM_MR) {
            for (long p = 0; p < k; p++) {
                const T *restrict src = A + p * lda + i0;
                GEMM_UNROLL
                for (int r = 0; r < GEMM_MR; r++)
                    dst[p * GEMM_MR + r] = src[r];
            }
        } else {
            for (long p = 0; p < k; p++) {
                const T *restrict src = A + p * lda + i0;
                for (int r = 0; r < GEMM_MR; r++)
                    dst[p * GEMM_MR + r] = r < rows ? src[r] : (T)0;
            }
        }
    }
}

/* Bp = op(B)[0:k, 0:n] in NR-column panels: panel j (columns j*NR ...) at Bp + j*NR*k,
   element (p, c) at [p*NR + c]; columns past n are zero. tb = 0: op(B)(p, j) = B[p*ldb + j];
   tb = 1: B[j*ldb + p]. */
static inline GEMM_TARGET void GK(pack_b)(int tb, const T *restrict B, long ldb, long k, long n,
                                   T *restrict Bp)
{
    for (long j0 = 0; j0 < n; j0 += GEMM_NR) {
        const int cols = n - j0 < GEMM_NR ? (int)(n - j0) : GEMM_NR;
        T *restrict dst = Bp + j0 * k;
        if (!tb && cols == GEMM_NR) {
            for (long p = 0; p < k; p++) {
                const T *restrict src = B + p * ldb + j0;
                GEMM_UNROLL
                for (int c = 0; c < GEMM_NR; c++)
                    dst[p * GEMM_NR + c] = src[c];
            }
        } else if (!tb) {
            for (long p = 0; p < k; p++) {
                const T *restrict src = B + p * ldb + j0;
                for (int c = 0; c < GEMM_NR; c++)
                    dst[p * GEMM_NR + c] = c < cols ? src[c] : (T)0;
            }
        } else {
#if GEMM_W > 1
            if (cols == GEMM_NR) {  /* W x W blocks transposed in registers, then the rest */
                const long kw = k / GEMM_W * GEMM_W;
                for (int v = 0; v < GEMM_NV; v++)
                    for (long p = 0; p < kw; p += GEMM_W)
                        GK(transpose)(B + (j0 + v * GEMM_W) * ldb + p, ldb,
                                      dst + p * GEMM_NR + v * GEMM_W, GEMM_NR);
                for (long p = kw; p < k; p++)
                    for (int c = 0; c < GEMM_NR; c++)
                        dst[p * GEMM_NR + c] = B[(j0 + c) * ldb + p];
                continue;
            }
#endif
            for (int c = 0; c < cols; c++) {
                const T *restrict src = B + (j0 + c) * ldb;
                for (long p = 0; p < k; p++)
                    dst[p * GEMM_NR + c] = src[p];
            }
            for (int c = cols; c < GEMM_NR; c++)
                for (long p = 0; p < k; p++)
                    dst[p * GEMM_NR + c] = 0;
        }
    }
}

/* C[0:m, 0:n] (+)= A (m x kc) @ B (kc x n) from packed panels: A's panel i at Ap + i*a_step,
   B's panel j at Bp + j*b_step (a panel's first kc rows are used, so the steps of a packed
   array with K rows are MR*K and NR*K). Each B panel stays in L1 while the A panels go by. */
static inline GEMM_TARGET void GK(macro)(long m, long n, long kc, const T *Ap, long a_step,
                                  const T *Bp, long b_step, T *C, long ldc, int accumulate)
{
    for (long j = 0; j < n; j += GEMM_NR) {
        const int nr = n - j < GEMM_NR ? (int)(n - j) : GEMM_NR;
        const T *bp = Bp + (j / GEMM_NR) * b_step;
        for (long i = 0; i < m; i += GEMM_MR) {
            const int mr = m - i < GEMM_MR ? (int)(m - i) : GEMM_MR;
            GK(ukernel)(kc, Ap + (i / GEMM_MR) * a_step, bp, C + i * ldc + j, ldc, accumulate,
                        mr, nr);
        }
    }
}

/* The workspace (elements of T) GK(gemm) needs for these sizes: one MC x KC block of A and
   one KC x NC block of B, both clipped to the matrix, plus room to align each to 64 bytes. */
static inline long GK(gemm_workspace)(long m, long n, long k)
{
    const long kc = k < GEMM_KC ? (k > 0 ? k : 1) : GEMM_KC;
    const long mc = m < GEMM_MC ? m : GEMM_MC, nc = n < GEMM_NC ? n : GEMM_NC;
    const long a = (mc + GEMM_MR - 1) / GEMM_MR * GEMM_MR * kc;
    const long b = (nc + GEMM_NR - 1) / GEMM_NR * GEMM_NR * kc;
    return minidl_gemm_round(a) + minidl_gemm_round(b) + MINIDL_GEMM_ALIGN / sizeof(T);
}

/* C (m x n) (+)= op(A) (m x k) @ op(B) (k x n), row-major, BLIS's loop nest: for each NC
   block of columns and KC block of the contraction, pack that block of B (it stays in L2/L3),
   then for each MC block of rows pack A's block (L2) and run the micro-kernels over it. ws
   holds GK(gemm_workspace)(m, n, k) elements. accumulate = 0 overwrites C (beta = 0; k = 0
   then zeroes it), 1 adds to it (beta = 1). */
static inline GEMM_TARGET void GK(gemm)(int ta, int tb, long m, long n, long k, const T *A, long lda,
                                 const T *B, long ldb, int accumulate, T *C, long ldc, T *ws)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        if (!accumulate)
            for (long i = 0; i < m; i++)
                memset(C + i * ldc, 0, sizeof(T) * (size_t)n);
        return;
    }
    const long kcmax = k < GEMM_KC ? k : GEMM_KC, mcmax = m < GEMM_MC ? m : GEMM_MC;
    T *Ap = (T *)minidl_gemm_align(ws);
    T *Bp = Ap + minidl_gemm_round((mcmax + GEMM_MR - 1) / GEMM_MR * GEMM_MR * kcmax);
    for (long jc = 0; jc < n; jc += GEMM_NC) {
        const long nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
        for (long pc = 0; pc < k; pc += GEMM_KC) {
            const long kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
            GK(pack_b)(tb, B + (tb ? jc * ldb + pc : pc * ldb + jc), ldb, kc, nc, Bp);
            for (long ic = 0; ic < m; ic += GEMM_MC) {
                const long mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
                GK(pack_a)(ta, A + (ta ? pc * lda + ic : ic * lda + pc), lda, mc, kc, Ap);
                GK(macro)(mc, nc, kc, Ap, GEMM_MR * kc, Bp, GEMM_NR * kc, C + ic * ldc + jc,
                          ldc, accumulate || pc > 0);
            }
        }
    }
}

/* d[0:n] = s[0:n], d[0:n] = 0, s[0:n] += d[0:n]: the short runs of im2col_rows, in vectors,
   then at most one half and one quarter vector, then one value at a time, inline (a
   memmove/memset call per run of a few dozen values costs more than the copy; GEMM_NO_LIBCALLS
   keeps GCC from making the loops calls). The half and quarter vectors matter: with 16-float
   vectors, the runs of an 8- or 16-wide image (7 or 15 values beside the padding) would
   otherwise go one value at a time. */
#if GEMM_W >= 8
typedef T GK(hvec) __attribute__((vector_size(GEMM_W / 2 * sizeof(T))));
#endif
#if GEMM_W >= 16
typedef T GK(qvec) __attribute__((vector_size(GEMM_W / 4 * sizeof(T))));
#endif
#define GEMM_RUN_STEP(VT, lanes, ...)                                                      \
    if (n - t >= (lanes)) {                                                                 \
        typedef VT RV;                                                                      \
        __VA_ARGS__                                                                         \
        t += (lanes);                                                                       \
    }
#if GEMM_W >= 16
#define GEMM_RUN_TAILS(...)                                                                 \
    GEMM_RUN_STEP(GK(hvec), GEMM_W / 2, __VA_ARGS__)                                        \
    GEMM_RUN_STEP(GK(qvec), GEMM_W / 4, __VA_ARGS__)
#elif GEMM_W >= 8
#define GEMM_RUN_TAILS(...) GEMM_RUN_STEP(GK(hvec), GEMM_W / 2, __VA_ARGS__)
#else
#define GEMM_RUN_TAILS(...)
#endif

GEMM_INLINE GEMM_TARGET GEMM_NO_LIBCALLS void GK(run_copy)(T *restrict d, const T *restrict s,
                                                           long n)
{
    typedef GK(vec) V;
    long t = 0;
    for (; t + GEMM_W <= n; t += GEMM_W) {
        V v;
        memcpy(&v, s + t, sizeof(V));
        memcpy(d + t, &v, sizeof(V));
    }
    GEMM_RUN_TAILS({
        RV v;
        memcpy(&v, s + t, sizeof(RV));
        memcpy(d + t, &v, sizeof(RV));
    })
    for (; t < n; t++)
        d[t] = s[t];
}

GEMM_INLINE GEMM_TARGET GEMM_NO_LIBCALLS void GK(run_zero)(T *restrict d, long n)
{
    typedef GK(vec) V;
    const V z = {0};
    long t = 0;
    for (; t + GEMM_W <= n; t += GEMM_W)
        memcpy(d + t, &z, sizeof(V));
    GEMM_RUN_TAILS({
        const RV zr = {0};
        memcpy(d + t, &zr, sizeof(RV));
    })
    for (; t < n; t++)
        d[t] = 0;
}

GEMM_INLINE GEMM_TARGET GEMM_NO_LIBCALLS void GK(run_add)(T *restrict s, const T *restrict d,
                                                          long n)
{
    typedef GK(vec) V;
    long t = 0;
    for (; t + GEMM_W <= n; t += GEMM_W) {
        V v, u;
        memcpy(&v, s + t, sizeof(V));
        memcpy(&u, d + t, sizeof(V));
        v += u;
        memcpy(s + t, &v, sizeof(V));
    }
    GEMM_RUN_TAILS({
        RV v, u;
        memcpy(&v, s + t, sizeof(RV));
        memcpy(&u, d + t, sizeof(RV));
        v += u;
        memcpy(s + t, &v, sizeof(RV));
    })
    for (; t < n; t++)
        s[t] += d[t];
}
#undef GEMM_RUN_TAILS
#undef GEMM_RUN_STEP

/* im2col_rows for stride 1 with WO == W (the "same" padding of ResNet's 3x3
   layers): the output position q = y*W + xo of tap (c, i, j) reads the input position
   q + off, off = (i*dh - ph)*W + j*dw - pw, of channel c whenever its input column
   xo + j*dw - pw lies in [0, W) (then q + off lies in [0, H*W) exactly when the input row
   does). So each run of a block row within one panel is one flat copy of its part inside
   [0, H*W), with zeros around it, after which the few positions whose input column falls
   outside [0, W) (they read the neighbouring row) are zeroed: a handful of stores per row
   instead of three short runs per output row. fold = 1 zeroes those positions of
   cols first and then adds the flat run into x: cols is the caller's scratch. Same layout
   and arguments as im2col_rows. */
static inline GEMM_TARGET GEMM_NO_LIBCALLS void
GK(im2col_rows_flat)(T *x, int H, int W, int KH, int KW, int ph, int pw, int dh, int dw,
                     long k0, long k1, long q0, long q1, long width, long panel_step,
                     long pos0, T *restrict cols, int fold)
{
    const long HW = (long)H * W, x0 = q0 % W;
    long c = k0 / ((long)KW * KH), i = (k0 / KW) % KH, j = k0 % KW;
    for (long kk = k0; kk < k1; kk++) {
        T *img = x + c * HW;
        const long ix0 = j * dw - pw, off = (i * dh - ph) * W + ix0;
        /* [x_lo, x_hi): the output columns whose input column xo + ix0 lies in [0, W) */
        long x_lo = -ix0, x_hi = W - ix0;
        x_lo = x_lo < 0 ? 0 : (x_lo > W ? W : x_lo);
        x_hi = x_hi < x_lo ? x_lo : (x_hi > W ? W : x_hi);
        T *restrict panel = cols + (kk - k0) * width; /* this row in the current panel */
        long pos = pos0, xs = x0; /* the next column within the panel; the output column of s */
        for (long s = q0; s < q1;) {
            const long len = q1 - s < width - pos ? q1 - s : width - pos;
            T *restrict d = panel + pos;
            /* [a, b): the run's positions s + t whose input position s + t + off lies in
               [0, H*W), clamped to 0 <= a <= b <= len */
            long a = -off - s, b = HW - off - s;
            a = a < 0 ? 0 : (a > len ? len : a);
            b = b < a ? a : (b > len ? len : b);
            if (!fold) {
                GK(run_zero)(d, a);
                GK(run_copy)(d + a, img + s + a + off, b - a);
                GK(run_zero)(d + b, len - b);
            }
            if (x_lo > 0 || x_hi < W) {
                /* r: the start of each output row met by the run, relative to s */
                for (long r = -xs; r < len; r += W) {
                    const long z0 = r < 0 ? 0 : r, z1 = r + x_lo < len ? r + x_lo : len;
                    for (long t = z0; t < z1; t++)
                        d[t] = 0;
                    const long z2 = r + x_hi < 0 ? 0 : r + x_hi, z3 = r + W < len ? r + W : len;
                    for (long t = z2; t < z3; t++)
                        d[t] = 0;
                }
            }
            if (fold) /* img[s + t + off], t in [a, b): inside [0, H*W) */
                GK(run_add)(img + s + a + off, d + a, b - a);
            s += len;
            pos += len;
            for (xs += len; xs >= W;)
                xs -= W;
            if (pos == width) {
                pos = 0;
                panel += panel_step;
            }
        }
        if (++j == KW) {
            j = 0;
            if (++i == KH) {
                i = 0;
                c++;
            }
        }
    }
}

/* im2col of one image, rows [k0, k1) and output positions [q0, q1) only, or its transpose
   (col2im: fold = 1 adds the block back into the image instead).

   Row kk = (c*KH + i)*KW + j and column jj = q - q0, for the output position q = y*WO + xo,
   stand for the input value x[c, y*sh - ph + i*dh, xo*sw - pw + j*dw] (zero in the padding).
   The block lives at cols[(jj' / width)*panel_step + (kk - k0)*width + jj' % width],
   jj' = pos0 + jj (pos0 < width: the block starts pos0 columns into its first panel): with
   width = q1 - q0 (pos0 = 0) a row-major (k1 - k0) x (q1 - q0) matrix, with width = NR and
   panel_step = NR*(k1 - k0) B panels (pack_b's layout). fold = 0 writes the block from the
   image x (C, H, W); fold = 1 adds it into x (which the caller zeroed), skipping the padding,
   and may zero the block's entries that stand for padding (cols is the caller's scratch).
   Each output row is split into runs that stay inside one panel, and every run into the part
   that reads the input row and the parts in the padding, clamped to the run; the row, column
   and panel positions advance by counting (no division per run). */
static inline GEMM_TARGET GEMM_NO_LIBCALLS void
GK(im2col_rows)(T *x, int C, int H, int W, int KH, int KW, int sh, int sw, int ph, int pw,
                int dh, int dw, int WO, long k0, long k1, long q0, long q1, long width,
                long panel_step, long pos0, T *restrict cols, int fold)
{
    (void)C;
    MINIDL_CHECK(0 <= k0 && k0 <= k1 && k1 <= (long)C * KH * KW && 0 <= q0 && q0 <= q1);
    MINIDL_CHECK(0 <= pos0 && (pos0 < width || q0 == q1));
    if (sh == 1 && sw == 1 && WO == W) {
        GK(im2col_rows_flat)(x, H, W, KH, KW, ph, pw, dh, dw, k0, k1, q0, q1, width, panel_step,
                             pos0, cols, fold);
        return;
    }
    const long y0 = q0 / WO, x0 = q0 % WO;
    for (long kk = k0; kk < k1; kk++) {
        const int j = (int)(kk % KW), i = (int)((kk / KW) % KH), c = (int)(kk / ((long)KW * KH));
        const long ix0 = (long)j * dw - pw;
        long x_lo, x_hi; /* the output columns whose input column lies in [0, W) */
        minidl_gemm_tap_range(ix0, sw, W, WO, &x_lo, &x_hi);
        T *restrict panel = cols + (kk - k0) * width; /* this row in the current panel */
        long pos = pos0;                               /* next column within the panel */
        long left = q1 - q0, y = y0, xo = x0;
        for (; left > 0; y++, xo = 0) {
            const long xe = xo + left < WO ? xo + left : WO;
            const long iy = y * sh - ph + (long)i * dh;
            const int row_in = iy >= 0 && iy < H;
            T *row = x + ((long)c * H + (row_in ? iy : 0)) * W;
            left -= xe - xo;
            while (xo < xe) {
                const long len = xe - xo < width - pos ? xe - xo : width - pos;
                T *restrict d = panel + pos;
                /* [a, b): the part of this run that reads the input row */
                long a = row_in ? x_lo - xo : len, b = row_in ? x_hi - xo : len;
                a = a < 0 ? 0 : (a > len ? len : a);
                b = b < a ? a : (b > len ? len : b);
                if (!fold)
                    GK(run_zero)(d, a);
                if (a < b) { /* input columns ix0 + (xo + t)*sw, t in [a, b): inside [0, W) */
                    T *restrict s = row + ix0 + (xo + a) * sw;
                    if (fold && sw == 1)
                        GK(run_add)(s, d + a, b - a);
                    else if (fold)
                        for (long t = a; t < b; t++)
                            s[(t - a) * sw] += d[t];
                    else if (sw == 1)
                        GK(run_copy)(d + a, s, b - a);
                    else
                        for (long t = a; t < b; t++)
                            d[t] = s[(t - a) * sw];
                }
                if (!fold)
                    GK(run_zero)(d + b, len - b);
                xo += len;
                pos += len;
                if (pos == width) {
                    pos = 0;
                    panel += panel_step;
                }
            }
        }
    }
}

/* The im2col matrix (K = C*KH*KW rows) of a run of images of P = HO*WO output positions
   each (image i's planes at x + i*x_step), positions [q0, q1) of their concatenation (q is
   output position q % P of image q / P), written straight into B panels (pack_b's layout,
   zero in the columns past q1 - q0). Blocks that span images keep the panels full when an
   image has fewer positions than a block. */
static inline GEMM_TARGET void GK(pack_b_im2col)(const T *x, long x_step, int C, int H, int W,
                                                 int KH, int KW, int sh, int sw, int ph, int pw,
                                                 int dh, int dw, int WO, long P, long q0,
                                                 long q1, T *Bp)
{
    const long K = (long)C * KH * KW, n = q1 - q0;
    MINIDL_CHECK(P > 0 && 0 <= q0 && q0 <= q1);
    for (long s = q0; s < q1;) { /* one image's part of the block at a time */
        const long img = s / P, qs = s - img * P, qe = q1 - img * P < P ? q1 - img * P : P;
        const long col = s - q0; /* its first column in the block */
        MINIDL_CHECK(0 <= qs && qs < qe && qe <= P);
        GK(im2col_rows)((T *)x + img * x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, 0, K,
                        qs, qe, GEMM_NR, GEMM_NR * K, col % GEMM_NR,
                        Bp + (col / GEMM_NR) * GEMM_NR * K, 0);
        s += qe - qs;
    }
    const long n_pad = (n + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    if (n_pad > n) {
        T *last = Bp + (n / GEMM_NR) * GEMM_NR * K;
        for (long kk = 0; kk < K; kk++)
            for (long jj = n % GEMM_NR; jj < GEMM_NR; jj++)
                last[kk * GEMM_NR + jj] = 0;
    }
}

/* C (m x n) (+)= A (m x k) @ B (k x n) from arrays packed whole by pack_a (m rows) and pack_b
   (n columns), both with all k rows (panel steps MR*k and NR*k): the loops of gemm without
   its packing, for operands packed once and used many times (a convolution's weights) or
   packed by their producer (im2col's panels). */
static inline GEMM_TARGET void GK(gemm_packed)(long m, long n, long k, const T *Ap, const T *Bp, T *C,
                                        long ldc, int accumulate)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        if (!accumulate)
            for (long i = 0; i < m; i++)
                memset(C + i * ldc, 0, sizeof(T) * (size_t)n);
        return;
    }
    for (long pc = 0; pc < k; pc += GEMM_KC) {
        const long kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
        for (long ic = 0; ic < m; ic += GEMM_MC) {
            const long mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
            GK(macro)(mc, n, kc, Ap + ic * k + pc * GEMM_MR, GEMM_MR * k, Bp + pc * GEMM_NR,
                      GEMM_NR * k, C + ic * ldc, ldc, accumulate || pc > 0);
        }
    }
}

static inline minidl_gemm_blocking GK(blocking)(void)
{
    minidl_gemm_blocking b = {GEMM_MR, GEMM_NR, GEMM_KC, GEMM_MC, GEMM_NC};
    return b;
}

#undef GEMM_NR

#else /* ------------------------------------------ the public functions of type T */

#ifdef MINIDL_ISA_DISPATCH
#define GEMM_CALL(name, args)                                                               \
    switch (minidl_gemm_level()) {                                                          \
    case 4: return GV4(name) args;                                                          \
    case 3: return GV3(name) args;                                                          \
    default: return GBASE(name) args;                                                       \
    }
#define GEMM_VCALL(name, args)                                                              \
    switch (minidl_gemm_level()) {                                                          \
    case 4: GV4(name) args; return;                                                         \
    case 3: GV3(name) args; return;                                                         \
    default: GBASE(name) args; return;                                                      \
    }
#else
#define GEMM_CALL(name, args) return GBASE(name) args;
#define GEMM_VCALL(name, args) GBASE(name) args;
#endif

/* The register and cache blocking the CPU's level uses. */
static inline minidl_gemm_blocking FN(gemm_blocking)(void) { GEMM_CALL(blocking, ()) }

/* Elements of T that FN(gemm) needs as workspace for an m x n x k product. */
static inline long FN(gemm_workspace)(long m, long n, long k)
{
    GEMM_CALL(gemm_workspace, (m, n, k))
}

/* C (m x n) (+)= op(A) (m x k) @ op(B) (k x n), row-major; ta/tb: 0 = as stored, 1 =
   transposed (op(A)(i, p) = A[p*lda + i]); accumulate: 0 overwrites C, 1 adds to it.
   ws: FN(gemm_workspace)(m, n, k) elements, not shared with another thread. */
static inline void FN(gemm)(int ta, int tb, long m, long n, long k, const T *A, long lda, const T *B,
                     long ldb, int accumulate, T *C, long ldc, T *ws)
{
    GEMM_VCALL(gemm, (ta, tb, m, n, k, A, lda, B, ldb, accumulate, C, ldc, ws))
}

/* Elements of T that a whole packed op(A) (m x k) / op(B) (k x n) takes (with the room to
   align it: the functions below align the pointer they are given, the same way each time). */
static inline long FN(gemm_packed_a_size)(long m, long k)
{
    const minidl_gemm_blocking b = FN(gemm_blocking)();
    return (m + b.mr - 1) / b.mr * b.mr * (k > 0 ? k : 1) + MINIDL_GEMM_ALIGN / sizeof(T);
}

static inline long FN(gemm_packed_b_size)(long k, long n)
{
    const minidl_gemm_blocking b = FN(gemm_blocking)();
    return (n + b.nr - 1) / b.nr * b.nr * (k > 0 ? k : 1) + MINIDL_GEMM_ALIGN / sizeof(T);
}

static inline void FN(gemm_pack_a)(int ta, const T *A, long lda, long m, long k, T *Ap)
{
    GEMM_VCALL(pack_a, (ta, A, lda, m, k, (T *)minidl_gemm_align(Ap)))
}

static inline void FN(gemm_pack_b)(int tb, const T *B, long ldb, long k, long n, T *Bp)
{
    GEMM_VCALL(pack_b, (tb, B, ldb, k, n, (T *)minidl_gemm_align(Bp)))
}

static inline void FN(gemm_pack_b_im2col)(const T *x, long x_step, int C, int H, int W, int KH,
                                          int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                                          int WO, long P, long q0, long q1, T *Bp)
{
    GEMM_VCALL(pack_b_im2col, (x, x_step, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, P, q0,
                               q1, (T *)minidl_gemm_align(Bp)))
}

/* Rows [k0, k1) x output positions [q0, q1) of one image's im2col matrix into the row-major
   (k1 - k0) x (q1 - q0) array cols (see im2col_rows), and the reverse: col2im_rows adds such
   a block into the image dx (C, H, W), zeroing the block's entries that stand for padding
   (cols is scratch). */
static inline void FN(im2col_rows)(const T *x, int C, int H, int W, int KH, int KW, int sh,
                                   int sw, int ph, int pw, int dh, int dw, int WO, long k0,
                                   long k1, long q0, long q1, T *cols)
{
    GEMM_VCALL(im2col_rows, ((T *)x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0,
                             q1, q1 - q0, 0, 0, cols, 0))
}

static inline void FN(col2im_rows)(T *cols, int C, int H, int W, int KH, int KW, int sh,
                                   int sw, int ph, int pw, int dh, int dw, int WO, long k0,
                                   long k1, long q0, long q1, T *dx)
{
    GEMM_VCALL(im2col_rows, (dx, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, WO, k0, k1, q0, q1,
                             q1 - q0, 0, 0, cols, 1))
}

static inline void FN(gemm_packed)(long m, long n, long k, const T *Ap, const T *Bp, T *C, long ldc,
                            int accumulate)
{
    GEMM_VCALL(gemm_packed, (m, n, k, (const T *)minidl_gemm_align((void *)Ap),
                             (const T *)minidl_gemm_align((void *)Bp), C, ldc, accumulate))
}

#undef GEMM_CALL
#undef GEMM_VCALL
#endif
