/* Instantiated by _winograd.h with T = float / double and FN(name) = name_f / name_d.

   Winograd F(m x m, 3x3) for m = 2 (alpha = 4) and m = 4 (alpha = 6), Lavin & Gray 2016,
   interpolation points 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4), plus infinity:

     U = G g G^T (filter),  V = B^T d B (input tile),  Y = A^T (U (.) V) A (output tile),
     dU = (A dY A^T) (.) V summed over tiles,  dg = G^T dU G (filter gradient).

   Tiles: tile t of the tile row at output row y0 covers output rows y0 .. y0+m-1 and columns
   t*m .. t*m+m-1, and reads the alpha x alpha input patch at rows y0 + oy + k and columns
   t*m + ox + l (k, l < alpha; oy = ox = -pad for a forward pass). A plane has th x tw tiles;
   those of the last row and column may stick out of the output (partial tiles).

   Layout: the transformed tiles of a run of tile rows are written side by side, element xi
   (= i*alpha + j) of tile j of the run at V[xi*vs + j]: per tile element one row of the
   batched GEMMs, and every arithmetic loop here runs over many tiles and vectorises.

   Bounds: an input plane is read only at rows in [0, H) and columns in [0, W) (the columns
   a tile row's patches span are clamped to the plane; rows and columns outside read as zero:
   padding, however large, or a 1-pixel input). An output plane is written only at rows
   < HO and columns < WO (the partial tiles are cut at the edge). Scratch is passed in (sizes
   with each function); nothing here allocates, starts threads or calls the BLAS. */

/* ---- 1-D transforms of n tiles at once: element k of tile t is d[k][t*it] (d: one pointer
   per element: plane rows, or a row's tiles at stride m), element i of the result
   out[i*os + t] (A^T: out[i*os + t*ot], plus a bias). Called with constant strides from the
   bodies below, so the loops over t vectorise (stride-m reads become vector loads and
   permutes). The matrices' zeros and ones are not multiplied. ---- */

/* B^T (4x4) of F(2,3) */
static inline void FN(wino_bt2)(const T *const *d, long it, T *restrict out, long os, long n)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3];
    T *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T a = d0[t * it], b = d1[t * it], c = d2[t * it], e = d3[t * it];
        o0[t] = a - c;
        o1[t] = b + c;
        o2[t] = c - b;
        o3[t] = b - e;
    }
}

/* B^T (6x6) of F(4,3) */
static inline void FN(wino_bt4)(const T *const *d, long it, T *restrict out, long os, long n)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3],
            *restrict d4 = d[4], *restrict d5 = d[5];
    T *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os,
      *o5 = out + 5 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T a = d0[t * it], b = d1[t * it], c = d2[t * it], e = d3[t * it],
                f = d4[t * it], g = d5[t * it];
        o0[t] = (T)4 * a - (T)5 * c + f;
        o1[t] = (e + f) - (T)4 * (b + c);
        o2[t] = (f - e) + (T)4 * (b - c);
        o3[t] = (f - c) + (T)2 * (e - b);
        o4[t] = (f - c) - (T)2 * (e - b);
        o5[t] = (T)4 * b - (T)5 * e + g;
    }
}

/* A^T (2x4) of F(2,3): alpha elements in, m out, plus bias */
static inline void FN(wino_at2)(const T *const *d, long it, T *restrict out, long os, long ot,
                                long n, T bias)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3];
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T m0 = d0[t * it], m1 = d1[t * it], m2 = d2[t * it], m3 = d3[t * it];
        out[t * ot] = m0 + m1 + m2 + bias;
        out[t * ot + os] = m1 - m2 - m3 + bias;
    }
}

/* A^T (4x6) of F(4,3) */
static inline void FN(wino_at4)(const T *const *d, long it, T *restrict out, long os, long ot,
                                long n, T bias)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3],
            *restrict d4 = d[4], *restrict d5 = d[5];
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T s12 = d1[t * it] + d2[t * it], d12 = d1[t * it] - d2[t * it];
        const T s34 = d3[t * it] + d4[t * it], d34 = d3[t * it] - d4[t * it];
        out[t * ot] = d0[t * it] + s12 + s34 + bias;
        out[t * ot + os] = d12 + (T)2 * d34 + bias;
        out[t * ot + 2 * os] = s12 + (T)4 * s34 + bias;
        out[t * ot + 3 * os] = d12 + (T)8 * d34 + d5[t * it] + bias;
    }
}

