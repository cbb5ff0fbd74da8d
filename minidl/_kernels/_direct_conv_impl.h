/* Instantiated by _direct_conv.h with T = float / double, VT the matching vector type and
   FN(name) = name_f / name_d (see _simd.h). */

/* Copy a (C, H, W) block into a zeroed (C, H + 2*ph, W + 2*pw) buffer. */
static void FN(pad_planes)(const T *restrict x, T *restrict buf, int C, int H, int W,
                           int ph, int pw)
{
    const long Hp = (long)H + 2L * ph, Wp = (long)W + 2L * pw;
    memset(buf, 0, sizeof(T) * (size_t)C * Hp * Wp);
    for (long c = 0; c < C; c++)
        for (long y = 0; y < H; y++)
            memcpy(buf + (c * Hp + y + ph) * Wp + pw, x + (c * H + y) * W, sizeof(T) * W);
}

/* The bound every plane loop below relies on: the last window of an output of HO x WO
   positions (stride sh/sw, dilation dh/dw, kernel KH x KW) ends inside a padded plane of
   Hp x Wp. The Python checks guarantee it; debug builds assert it (see _checks.h). */
static inline int FN(windows_fit)(int HO, int WO, long Hp, long Wp, int KH, int KW, int sh,
                                  int sw, int dh, int dw)
{
    return HO >= 1 && WO >= 1 && (long)(HO - 1) * sh + (long)(KH - 1) * dh < Hp
        && (long)(WO - 1) * sw + (long)(KW - 1) * dw < Wp;
}

/* row[x] += sum_j w[j] * r[x*sw + j*dw], x < n: one kernel row applied to one output row.
   The common MobileNet/ShuffleNet cases get fixed-size loops the compiler vectorises. */
static inline void FN(row_taps)(T *restrict row, const T *restrict r, const T *restrict w,
                         int kw, int sw, int dw, int n)
{
    if (dw == 1 && kw == 3 && sw == 1) {
        const T w0 = w[0], w1 = w[1], w2 = w[2];
        for (int x = 0; x < n; x++)
            row[x] += w0 * r[x] + w1 * r[x + 1] + w2 * r[x + 2];
    } else if (dw == 1 && kw == 3 && sw == 2) {
        const T w0 = w[0], w1 = w[1], w2 = w[2];
        for (int x = 0; x < n; x++)
            row[x] += w0 * r[2 * x] + w1 * r[2 * x + 1] + w2 * r[2 * x + 2];
    } else if (dw == 1 && kw == 5 && sw == 1) {
        const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
        for (int x = 0; x < n; x++)
            row[x] += w0 * r[x] + w1 * r[x + 1] + w2 * r[x + 2] + w3 * r[x + 3] + w4 * r[x + 4];
    } else if (dw == 1 && kw == 5 && sw == 2) {
        const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
        for (int x = 0; x < n; x++)
            row[x] += w0 * r[2 * x] + w1 * r[2 * x + 1] + w2 * r[2 * x + 2]
                    + w3 * r[2 * x + 3] + w4 * r[2 * x + 4];
    } else if (sw == 1) {
        for (int j = 0; j < kw; j++) {
            const T wj = w[j];
            const T *rj = r + (long)j * dw;
            for (int x = 0; x < n; x++)
                row[x] += wj * rj[x];
        }
    } else {
        for (int j = 0; j < kw; j++) {
            const T wj = w[j];
            const T *rj = r + (long)j * dw;
            for (int x = 0; x < n; x++)
                row[x] += wj * rj[(long)x * sw];
        }
    }
}


/* brow[x*sw + j*dw] += w[j] * d[x] for every tap j: the transpose of row_taps. */
static inline void FN(row_scatter)(T *restrict brow, const T *restrict d, const T *restrict w,
                            int kw, int sw, int dw, int n)
{
    for (int j = 0; j < kw; j++) {
        const T wj = w[j];
        T *bj = brow + (long)j * dw;
        if (sw == 1) {
            for (int x = 0; x < n; x++)
                bj[x] += wj * d[x];
        } else if (sw == 2) {
            for (int x = 0; x < n; x++)
                bj[2 * x] += wj * d[x];
        } else {
            for (int x = 0; x < n; x++)
                bj[(long)x * sw] += wj * d[x];
        }
    }
}

