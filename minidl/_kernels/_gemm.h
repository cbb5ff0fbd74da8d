/* minidl's own GEMM for float (_f) and double (_d): packed panels, register-blocked
   micro-kernels per ISA level, chosen once per process (see _simd.h's minidl_isa_level).

   The kernels (in _gemm_impl.h) are compiled three times per type: for AVX-512
   (MINIDL_TARGET_V4), AVX2+FMA (MINIDL_TARGET_V3) and the baseline, each with the register
   block that fits its registers; the public functions below call the CPU's level. Nothing
   here allocates, starts threads or calls the BLAS: the caller passes the packing workspace
   (one per thread) and runs the calls inside its own OpenMP loops. */
#ifndef MINIDL_GEMM_H
#define MINIDL_GEMM_H
#include "_simd.h"

#if defined(__GNUC__) && !defined(__clang__)
/* keep short copy loops inline instead of turning them into memcpy/memset calls */
#define GEMM_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define GEMM_NO_LIBCALLS
#endif
#if defined(__GNUC__)
#define GEMM_UNROLL _Pragma("GCC unroll 32")
#define GEMM_INLINE static inline __attribute__((always_inline))
#else
#define GEMM_UNROLL
#define GEMM_INLINE static inline
#endif

/* Packed blocks start on 64-byte boundaries (a cache line, an AVX-512 vector). */
#define MINIDL_GEMM_ALIGN 64
static inline long minidl_gemm_round(long n) { return (n + 15) / 16 * 16; }
static inline void *minidl_gemm_align(void *p)
{
    return (void *)(((size_t)p + MINIDL_GEMM_ALIGN - 1) & ~(size_t)(MINIDL_GEMM_ALIGN - 1));
}

/* The output columns xo in [0, wo) whose input column xo*sw + ix0 lies in [0, w), as
   [x_lo, x_hi) with 0 <= x_lo <= x_hi <= wo for every geometry (empty when the tap reads
   only padding). */
static inline void minidl_gemm_tap_range(long ix0, long sw, long w, long wo, long *x_lo,
                                         long *x_hi)
{
    long lo = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
    long hi = w - ix0 <= 0 ? 0 : (w - ix0 + sw - 1) / sw;
    lo = lo > wo ? wo : lo;
    hi = hi > wo ? wo : (hi < lo ? lo : hi);
    *x_lo = lo;
    *x_hi = hi;
}

/* Blocking, measured on a 2-core AMD EPYC (Zen 5: 48 KB L1d, 1 MB L2 per core) with AVX-512:
   KC rows of a B panel (KC x NR) fill about two thirds of L1, an MC x KC block of A about a
   quarter of L2, and NC columns of B keep its KC x NC block within L2 as well. */
#ifndef GEMM_F_V4_MR
#define GEMM_F_V4_MR 8
#endif
#ifndef GEMM_F_V4_NV
#define GEMM_F_V4_NV 2
#endif
#ifndef GEMM_F_V4_KC
#define GEMM_F_V4_KC 256
#endif
#ifndef GEMM_F_V4_MC
#define GEMM_F_V4_MC 128
#endif
#ifndef GEMM_F_V4_NC
#define GEMM_F_V4_NC 1024
#endif

/* A level's register block and cache blocks (elements). */
typedef struct {
    int mr, nr, kc, mc, nc;
} minidl_gemm_blocking;

static int minidl_gemm_level_cache = -1;
/* The ISA level the GEMM runs (4: AVX-512, 3: AVX2+FMA, 0: baseline). */
static inline int minidl_gemm_level(void)
{
    if (minidl_gemm_level_cache < 0)
        minidl_gemm_level_cache = minidl_isa_level();
    return minidl_gemm_level_cache;
}

/* ---------------------------------------------------------------- float */
#define T float
#define FN(name) name##_f
#define GV4(name) name##_f_v4
#define GV3(name) name##_f_v3
#define GBASE(name) name##_f_base
#define GEMM_IT int  /* the integer of T's width (shuffle masks) */
#ifdef MINIDL_ISA_DISPATCH
#define GK(name) name##_f_v4
#define GEMM_TARGET MINIDL_TARGET_V4
#define GEMM_W 16
#define GEMM_MR GEMM_F_V4_MR
#define GEMM_NV GEMM_F_V4_NV
#define GEMM_KC GEMM_F_V4_KC
#define GEMM_MC GEMM_F_V4_MC
#define GEMM_NC GEMM_F_V4_NC
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#define GK(name) name##_f_v3
#define GEMM_TARGET MINIDL_TARGET_V3
#define GEMM_W 8
#define GEMM_MR 6
#define GEMM_NV 2
#define GEMM_KC 256
#define GEMM_MC 120
#define GEMM_NC 1024
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#endif
#define GK(name) name##_f_base
#define GEMM_TARGET
#ifdef MINIDL_VEC
#define GEMM_W 4
#define GEMM_NV 2
#else
#define GEMM_W 1
#define GEMM_NV 4
#endif
#define GEMM_MR 4
#define GEMM_KC 256
#define GEMM_MC 128
#define GEMM_NC 1024
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#include "_gemm_impl.h"  /* the public functions of this type */
#undef T
#undef FN
#undef GV4
#undef GV3
#undef GBASE
#undef GEMM_IT

/* ---------------------------------------------------------------- double */
#define T double
#define FN(name) name##_d
#define GV4(name) name##_d_v4
#define GV3(name) name##_d_v3
#define GBASE(name) name##_d_base
#define GEMM_IT long long
#ifdef MINIDL_ISA_DISPATCH
#define GK(name) name##_d_v4
#define GEMM_TARGET MINIDL_TARGET_V4
#define GEMM_W 8
#define GEMM_MR 8
#define GEMM_NV 2
#define GEMM_KC 256
#define GEMM_MC 128
#define GEMM_NC 512
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#define GK(name) name##_d_v3
#define GEMM_TARGET MINIDL_TARGET_V3
#define GEMM_W 4
#define GEMM_MR 6
#define GEMM_NV 2
#define GEMM_KC 256
#define GEMM_MC 120
#define GEMM_NC 512
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#endif
#define GK(name) name##_d_base
#define GEMM_TARGET
#ifdef MINIDL_VEC
#define GEMM_W 2
#define GEMM_NV 2
#else
#define GEMM_W 1
#define GEMM_NV 4
#endif
#define GEMM_MR 4
#define GEMM_KC 256
#define GEMM_MC 128
#define GEMM_NC 512
#include "_gemm_impl.h"
#undef GK
#undef GEMM_TARGET
#undef GEMM_W
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#include "_gemm_impl.h"  /* the public functions of this type */
#undef T
#undef FN
#undef GV4
#undef GV3
#undef GBASE
#undef GEMM_IT

#endif