/* A (4x2) of F(2,3), the transpose of A^T: m elements in, alpha out (output gradients) */
static inline void FN(wino_a2)(const T *const *d, long it, T *restrict out, long os, long n)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1];
    T *z0 = out, *z1 = out + os, *z2 = out + 2 * os, *z3 = out + 3 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T a = d0[t * it], b = d1[t * it];
        z0[t] = a;
        z1[t] = a + b;
        z2[t] = a - b;
        z3[t] = -b;
    }
}

/* A (6x4) of F(4,3) */
static inline void FN(wino_a4)(const T *const *d, long it, T *restrict out, long os, long n)
{
    const T *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3];
    T *z0 = out, *z1 = out + os, *z2 = out + 2 * os, *z3 = out + 3 * os, *z4 = out + 4 * os,
      *z5 = out + 5 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T a = d0[t * it], b = d1[t * it], c = d2[t * it], e = d3[t * it];
        const T s02 = a + c, s13 = b + e, e02 = a + (T)4 * c, e13 = (T)2 * b + (T)8 * e;
        z0[t] = a;
        z1[t] = s02 + s13;
        z2[t] = s02 - s13;
        z3[t] = e02 + e13;
        z4[t] = e02 - e13;
        z5[t] = e;
    }
}

/* p[k] = base + k*stride for k < count: the element pointers of the transforms above */
static inline void FN(wino_ptrs)(const T **p, const T *base, long stride, int count)
{
    for (int k = 0; k < count; k++)
        p[k] = base + k * stride;
}

/* G (4x3) of F(2,3): 3 elements in, alpha out (filters) */
static inline void FN(wino_g2)(const T *restrict in, long is, T *restrict out, long os, long n)
{
    const T *g0 = in, *g1 = in + is, *g2 = in + 2 * is;
    T *u0 = out, *u1 = out + os, *u2 = out + 2 * os, *u3 = out + 3 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T s = g0[t] + g2[t];
        u0[t] = g0[t];
        u1[t] = (T)0.5 * (s + g1[t]);
        u2[t] = (T)0.5 * (s - g1[t]);
        u3[t] = g2[t];
    }
}

/* G (6x3) of F(4,3) */
static inline void FN(wino_g4)(const T *restrict in, long is, T *restrict out, long os, long n)
{
    const T *g0 = in, *g1 = in + is, *g2 = in + 2 * is;
    T *u0 = out, *u1 = out + os, *u2 = out + 2 * os, *u3 = out + 3 * os, *u4 = out + 4 * os,
      *u5 = out + 5 * os;
    const T sixth = (T)(1.0 / 6.0), twelfth = (T)(1.0 / 12.0), t24 = (T)(1.0 / 24.0);
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T s = g0[t] + g2[t], e = t24 * g0[t] + sixth * g2[t], f = twelfth * g1[t];
        u0[t] = (T)0.25 * g0[t];
        u1[t] = -sixth * (s + g1[t]);
        u2[t] = -sixth * (s - g1[t]);
        u3[t] = e + f;
        u4[t] = e - f;
        u5[t] = g2[t];
    }
}

/* G^T (3x4) of F(2,3): alpha elements in, 3 out (filter gradients) */
static inline void FN(wino_gt2)(const T *restrict in, long is, T *restrict out, long os, long n)
{
    const T *s0 = in, *s1 = in + is, *s2 = in + 2 * is, *s3 = in + 3 * is;
    T *p0 = out, *p1 = out + os, *p2 = out + 2 * os;
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T h = (T)0.5 * (s1[t] + s2[t]);
        p0[t] = s0[t] + h;
        p1[t] = (T)0.5 * (s1[t] - s2[t]);
        p2[t] = h + s3[t];
    }
}

/* G^T (3x6) of F(4,3) */
static inline void FN(wino_gt4)(const T *restrict in, long is, T *restrict out, long os, long n)
{
    const T *s0 = in, *s1 = in + is, *s2 = in + 2 * is, *s3 = in + 3 * is, *s4 = in + 4 * is,
            *s5 = in + 5 * is;
    T *p0 = out, *p1 = out + os, *p2 = out + 2 * os;
    const T sixth = (T)(1.0 / 6.0), twelfth = (T)(1.0 / 12.0), t24 = (T)(1.0 / 24.0);
    WINO_IVDEP
    for (long t = 0; t < n; t++) {
        const T s12 = s1[t] + s2[t], d12 = s1[t] - s2[t];
        const T s34 = s3[t] + s4[t], d34 = s3[t] - s4[t];
        p0[t] = (T)0.25 * s0[t] - sixth * s12 + t24 * s34;
        p1[t] = twelfth * d34 - sixth * d12;
        p2[t] = sixth * (s34 - s12) + s5[t];
    }
}