/* acc[j][x] += d[x] * r[x*sw + j*dw]: per-lane partial sums of one kernel row's weight
   gradient (summed at the end, so the loop vectorises without reassociating a reduction). */
static inline void FN(row_corr)(T *restrict acc, const T *restrict d, const T *restrict r,
                         int kw, int sw, int dw, int n)
{
    if (dw == 1 && kw == 3 && sw == 1) {
        T *a0 = acc, *a1 = acc + n, *a2 = acc + 2 * n;
        for (int x = 0; x < n; x++) {
            const T dv = d[x];
            a0[x] += dv * r[x];
            a1[x] += dv * r[x + 1];
            a2[x] += dv * r[x + 2];
        }
        return;
    }
    for (int j = 0; j < kw; j++) {
        T *aj = acc + (long)j * n;
        const T *rj = r + (long)j * dw;
        if (sw == 1) {
            for (int x = 0; x < n; x++)
                aj[x] += d[x] * rj[x];
        } else {
            for (int x = 0; x < n; x++)
                aj[x] += d[x] * rj[(long)x * sw];
        }
    }
}

/* One (filter, input channel) pair over a whole output plane:
   out[y, x] += sum_{i,j} w[i, j] * in[y*sh + i*dh, x*sw + j*dw], in being a padded plane of
   row length Wp. 3x3 with stride 1 or 2 (no dilation) reads its three input rows in one pass. */
MINIDL_CLONES
static void FN(plane_taps)(T *restrict out, const T *restrict in, const T *restrict w,
                           int HO, int WO, long Wp, int KH, int KW, int sh, int sw,
                           int dh, int dw)
{
    if (KH == 3 && KW == 3 && dh == 1 && dw == 1 && (sw == 1 || sw == 2)) {
        const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5],
                w6 = w[6], w7 = w[7], w8 = w[8];
        for (long y = 0; y < HO; y++) {
            const T *r0 = in + (y * sh) * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
            T *o = out + y * WO;
            if (sw == 1) {
                for (int x = 0; x < WO; x++)
                    o[x] += w0 * r0[x] + w1 * r0[x + 1] + w2 * r0[x + 2]
                          + w3 * r1[x] + w4 * r1[x + 1] + w5 * r1[x + 2]
                          + w6 * r2[x] + w7 * r2[x + 1] + w8 * r2[x + 2];
            } else {
                for (int x = 0; x < WO; x++)
                    o[x] += w0 * r0[2 * x] + w1 * r0[2 * x + 1] + w2 * r0[2 * x + 2]
                          + w3 * r1[2 * x] + w4 * r1[2 * x + 1] + w5 * r1[2 * x + 2]
                          + w6 * r2[2 * x] + w7 * r2[2 * x + 1] + w8 * r2[2 * x + 2];
            }
        }
        return;
    }
    for (long y = 0; y < HO; y++)
        for (long i = 0; i < KH; i++)
            FN(row_taps)(out + y * WO, in + (y * sh + i * dh) * Wp, w + i * KW, KW, sw, dw, WO);
}

/* Transpose of plane_taps: buf[y*sh + i*dh, x*sw + j*dw] += w[i, j] * d[y, x]. */
MINIDL_CLONES
static void FN(plane_scatter)(T *restrict buf, const T *restrict d, const T *restrict w,
                              int HO, int WO, long Wp, int KH, int KW, int sh, int sw,
                              int dh, int dw)
{
    for (long y = 0; y < HO; y++)
        for (long i = 0; i < KH; i++)
            FN(row_scatter)(buf + (y * sh + i * dh) * Wp, d + y * WO, w + i * KW, KW, sw, dw, WO);
}

/* Weight gradient of one (filter, input channel) pair for one image:
   dw[i, j] += sum_{y,x} d[y, x] * in[y*sh + i*dh, x*sw + j*dw]; acc holds KW*WO partial sums. */
