/* The C loops of max and average pooling, for float (_f) and double (_d). */
#ifndef MINIDL_POOL_H
#define MINIDL_POOL_H
#include "_simd.h"

#define T float
#define VT minidl_vf
#define FN(name) name##_f
#include "_pool_impl.h"
#undef T
#undef VT
#undef FN

#define T double
#define VT minidl_vd
#define FN(name) name##_d
#include "_pool_impl.h"
#undef T
#undef VT
#undef FN
#endif