/* ---- tile rows of one channel ----
   Tile row r (of R = N*th) is tile row r % th of image r / th, whose plane of this channel
   starts at base + (r / th) * img_stride; tile t of row r is column (r - r0)*tw + t of a run
   [r0, r1) of rows. The first 1-D transform runs along whole plane rows (contiguous, as long
   as the plane is wide), the second over the tiles of a tile row, reading each tile's values
   at stride m (which the compiler turns into vector loads and permutes). */

/* The four/six plane rows of a tile row, for the first transform: row k of the input patch
   is input row y0 + oy + k; rows outside [0, H) read the zero row. Columns: the patch column
   range [0, tw*m + 2) is input columns ox + col, of which [*c0, *c1) lie inside [0, W). */
static inline void FN(wino_patch_rows)(const T **rows, const T *plane, const T *zeros, long H,
                                       long W, int A, long y0, long oy, long ox, long tw,
                                       int m, long *c0, long *c1)
{
    const long Wp = tw * m + 2;
    long lo = -ox > 0 ? -ox : 0, hi = W - ox < Wp ? W - ox : Wp;
    if (lo > Wp)
        lo = Wp;
    if (hi < lo)
        hi = lo;
    MINIDL_CHECK(0 <= lo && lo <= hi && hi <= Wp);
    MINIDL_CHECK(lo == hi || (lo + ox >= 0 && hi + ox <= W));
    for (int k = 0; k < A; k++) {
        const long row = y0 + oy + k;
        /* rows[k][col - lo] is input (row, ox + col) for col in [lo, hi): inside the plane */
        rows[k] = (row >= 0 && row < H && lo < hi) ? plane + row * W + (ox + lo) : zeros;
    }
    *c0 = lo;
    *c1 = hi;
}

/* V[xi*vs + j] = (B^T d B)[xi] for the tiles j of rows [r0, r1) of (H, W) input planes
   (see the top of this file for oy, ox). scr: (alpha + 1) * (tw*m + 2) values. */
static inline __attribute__((always_inline)) void
FN(wino_input_rows_body)(const T *restrict base, long img_stride, long H, long W, const int m,
                         long th, long r0, long r1, long oy, long ox, long tw, T *restrict v,
                         long vs, T *restrict scr)
{
    const int A = m + 2;
    const long Wp = tw * m + 2;
    T *t1 = scr;                          /* [i][col]: B^T applied down the patch columns */
    T *zeros = scr + (long)A * Wp;        /* a zero row as long as any valid column range */
    const T *rows[6], *cols[6];
    for (long c = 0; c < Wp; c++)
        zeros[c] = 0;
    for (long r = r0; r < r1; r++) {
        long c0, c1;
        FN(wino_patch_rows)(rows, base + (r / th) * img_stride, zeros, H, W, A,
                            (r % th) * m, oy, ox, tw, m, &c0, &c1);
        for (int i = 0; i < A; i++) {     /* columns that lie in the padding */
            for (long c = 0; c < c0; c++)
                t1[i * Wp + c] = 0;
            for (long c = c1; c < Wp; c++)
                t1[i * Wp + c] = 0;
        }
        if (m == 2)                       /* t1[i][col] = sum_k BT[i][k] d[k][col] */
            FN(wino_bt2)(rows, 1, t1 + c0, Wp, c1 - c0);
        else
            FN(wino_bt4)(rows, 1, t1 + c0, Wp, c1 - c0);
        T *vr = v + (r - r0) * tw;
        for (int i = 0; i < A; i++) {     /* V[i][j] = sum_l BT[j][l] t1[i][t*m + l] */
            FN(wino_ptrs)(cols, t1 + i * Wp, 1, A);
            if (m == 2)
                FN(wino_bt2)(cols, 2, vr + (long)i * A * vs, vs, tw);
            else
                FN(wino_bt4)(cols, 4, vr + (long)i * A * vs, vs, tw);
        }
    }
}

/* The output rows of tile rows [r0, r1) of (HO, WO) planes (only rows < HO and columns
   < WO: the partial tiles at the bottom and right edges): Y = A^T M A + bias, M[xi*ms + j]
   the tile-wise products. scr: alpha * m * (r1 - r0) * tw values. */
