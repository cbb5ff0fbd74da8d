/* The C loops of spatial batch norm, for float (_f) and double (_d). */
#ifndef MINIDL_NORM_H
#define MINIDL_NORM_H
#include "_simd.h"

/* A body shared by a plain and a fused kernel is inlined into each (and into each of their
   SIMD clones), with its `relu` switch a constant there. */
#if defined(__GNUC__)
#define MINIDL_ALWAYS_INLINE __attribute__((always_inline))
#else  /* other compilers inline a small static function with constant arguments anyway */
#define MINIDL_ALWAYS_INLINE
#endif

#define T float
#define VT minidl_vf
#define FN(name) name##_f
#include "_norm_impl.h"
#undef T
#undef VT
#undef FN

#define T double
#define VT minidl_vd
#define FN(name) name##_d
#include "_norm_impl.h"
#undef T
#undef VT
#undef FN
#endif