MINIDL_CLONES
static void FN(plane_corr)(T *restrict dwt, const T *restrict d, const T *restrict in,
                           T *restrict acc, int HO, int WO, long Wp, int KH, int KW, int sh,
                           int sw, int dh, int dw)
{
    for (long i = 0; i < KH; i++) {
        memset(acc, 0, sizeof(T) * (size_t)KW * WO);
        for (long y = 0; y < HO; y++)
            FN(row_corr)(acc, d + y * WO, in + (y * sh + i * dh) * Wp, KW, sw, dw, WO);
        for (long j = 0; j < KW; j++) {
            T s = 0;
            for (long xx = 0; xx < WO; xx++) s += acc[j * WO + xx];
            dwt[i * KW + j] += s;
        }
    }
}


#ifdef MINIDL_VEC
/* ---- register-blocked 3x3, stride 1, no dilation (the ResNeXt / MobileNet case) ----
   Vectors of NV = 32 / sizeof(T) outputs along x; the accumulators stay in registers over
   every input channel and kernel tap, so each input load feeds up to four filters. */
#define NV ((int)(32 / sizeof(T)))

static inline VT FN(loadu)(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; }
static inline void FN(storeu)(T *p, VT v) { memcpy(p, &v, sizeof v); }

/* Depthwise 3x3 stride 1 on one padded plane: out (HO, WO) = w (*) in. The nine weights live
   in registers and two output rows share the loads of their three common input rows. */
MINIDL_CLONES
static void FN(dw3x3s1_plane)(T *restrict out, const T *restrict in, const T *restrict w,
                              int HO, int WO, long Wp)
{
    VT k[9];
    for (int t = 0; t < 9; t++) { VT z = {0}; k[t] = z + w[t]; }
    long y = 0;
    for (; y + 2 <= HO; y += 2) {
        const T *r0 = in + y * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp, *r3 = r2 + Wp;
        T *o0 = out + y * WO, *o1 = o0 + WO;
        int x = 0;
        for (; x + NV <= WO; x += NV) {
            const VT a0 = FN(loadu)(r0 + x), a1 = FN(loadu)(r0 + x + 1), a2 = FN(loadu)(r0 + x + 2);
            const VT b0 = FN(loadu)(r1 + x), b1 = FN(loadu)(r1 + x + 1), b2 = FN(loadu)(r1 + x + 2);
            const VT c0 = FN(loadu)(r2 + x), c1 = FN(loadu)(r2 + x + 1), c2 = FN(loadu)(r2 + x + 2);
            const VT d0 = FN(loadu)(r3 + x), d1 = FN(loadu)(r3 + x + 1), d2 = FN(loadu)(r3 + x + 2);
            FN(storeu)(o0 + x, k[0] * a0 + k[1] * a1 + k[2] * a2 + k[3] * b0 + k[4] * b1
                               + k[5] * b2 + k[6] * c0 + k[7] * c1 + k[8] * c2);
            FN(storeu)(o1 + x, k[0] * b0 + k[1] * b1 + k[2] * b2 + k[3] * c0 + k[4] * c1
                               + k[5] * c2 + k[6] * d0 + k[7] * d1 + k[8] * d2);
        }
        for (; x < WO; x++) {
            o0[x] = w[0] * r0[x] + w[1] * r0[x + 1] + w[2] * r0[x + 2] + w[3] * r1[x]
                  + w[4] * r1[x + 1] + w[5] * r1[x + 2] + w[6] * r2[x] + w[7] * r2[x + 1]
                  + w[8] * r2[x + 2];
            o1[x] = w[0] * r1[x] + w[1] * r1[x + 1] + w[2] * r1[x + 2] + w[3] * r2[x]
                  + w[4] * r2[x + 1] + w[5] * r2[x + 2] + w[6] * r3[x] + w[7] * r3[x + 1]
                  + w[8] * r3[x + 2];
        }
    }
    for (; y < HO; y++) {
        const T *r0 = in + y * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
        T *o0 = out + y * WO;
        int x = 0;
        for (; x + NV <= WO; x += NV)
            FN(storeu)(o0 + x, k[0] * FN(loadu)(r0 + x) + k[1] * FN(loadu)(r0 + x + 1)
                               + k[2] * FN(loadu)(r0 + x + 2) + k[3] * FN(loadu)(r1 + x)
                               + k[4] * FN(loadu)(r1 + x + 1) + k[5] * FN(loadu)(r1 + x + 2)
                               + k[6] * FN(loadu)(r2 + x) + k[7] * FN(loadu)(r2 + x + 1)
                               + k[8] * FN(loadu)(r2 + x + 2));
        for (; x < WO; x++)
            o0[x] = w[0] * r0[x] + w[1] * r0[x + 1] + w[2] * r0[x + 2] + w[3] * r1[x]
                  + w[4] * r1[x + 1] + w[5] * r1[x + 2] + w[6] * r2[x] + w[7] * r2[x + 1]
                  + w[8] * r2[x + 2];
    }
}

