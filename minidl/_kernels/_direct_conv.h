/* The C loops of grouped and depthwise convolution without im2col, for float (_f) and double (_d). */
#ifndef MINIDL_DIRECT_CONV_H
#define MINIDL_DIRECT_CONV_H
#include "_simd.h"

#define T float
#define VT minidl_vf
#define FN(name) name##_f
#include "_direct_conv_impl.h"
#undef T
#undef VT
#undef FN

#define T double
#define VT minidl_vd
#define FN(name) name##_d
#include "_direct_conv_impl.h"
#undef T
#undef VT
#undef FN
#endif
