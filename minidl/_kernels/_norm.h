/* The C loops of spatial batch norm, for float (_f) and double (_d). */
#ifndef MINIDL_NORM_H
#define MINIDL_NORM_H
#include "_simd.h"

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