/* out (Fg, HO, WO) = sum_c w[f, c] (*) buf[c] for a group whose padded input planes buf
   (Cg, Hp, Wp) are ready; the caller guarantees Hp >= HO + 2 and Wp >= WO + 2. */
MINIDL_CLONES
static void FN(conv3x3s1_group)(T *restrict out, const T *restrict buf, const T *restrict w,
                                int Cg, int Fg, int HO, int WO, long Hp, long Wp)
{
    const long P = (long)HO * WO, plane = Hp * Wp;
    int f0 = 0;
    if (Cg == 1) {  /* depthwise (channel multiplier Fg) */
        for (long f = 0; f < Fg; f++)
            FN(dw3x3s1_plane)(out + f * P, buf, w + f * 9, HO, WO, Wp);
        return;
    }
    for (; f0 + 4 <= Fg; f0 += 4) {
        const T *w0 = w + (long)f0 * Cg * 9, *w1 = w0 + Cg * 9, *w2 = w1 + Cg * 9, *w3 = w2 + Cg * 9;
        for (long y = 0; y < HO; y++) {
            int x = 0;
            for (; x + NV <= WO; x += NV) {
                VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                for (long c = 0; c < Cg; c++)
                    for (long i = 0; i < 3; i++) {
                        const T *r = buf + c * plane + (y + i) * Wp + x;
                        const VT v0 = FN(loadu)(r), v1 = FN(loadu)(r + 1), v2 = FN(loadu)(r + 2);
                        const long k = c * 9 + i * 3;
                        a0 += w0[k] * v0 + w0[k + 1] * v1 + w0[k + 2] * v2;
                        a1 += w1[k] * v0 + w1[k + 1] * v1 + w1[k + 2] * v2;
                        a2 += w2[k] * v0 + w2[k + 1] * v1 + w2[k + 2] * v2;
                        a3 += w3[k] * v0 + w3[k + 1] * v1 + w3[k + 2] * v2;
                    }
                T *o = out + (long)f0 * P + y * WO + x;
                FN(storeu)(o, a0);
                FN(storeu)(o + P, a1);
                FN(storeu)(o + 2 * P, a2);
                FN(storeu)(o + 3 * P, a3);
            }
            for (; x < WO; x++)
                for (int f = 0; f < 4; f++) {
                    const T *wf = w + (long)(f0 + f) * Cg * 9;
                    T s = 0;
                    for (long c = 0; c < Cg; c++)
                        for (long i = 0; i < 3; i++) {
                            const T *r = buf + c * plane + (y + i) * Wp + x;
                            s += wf[c * 9 + i * 3] * r[0] + wf[c * 9 + i * 3 + 1] * r[1]
                               + wf[c * 9 + i * 3 + 2] * r[2];
                        }
                    out[(long)(f0 + f) * P + y * WO + x] = s;
                }
        }
    }
    for (; f0 < Fg; f0++) {
        const T *wf = w + (long)f0 * Cg * 9;
        for (long y = 0; y < HO; y++) {
            int x = 0;
            for (; x + NV <= WO; x += NV) {
                VT a = {0}, b = {0};
                for (long c = 0; c < Cg; c++) {
                    const T *r = buf + c * plane + y * Wp + x;
                    const T *k = wf + c * 9;
                    a += k[0] * FN(loadu)(r) + k[1] * FN(loadu)(r + 1) + k[2] * FN(loadu)(r + 2);
                    b += k[3] * FN(loadu)(r + Wp) + k[4] * FN(loadu)(r + Wp + 1)
                       + k[5] * FN(loadu)(r + Wp + 2);
                    a += k[6] * FN(loadu)(r + 2 * Wp) + k[7] * FN(loadu)(r + 2 * Wp + 1)
                       + k[8] * FN(loadu)(r + 2 * Wp + 2);
                }
                FN(storeu)(out + (long)f0 * P + y * WO + x, a + b);
            }
            for (; x < WO; x++) {
                T s = 0;
                for (long c = 0; c < Cg; c++)
                    for (long i = 0; i < 3; i++) {
                        const T *r = buf + c * plane + (y + i) * Wp + x;
                        s += wf[c * 9 + i * 3] * r[0] + wf[c * 9 + i * 3 + 1] * r[1]
                           + wf[c * 9 + i * 3 + 2] * r[2];
                    }
                out[(long)f0 * P + y * WO + x] = s;
            }
        }
    }
}