static inline __attribute__((always_inline)) void
FN(wino_output_rows_body)(const T *restrict mm, long ms, const int m, long th, long r0, long r1,
                          long tw, T *restrict base, long img_stride, long HO, long WO, T bias,
                          T *restrict scr)
{
    const int A = m + 2;
    const long n = (r1 - r0) * tw;
    const long full = WO / m < tw ? WO / m : tw;   /* tiles whose m columns are all < WO */
    T *t1 = scr;                          /* [a][j][.]: A^T applied down the tile columns */
    const T *el[6];
    for (int j = 0; j < A; j++) {         /* t1[a][j] = sum_i AT[a][i] M[i][j] */
        FN(wino_ptrs)(el, mm + j * ms, A * ms, A);
        if (m == 2)
            FN(wino_at2)(el, 1, t1 + j * n, A * n, 1, n, 0);
        else
            FN(wino_at4)(el, 1, t1 + j * n, A * n, 1, n, 0);
    }
    for (long r = r0; r < r1; r++) {
        T *plane = base + (r / th) * img_stride;
        const long y0 = (r % th) * m;
        for (int a = 0; a < m && y0 + a < HO; a++) {   /* the last tile row may be partial */
            T *dst = plane + (y0 + a) * WO;
            /* Y[a][b] = sum_j AT[b][j] t1[a][j], stored at columns t*m + b < WO */
            FN(wino_ptrs)(el, t1 + (long)a * A * n + (r - r0) * tw, n, A);
            if (m == 2)
                FN(wino_at2)(el, 1, dst, 1, 2, full, bias);
            else
                FN(wino_at4)(el, 1, dst, 1, 4, full, bias);
            if (full < tw) {              /* the partial tile at the right edge */
                T y[4];
                FN(wino_ptrs)(el, t1 + (long)a * A * n + (r - r0) * tw + full, n, A);
                if (m == 2)
                    FN(wino_at2)(el, 1, y, 1, 2, 1, bias);
                else
                    FN(wino_at4)(el, 1, y, 1, 4, 1, bias);
                for (long b = 0; full * m + b < WO && b < m; b++)
                    dst[full * m + b] = y[b];
            }
        }
    }
}

/* Z[xi*zs + j] = (A dY A^T)[xi] for the tiles j of rows [r0, r1) of (HO, WO) output-gradient
   planes; positions past HO or WO (partial tiles) count as zero.
   scr: (alpha + 1) * tw*m values. */
static inline __attribute__((always_inline)) void
FN(wino_grad_rows_body)(const T *restrict base, long img_stride, long HO, long WO, const int m,
                        long th, long r0, long r1, long tw, T *restrict z, long zs,
                        T *restrict scr)
{
    const int A = m + 2;
    const long Wq = tw * m;               /* the columns the tiles span, WO rounded up */
    const long c1 = WO < Wq ? WO : Wq;    /* the valid ones: [0, c1) */
    T *t1 = scr;                          /* [i][col]: A applied down the tile columns */
    T *zeros = scr + (long)A * Wq;
    const T *rows[4], *cols[4];
    for (long c = 0; c < Wq; c++)
        zeros[c] = 0;
    for (long r = r0; r < r1; r++) {
        const T *plane = base + (r / th) * img_stride;
        const long y0 = (r % th) * m;
        for (int a = 0; a < m; a++)       /* rows past HO: the zero row */
            rows[a] = y0 + a < HO ? plane + (y0 + a) * WO : zeros;
        for (int i = 0; i < A; i++)
            for (long c = c1; c < Wq; c++)
                t1[i * Wq + c] = 0;
        if (m == 2)                       /* t1[i][col] = sum_a A[i][a] dY[a][col] */
            FN(wino_a2)(rows, 1, t1, Wq, c1);
        else
            FN(wino_a4)(rows, 1, t1, Wq, c1);
        T *zr = z + (r - r0) * tw;
        for (int i = 0; i < A; i++) {     /* Z[i][j] = sum_b A[j][b] t1[i][t*m + b] */
            FN(wino_ptrs)(cols, t1 + i * Wq, 1, m);
            if (m == 2)
                FN(wino_a2)(cols, 2, zr + (long)i * A * zs, zs, tw);
            else
                FN(wino_a4)(cols, 4, zr + (long)i * A * zs, zs, tw);
        }
    }
}

