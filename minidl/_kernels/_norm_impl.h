/* Instantiated by _norm.h with T = float / double, VT the matching vector type and
   FN(name) = name_f / name_d (see _simd.h). */

/* ---- spatial batch norm, one channel (its N planes of M = H*W values, image stride xs) ---- */

/* Pass 1: mean and biased variance of one channel, accumulated in double around a shift
   (the channel's first value) so that float64 keeps its precision. */
MINIDL_CLONES
static void FN(bn_stats)(const T *x, int N, long M, long xs, double *mean, double *var)
{
    const double shift = (double)x[0];
    const T sh = (T)shift;
    double s_tot = 0, s2_tot = 0;
    for (long n = 0; n < N; n++) {
        const T *p = x + n * xs;
        T s = 0, s2 = 0;   /* per-plane partial sums in T, vectorised */
        MINIDL_OMP_SIMD_S2
        for (long k = 0; k < M; k++) {
            const T v = p[k] - sh;
            s += v;
            s2 += v * v;
        }
        s_tot += s;
        s2_tot += s2;
    }
    const double cnt = (double)N * (double)M;
    const double m = s_tot / cnt;
    double v = s2_tot / cnt - m * m;
    *mean = shift + m;
    *var = v > 0 ? v : 0;
}

/* Pass 2: out = (x - mean) * a + beta with a = gamma * istd. Centring first (rather than
   folding mean into one offset) keeps float32 accurate when |mean| >> std; the mean comes as
   a T pair mhi + mlo (its rounding and the remainder), so x - mhi is exact for values near
   the mean and the remainder is not lost either. */
MINIDL_CLONES
static void FN(bn_apply)(const T *x, T *out, int N, long M, long xs, T mhi, T mlo, T a, T beta)
{
    for (long n = 0; n < N; n++) {
        const T *restrict p = x + n * xs;
        T *restrict q = out + n * xs;
        for (long k = 0; k < M; k++)
            q[k] = ((p[k] - mhi) - mlo) * a + beta;
    }
}

/* Backward pass 1: sum(dout) and sum(dout * (x - mean)) for one channel. */
MINIDL_CLONES
static void FN(bn_grad_sums)(const T *x, const T *dout, int N, long M, long xs, T mhi,
                             T mlo, double *sum_d, double *sum_dx)
{
    double s_tot = 0, s2_tot = 0;
    for (long n = 0; n < N; n++) {
        const T *p = x + n * xs, *d = dout + n * xs;
        T s = 0, s2 = 0;
        MINIDL_OMP_SIMD_S2
        for (long k = 0; k < M; k++) {
            s += d[k];
            s2 += d[k] * ((p[k] - mhi) - mlo);
        }
        s_tot += s;
        s2_tot += s2;
    }
    *sum_d = s_tot;
    *sum_dx = s2_tot;
}

/* Backward pass 2: dx = a * dout + b * (x - mean) + c (the closed form, folded per channel;
   centred like bn_apply). */
MINIDL_CLONES
static void FN(bn_grad_apply)(const T *x, const T *dout, T *dx, int N, long M, long xs,
                              T mhi, T mlo, T a, T b, T c)
{
    for (long n = 0; n < N; n++) {
        const T *restrict p = x + n * xs, *restrict d = dout + n * xs;
        T *restrict q = dx + n * xs;
        for (long k = 0; k < M; k++)
            q[k] = a * d[k] + b * ((p[k] - mhi) - mlo) + c;
    }
}