/* dw[i, j] += sum_{y,x} d[y, x] * in[y + i, x + j] for one (filter, channel) pair, 3x3 stride 1:
   nine vector accumulators over the whole plane, one horizontal sum each at the end. */
MINIDL_CLONES
static void FN(corr3x3s1_plane)(T *restrict dwt, const T *restrict d, const T *restrict in,
                                int HO, int WO, long Wp)
{
    VT a[9];
    T tail[9] = {0};
    for (int k = 0; k < 9; k++) { VT z = {0}; a[k] = z; }
    for (long y = 0; y < HO; y++) {
        const T *dr = d + y * WO;
        const T *r0 = in + y * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
        int x = 0;
        for (; x + NV <= WO; x += NV) {
            const VT dv = FN(loadu)(dr + x);
            a[0] += dv * FN(loadu)(r0 + x); a[1] += dv * FN(loadu)(r0 + x + 1); a[2] += dv * FN(loadu)(r0 + x + 2);
            a[3] += dv * FN(loadu)(r1 + x); a[4] += dv * FN(loadu)(r1 + x + 1); a[5] += dv * FN(loadu)(r1 + x + 2);
            a[6] += dv * FN(loadu)(r2 + x); a[7] += dv * FN(loadu)(r2 + x + 1); a[8] += dv * FN(loadu)(r2 + x + 2);
        }
        for (; x < WO; x++) {
            const T dv = dr[x];
            tail[0] += dv * r0[x]; tail[1] += dv * r0[x + 1]; tail[2] += dv * r0[x + 2];
            tail[3] += dv * r1[x]; tail[4] += dv * r1[x + 1]; tail[5] += dv * r1[x + 2];
            tail[6] += dv * r2[x]; tail[7] += dv * r2[x + 1]; tail[8] += dv * r2[x + 2];
        }
    }
    for (int k = 0; k < 9; k++) {
        T s = tail[k];
        for (int l = 0; l < NV; l++) s += a[k][l];
        dwt[k] += s;
    }
}
#undef NV
#endif

/* Grouped convolution forward for one image and one group, directly (no im2col):
   x (Cg, H, W), w (Fg, Cg, KH, KW), out (Fg, HO, WO). Depthwise is Cg == 1.
   Returns 0, or -1 when the padded copy cannot be allocated. */
static void FN(add_bias)(T *out, const T *bias, int Fg, long P)
{
    /* planes just written are still in cache: adding the bias here saves a pass over memory */
    if (!bias) return;
    for (long f = 0; f < Fg; f++) {
        const T b = bias[f];
        T *o = out + f * P;
        for (long k = 0; k < P; k++) o[k] += b;
    }
}

static int FN(gconv_forward)(const T *x, const T *w, const T *bias, T *out, int Cg, int Fg,
                             int H, int W, int KH, int KW, int sh, int sw, int ph, int pw,
                             int dh, int dw, int HO, int WO)
{
    const long Hp = (long)H + 2L * ph, Wp = (long)W + 2L * pw;
    MINIDL_CHECK(FN(windows_fit)(HO, WO, Hp, Wp, KH, KW, sh, sw, dh, dw));
    T *buf = (T *)malloc(sizeof(T) * (size_t)Cg * Hp * Wp);
    if (!buf) return -1;
    FN(pad_planes)(x, buf, Cg, H, W, ph, pw);
#ifdef MINIDL_VEC
    if (KH == 3 && KW == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1) {
        FN(conv3x3s1_group)(out, buf, w, Cg, Fg, HO, WO, Hp, Wp);
        FN(add_bias)(out, bias, Fg, (long)HO * WO);
        free(buf);
        return 0;
    }
#endif
    memset(out, 0, sizeof(T) * (size_t)Fg * HO * WO);
    for (long f = 0; f < Fg; f++)
        for (long c = 0; c < Cg; c++)
            FN(plane_taps)(out + f * HO * WO, buf + c * Hp * Wp, w + (f * Cg + c) * KH * KW,
                           HO, WO, Wp, KH, KW, sh, sw, dh, dw);
    FN(add_bias)(out, bias, Fg, (long)HO * WO);
    free(buf);
    return 0;
}