MINIDL_CLONES
static void FN(wino_input_rows)(const T *restrict base, long img_stride, long H, long W, int m,
                                long th, long r0, long r1, long oy, long ox, long tw,
                                T *restrict v, long vs, T *restrict scr)
{
    /* m as a constant: the loops over tile elements unroll, the strides are known */
    if (m == 2)
        FN(wino_input_rows_body)(base, img_stride, H, W, 2, th, r0, r1, oy, ox, tw, v, vs, scr);
    else
        FN(wino_input_rows_body)(base, img_stride, H, W, 4, th, r0, r1, oy, ox, tw, v, vs, scr);
}

MINIDL_CLONES
static void FN(wino_output_rows)(const T *restrict mm, long ms, int m, long th, long r0,
                                 long r1, long tw, T *restrict base, long img_stride, long HO,
                                 long WO, T bias, T *restrict scr)
{
    if (m == 2)
        FN(wino_output_rows_body)(mm, ms, 2, th, r0, r1, tw, base, img_stride, HO, WO, bias,
                                  scr);
    else
        FN(wino_output_rows_body)(mm, ms, 4, th, r0, r1, tw, base, img_stride, HO, WO, bias,
                                  scr);
}

MINIDL_CLONES
static void FN(wino_grad_rows)(const T *restrict base, long img_stride, long HO, long WO,
                               int m, long th, long r0, long r1, long tw, T *restrict z,
                               long zs, T *restrict scr)
{
    if (m == 2)
        FN(wino_grad_rows_body)(base, img_stride, HO, WO, 2, th, r0, r1, tw, z, zs, scr);
    else
        FN(wino_grad_rows_body)(base, img_stride, HO, WO, 4, th, r0, r1, tw, z, zs, scr);
}

/* ---- filters (once per call: no constant-m copies) ---- */

/* U[xi*us + c] = (G g G^T)[xi] for the C 3x3 kernels g = w[c] of one filter, w (C, 3, 3).
   scr: (9 + 3*alpha) * C values. */
MINIDL_CLONES
static void FN(wino_filter)(const T *restrict w, long C, int m, T *restrict u, long us,
                            T *restrict scr)
{
    const int A = m + 2;
    T *g = scr;                           /* [i][j][c] */
    T *t1 = scr + 9 * C;                  /* [a][j][c] */
    for (long c = 0; c < C; c++)
        for (int k = 0; k < 9; k++)
            g[k * C + c] = w[c * 9 + k];
    for (int j = 0; j < 3; j++) {         /* t1[a][j] = sum_i G[a][i] g[i][j] */
        if (m == 2)
            FN(wino_g2)(g + j * C, 3 * C, t1 + j * C, 3 * C, C);
        else
            FN(wino_g4)(g + j * C, 3 * C, t1 + j * C, 3 * C, C);
    }
    for (int a = 0; a < A; a++) {         /* U[a][b] = sum_j G[b][j] t1[a][j] */
        if (m == 2)
            FN(wino_g2)(t1 + (long)a * 3 * C, C, u + (long)a * A * us, us, C);
        else
            FN(wino_g4)(t1 + (long)a * 3 * C, C, u + (long)a * A * us, us, C);
    }
}

/* dw[c] (3x3) = G^T S[., c] G for the C kernels of one filter, S[xi*ss + c] the tile-summed
   products; dw (C, 3, 3) is overwritten. scr: (9 + 3*alpha) * C values. */
MINIDL_CLONES
static void FN(wino_filter_grad)(const T *restrict s, long ss, long C, int m, T *restrict dw,
                                 T *restrict scr)
{
    const int A = m + 2;
    T *t1 = scr;                          /* [p][j][c] */
    T *g = scr + 3L * A * C;              /* [p][q][c] */
    for (int j = 0; j < A; j++) {         /* t1[p][j] = sum_i G[i][p] S[i][j] */
        if (m == 2)
            FN(wino_gt2)(s + j * ss, A * ss, t1 + j * C, A * C, C);
        else
            FN(wino_gt4)(s + j * ss, A * ss, t1 + j * C, A * C, C);
    }
    for (int p = 0; p < 3; p++) {         /* dw[p][q] = sum_j G[j][q] t1[p][j] */
        if (m == 2)
            FN(wino_gt2)(t1 + (long)p * A * C, C, g + p * 3 * C, C, C);
        else
            FN(wino_gt4)(t1 + (long)p * A * C, C, g + p * 3 * C, C, C);
    }
    for (long c = 0; c < C; c++)
        for (int k = 0; k < 9; k++)
            dw[c * 9 + k] = g[k * C + c];
}
