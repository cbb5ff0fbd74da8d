/* What every C kernel header shares: the SIMD clone attribute, the OpenMP simd reductions
   and the vector types. A topic header (e.g. _pool.h) includes this one and compiles its
   ``*_impl.h`` twice, for float (suffix _f) and double (suffix _d).

   The hot loops live in one header per topic (``_direct_conv_impl.h``, ``_pool_impl.h``,
   ``_norm_impl.h``, ...), included by that topic's .pyx through its ``_<topic>.h``. Every
   function works on one (image, group), plane or channel and is called from a Cython prange
   loop, so none of them starts threads or calls the BLAS. The callers validate all sizes in
   Python first (into a plan); the loops clamp what they index and debug builds assert it
   (_checks.h).

   MINIDL_CLONES asks GCC (x86-64 Linux) for AVX2/FMA and AVX-512 clones of a function plus a
   baseline one, picked once at load time from the CPU: the build itself stays portable
   (no -march=native) and still runs the wide vectors where the machine has them. The clones
   are named by ISA level (x86-64-v3: AVX2+FMA, x86-64-v4: AVX-512), which GCC's resolver
   checks by CPU features; clones named after CPU models ("arch=haswell") are picked only on
   those exact models, and a virtual machine's CPU is often none of them. */
#ifndef MINIDL_SIMD_H
#define MINIDL_SIMD_H
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "_checks.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(MINIDL_NO_CLONES)
#if __GNUC__ >= 12
#define MINIDL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else  /* older GCCs know no ISA-level names here: dispatch on single features instead */
#define MINIDL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define MINIDL_CLONES
#endif

/* Functions whose code differs by vector width (the GEMM micro-kernels: their register
   blocking follows the register count and width) are written once per ISA level instead:
   MINIDL_TARGET_V4 / MINIDL_TARGET_V3 compile one for AVX-512 / AVX2+FMA, and
   minidl_isa_level() (4, 3 or 0) says which of them this CPU runs: the same levels and the
   same load-time choice as MINIDL_CLONES, made by the caller through a function table. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(MINIDL_NO_CLONES)
#define MINIDL_ISA_DISPATCH 1
#if __GNUC__ >= 12
#define MINIDL_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define MINIDL_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
static inline int minidl_isa_level(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") ? 4 : __builtin_cpu_supports("x86-64-v3") ? 3 : 0;
}
#else
#define MINIDL_TARGET_V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define MINIDL_TARGET_V3 __attribute__((target("avx2,fma")))
static inline int minidl_isa_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        return 4;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 3 : 0;
}
#endif
#else
static inline int minidl_isa_level(void) { return 0; }
#endif

/* Reductions vectorise only when the compiler may reorder the sum: OpenMP's simd pragma
   says so for that one loop (no -ffast-math anywhere). */
#if defined(_OPENMP)
#define MINIDL_OMP_SIMD_S _Pragma("omp simd reduction(+:s)")
#define MINIDL_OMP_SIMD_S2 _Pragma("omp simd reduction(+:s,s2)")
#else
#define MINIDL_OMP_SIMD_S
#define MINIDL_OMP_SIMD_S2
#endif

/* 32-byte vectors through GCC/clang vector extensions (register-blocked 3x3 micro-kernels);
   other compilers keep the plain loops. */
#if defined(__GNUC__) && !defined(MINIDL_NO_VECTOR_EXT)
#define MINIDL_VEC 1
typedef float minidl_vf __attribute__((vector_size(32)));
typedef double minidl_vd __attribute__((vector_size(32)));
#endif

#endif