/* Gradient to the input for one image and group: dout (Fg, HO, WO) -> dx (Cg, H, W). */
static int FN(gconv_backward_data)(const T *dout, const T *w, T *dx, int Cg, int Fg, int H,
                                   int W, int KH, int KW, int sh, int sw, int ph, int pw,
                                   int dh, int dw, int HO, int WO)
{
    const long Hp = (long)H + 2L * ph, Wp = (long)W + 2L * pw;
    MINIDL_CHECK(FN(windows_fit)(HO, WO, Hp, Wp, KH, KW, sh, sw, dh, dw));
    T *buf = (T *)calloc((size_t)Cg * Hp * Wp, sizeof(T));
    if (!buf) return -1;
    for (long f = 0; f < Fg; f++)
        for (long c = 0; c < Cg; c++)
            FN(plane_scatter)(buf + c * Hp * Wp, dout + f * HO * WO, w + (f * Cg + c) * KH * KW,
                              HO, WO, Wp, KH, KW, sh, sw, dh, dw);
    for (long c = 0; c < Cg; c++)
        for (long y = 0; y < H; y++)
            memcpy(dx + (c * H + y) * W, buf + (c * Hp + y + ph) * Wp + pw, sizeof(T) * W);
    free(buf);
    return 0;
}

/* Weight gradient of one group, summed over the images n0 <= n < n1:
   x (N, C, H, W) at group offset, dout (N, F, HO, WO) at group offset (image strides
   xs = C*H*W and ds = F*HO*WO), dw (Fg, Cg, KH, KW) accumulated (+=). */
static int FN(gconv_backward_filter)(const T *x, const T *dout, T *dwt, T *db, int n_img,
                                     long xs, long ds, int Cg, int Fg, int H, int W, int KH,
                                     int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                                     int HO, int WO)
{
    const long Hp = (long)H + 2L * ph, Wp = (long)W + 2L * pw;
    MINIDL_CHECK(FN(windows_fit)(HO, WO, Hp, Wp, KH, KW, sh, sw, dh, dw));
    T *buf = (T *)malloc(sizeof(T) * (size_t)Cg * Hp * Wp);
    T *acc = (T *)malloc(sizeof(T) * (size_t)KW * WO);
    if (!buf || !acc) { free(buf); free(acc); return -1; }
    for (long n = 0; n < n_img; n++) {
        FN(pad_planes)(x + n * xs, buf, Cg, H, W, ph, pw);
        if (db)  /* the bias gradient, while these dout planes are read anyway */
            for (long f = 0; f < Fg; f++) {
                const T *d = dout + n * ds + f * HO * WO;
                T s = 0;
                MINIDL_OMP_SIMD_S
                for (long k = 0; k < (long)HO * WO; k++) s += d[k];
                db[f] += s;
            }
#ifdef MINIDL_VEC
        if (KH == 3 && KW == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1) {
            for (long f = 0; f < Fg; f++)
                for (long c = 0; c < Cg; c++)
                    FN(corr3x3s1_plane)(dwt + (f * Cg + c) * 9, dout + n * ds + f * HO * WO,
                                        buf + c * Hp * Wp, HO, WO, Wp);
            continue;
        }
#endif
        for (long f = 0; f < Fg; f++)
            for (long c = 0; c < Cg; c++)
                FN(plane_corr)(dwt + (f * Cg + c) * KH * KW, dout + n * ds + f * HO * WO,
                               buf + c * Hp * Wp, acc, HO, WO, Wp, KH, KW, sh, sw, dh, dw);
    }
    free(buf);
    free(acc);
    return 0;
}

