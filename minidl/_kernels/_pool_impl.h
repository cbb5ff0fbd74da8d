/* Instantiated by _pool.h with T = float / double, VT the matching vector type and
   FN(name) = name_f / name_d (see _simd.h). */

/* ---- pooling, one (H, W) plane at a time ---- */

/* Max pooling forward: out (HO, WO) and the flat index (into the plane) of each maximum.
   Windows are clipped to the input (padding never wins); the first maximum wins ties. */
static void FN(maxpool_forward)(const T *x, T *out, int *idx, int H, int W, int KH, int KW,
                                int sh, int sw, int ph, int pw, int HO, int WO)
{
    /* Window rows [y0, y1) and columns [x0, x1) are clipped to the plane, so every read is
       inside it. A window entirely in the padding (the Python checks reject geometries that
       have one) gives -inf and index -1, which maxpool_backward skips. */
    for (long y = 0; y < HO; y++) {
        long y0 = y * sh - ph, y1 = y0 + KH;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (long xo = 0; xo < WO; xo++) {
            long x0 = xo * sw - pw, x1 = x0 + KW;
            if (x0 < 0) x0 = 0;
            if (x1 > W) x1 = W;
            MINIDL_CHECK(y0 < y1 && x0 < x1);
            if (y0 >= y1 || x0 >= x1) {
                out[y * WO + xo] = -INFINITY;
                idx[y * WO + xo] = -1;
                continue;
            }
            long best = y0 * W + x0;
            T m = x[best];
            for (long iy = y0; iy < y1; iy++) {
                const T *r = x + iy * W;
                for (long ix = x0; ix < x1; ix++)
                    if (r[ix] > m) { m = r[ix]; best = iy * W + ix; }
            }
            out[y * WO + xo] = m;
            idx[y * WO + xo] = (int)best;  /* < H*W < 2^31, checked in Python */
        }
    }
}

/* Max pooling backward: each output's gradient goes to the input at its stored index. */
static void FN(maxpool_backward)(const T *dout, const int *idx, T *dx, int H, int W, int HO,
                                 int WO)
{
    const long HW = (long)H * W;
    memset(dx, 0, sizeof(T) * (size_t)HW);
    for (long k = 0; k < (long)HO * WO; k++) {
        /* positions outside the plane (none from maxpool_forward; the Python wrapper also
           checks) are skipped rather than written */
        MINIDL_CHECK(idx[k] >= 0 && idx[k] < HW);
        if (idx[k] >= 0 && idx[k] < HW)
            dx[idx[k]] += dout[k];
    }
}

/* Average pooling forward, zero padding counted in the divisor (count_include_pad). */
static void FN(avgpool_forward)(const T *x, T *out, int H, int W, int KH, int KW, int sh,
                                int sw, int ph, int pw, int HO, int WO)
{
    /* windows clipped to the plane (as in maxpool_forward); the divisor counts padding */
    const T scale = (T)1 / ((T)KH * (T)KW);
    for (long y = 0; y < HO; y++) {
        long y0 = y * sh - ph, y1 = y0 + KH;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (long xo = 0; xo < WO; xo++) {
            long x0 = xo * sw - pw, x1 = x0 + KW;
            if (x0 < 0) x0 = 0;
            if (x1 > W) x1 = W;
            T s = 0;
            for (long iy = y0; iy < y1; iy++)
                for (long ix = x0; ix < x1; ix++)
                    s += x[iy * W + ix];
            out[y * WO + xo] = s * scale;
        }
    }
}

static void FN(avgpool_backward)(const T *dout, T *dx, int H, int W, int KH, int KW, int sh,
                                 int sw, int ph, int pw, int HO, int WO)
{
    const T scale = (T)1 / ((T)KH * (T)KW);
    memset(dx, 0, sizeof(T) * (size_t)H * W);
    for (long y = 0; y < HO; y++) {
        long y0 = y * sh - ph, y1 = y0 + KH;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (long xo = 0; xo < WO; xo++) {
            long x0 = xo * sw - pw, x1 = x0 + KW;
            if (x0 < 0) x0 = 0;
            if (x1 > W) x1 = W;
            const T g = dout[y * WO + xo] * scale;
            for (long iy = y0; iy < y1; iy++)
                for (long ix = x0; ix < x1; ix++)
                    dx[iy * W + ix] += g;
        }
    }
}
