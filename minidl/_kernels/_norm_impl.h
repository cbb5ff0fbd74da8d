/* Instantiated by _norm.h with T = float / double, VT the matching vector type and
   FN(name) = name_f / name_d (see _simd.h). */

/* ---- spatial batch norm, one channel (its N planes of M = H*W values, image stride xs) ----

   Each loop comes in two versions that differ only in a ReLU after the normalisation: the
   plain one (SpatialBatchNorm) and the fused one (SpatialBatchNormReLU, out = max(bn(x), 0)).
   Both are one always-inline body with a constant `relu` argument, so there is one copy of
   each formula and the compiler drops the dead branch from each clone. */

/* The normalised value of one element: centred on the mean pair, scaled, shifted. Every loop
   computes it with this one expression, so the fused backward's ReLU mask, recomputed from x,
   is bit for bit the forward's (out > 0). */
static inline T FN(bn_value)(T x, T mhi, T mlo, T a, T beta)
{
    return ((x - mhi) - mlo) * a + beta;
}

/* max(v, 0) exactly as np.maximum(v, 0) (-0.0 -> +0.0, NaN stays NaN), and the gradient's
   mask as 1 or 0 (so dout * mask is NumPy's dout * (v > 0), NaN and infinities included). */
static inline T FN(relu)(T v) { return v <= 0 ? (T)0 : v; }
static inline T FN(relu_mask)(T v) { return v > 0 ? (T)1 : (T)0; }

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

/* Pass 2: out = (x - mean) * a + beta with a = gamma * istd [then max(., 0)]. Centring first
   (rather than folding mean into one offset) keeps float32 accurate when |mean| >> std; the
   mean comes as a T pair mhi + mlo (its rounding and the remainder), so x - mhi is exact for
   values near the mean and the remainder is not lost either. */
MINIDL_ALWAYS_INLINE
static inline void FN(bn_apply_body)(const T *x, T *out, int N, long M, long xs, T mhi, T mlo,
                                     T a, T beta, const int relu)
{
    for (long n = 0; n < N; n++) {
        const T *restrict p = x + n * xs;
        T *restrict q = out + n * xs;
        for (long k = 0; k < M; k++) {
            const T v = FN(bn_value)(p[k], mhi, mlo, a, beta);
            q[k] = relu ? FN(relu)(v) : v;
        }
    }
}

MINIDL_CLONES
static void FN(bn_apply)(const T *x, T *out, int N, long M, long xs, T mhi, T mlo, T a, T beta)
{
    FN(bn_apply_body)(x, out, N, M, xs, mhi, mlo, a, beta, 0);
}

MINIDL_CLONES
static void FN(bn_apply_relu)(const T *x, T *out, int N, long M, long xs, T mhi, T mlo, T a,
                              T beta)
{
    FN(bn_apply_body)(x, out, N, M, xs, mhi, mlo, a, beta, 1);
}

/* Backward pass 1: sum(g) and sum(g * (x - mean)) for one channel, where g is dout, or with
   the ReLU fused, dout * (bn(x) > 0): the mask recomputed from x with the forward's scale a
   and shift beta (x is read here anyway; reading the saved output instead would add a
   stream). */
MINIDL_ALWAYS_INLINE
static inline void FN(bn_grad_sums_body)(const T *x, const T *dout, int N, long M, long xs,
                                         T mhi, T mlo, T a, T beta, double *sum_d,
                                         double *sum_dx, const int relu)
{
    double s_tot = 0, s2_tot = 0;
    for (long n = 0; n < N; n++) {
        const T *p = x + n * xs, *d = dout + n * xs;
        T s = 0, s2 = 0;
        MINIDL_OMP_SIMD_S2
        for (long k = 0; k < M; k++) {
            const T g = relu ? d[k] * FN(relu_mask)(FN(bn_value)(p[k], mhi, mlo, a, beta))
                             : d[k];
            s += g;
            s2 += g * ((p[k] - mhi) - mlo);
        }
        s_tot += s;
        s2_tot += s2;
    }
    *sum_d = s_tot;
    *sum_dx = s2_tot;
}

MINIDL_CLONES
static void FN(bn_grad_sums)(const T *x, const T *dout, int N, long M, long xs, T mhi,
                             T mlo, double *sum_d, double *sum_dx)
{
    FN(bn_grad_sums_body)(x, dout, N, M, xs, mhi, mlo, 0, 0, sum_d, sum_dx, 0);
}

MINIDL_CLONES
static void FN(bn_grad_sums_relu)(const T *x, const T *dout, int N, long M, long xs, T mhi,
                                  T mlo, T a, T beta, double *sum_d, double *sum_dx)
{
    FN(bn_grad_sums_body)(x, dout, N, M, xs, mhi, mlo, a, beta, sum_d, sum_dx, 1);
}

/* Backward pass 2: dx = ga * g + gb * (x - mean) + gc (the closed form, folded per channel;
   centred like bn_apply), g as in pass 1. */
MINIDL_ALWAYS_INLINE
static inline void FN(bn_grad_apply_body)(const T *x, const T *dout, T *dx, int N, long M,
                                          long xs, T mhi, T mlo, T a, T beta, T ga, T gb, T gc,
                                          const int relu)
{
    for (long n = 0; n < N; n++) {
        const T *restrict p = x + n * xs, *restrict d = dout + n * xs;
        T *restrict q = dx + n * xs;
        for (long k = 0; k < M; k++) {
            const T g = relu ? d[k] * FN(relu_mask)(FN(bn_value)(p[k], mhi, mlo, a, beta))
                             : d[k];
            q[k] = ga * g + gb * ((p[k] - mhi) - mlo) + gc;
        }
    }
}

MINIDL_CLONES
static void FN(bn_grad_apply)(const T *x, const T *dout, T *dx, int N, long M, long xs,
                              T mhi, T mlo, T ga, T gb, T gc)
{
    FN(bn_grad_apply_body)(x, dout, dx, N, M, xs, mhi, mlo, 0, 0, ga, gb, gc, 0);
}

MINIDL_CLONES
static void FN(bn_grad_apply_relu)(const T *x, const T *dout, T *dx, int N, long M, long xs,
                                   T mhi, T mlo, T a, T beta, T ga, T gb, T gc)
{
    FN(bn_grad_apply_body)(x, dout, dx, N, M, xs, mhi, mlo, a, beta, ga, gb, gc, 1);
}

/* Evaluation mode (running statistics, constants of the graph) with the ReLU fused: the
   forward is bn_apply_relu; the backward is one pass, g = dout * (bn(x) > 0), dx = a * g,
   with sum(g) and sum(g * (x - mean)) for dbeta and dgamma on the way. */
MINIDL_CLONES
static void FN(bn_relu_grad_eval)(const T *x, const T *dout, T *dx, int N, long M, long xs,
                                  T mhi, T mlo, T a, T beta, double *sum_d, double *sum_dx)
{
    double s_tot = 0, s2_tot = 0;
    for (long n = 0; n < N; n++) {
        const T *restrict p = x + n * xs, *restrict d = dout + n * xs;
        T *restrict q = dx + n * xs;
        T s = 0, s2 = 0;
        MINIDL_OMP_SIMD_S2
        for (long k = 0; k < M; k++) {
            const T g = d[k] * FN(relu_mask)(FN(bn_value)(p[k], mhi, mlo, a, beta));
            q[k] = a * g;
            s += g;
            s2 += g * ((p[k] - mhi) - mlo);
        }
        s_tot += s;
        s2_tot += s2;
    }
    *sum_d = s_tot;
    *sum_dx = s2_tot;
}