/* Depthwise backward (C/G == 1), fused: one input channel of one image and its Fg filters.
   dx (H, W) = input gradient, dwp (Fg, KH, KW) and dbp (Fg) (or NULL) = this plane's share of
   the weight and bias gradients (overwritten; the caller sums the shares of all images).
   Each dout plane is read from memory once and feeds all three gradients while it is in cache
   (the separate kernels read it once for dx and again for dw/db). wflip is w flipped in both
   spatial axes (for the stride-1 gather form of dx). Returns 0, or -1 on allocation failure. */
MINIDL_CLONES
static int FN(dw_backward_fused)(const T *x, const T *dout, const T *w, const T *wflip,
                                 T *dx, T *dwp, T *dbp, int Fg, int H, int W, int KH, int KW,
                                 int sh, int sw, int ph, int pw, int dh, int dw, int HO, int WO)
{
    const long Hp = (long)H + 2L * ph, Wp = (long)W + 2L * pw, P = (long)HO * WO,
               KK = (long)KH * KW;
    const long qh = (long)dh * (KH - 1) - ph, qw = (long)dw * (KW - 1) - pw;
    MINIDL_CHECK(FN(windows_fit)(HO, WO, Hp, Wp, KH, KW, sh, sw, dh, dw));
    /* stride 1 with pad <= dilation*(K-1): dx is a convolution of dout padded by q with the
       flipped kernel (a gather, written once); otherwise dx is scattered into a padded buffer */
    const int gather = sh == 1 && sw == 1 && qh >= 0 && qw >= 0;
    const long Hd = gather ? HO + 2 * qh : Hp, Wd = gather ? WO + 2 * qw : Wp;
    T *xbuf = (T *)malloc(sizeof(T) * (size_t)Hp * Wp);
    T *dbuf = (T *)calloc((size_t)Hd * Wd, sizeof(T));
    T *acc = (T *)malloc(sizeof(T) * (size_t)KW * WO);
    if (!xbuf || !dbuf || !acc) { free(xbuf); free(dbuf); free(acc); return -1; }
    FN(pad_planes)(x, xbuf, 1, H, W, ph, pw);
    memset(dwp, 0, sizeof(T) * (size_t)Fg * KK);
    if (gather && Fg > 1) memset(dx, 0, sizeof(T) * (size_t)H * W);
    for (long f = 0; f < Fg; f++) {
        const T *d = dout + f * P;
        if (gather) {
            /* the border of dbuf stays zero from calloc; only its interior changes */
            for (long y = 0; y < HO; y++)
                memcpy(dbuf + (y + qh) * Wd + qw, d + y * WO, sizeof(T) * WO);
#ifdef MINIDL_VEC
            if (Fg == 1 && KH == 3 && KW == 3 && dh == 1 && dw == 1)
                FN(dw3x3s1_plane)(dx, dbuf, wflip, H, W, Wd);
            else
#endif
            {
                if (Fg == 1) memset(dx, 0, sizeof(T) * (size_t)H * W);
                FN(plane_taps)(dx, dbuf, wflip + f * KK, H, W, Wd, KH, KW, 1, 1, dh, dw);
            }
        } else {
            FN(plane_scatter)(dbuf, d, w + f * KK, HO, WO, Wd, KH, KW, sh, sw, dh, dw);
        }
#ifdef MINIDL_VEC
        if (KH == 3 && KW == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1)
            FN(corr3x3s1_plane)(dwp + f * KK, d, xbuf, HO, WO, Wp);
        else
#endif
            FN(plane_corr)(dwp + f * KK, d, xbuf, acc, HO, WO, Wp, KH, KW, sh, sw, dh, dw);
        if (dbp) {
            T s = 0;
            MINIDL_OMP_SIMD_S
            for (long k = 0; k < P; k++) s += d[k];
            dbp[f] = s;
        }
    }
    if (!gather)
        for (long y = 0; y < H; y++)
            memcpy(dx + y * W, dbuf + (y + ph) * Wd + pw, sizeof(T) * W);
    free(xbuf);
    free(dbuf);
    free(acc);
    return 0;
}
