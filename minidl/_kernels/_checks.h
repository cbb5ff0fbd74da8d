/* The kernels' debug assertion mode. Their loops index raw pointers, which Cython's
   boundscheck cannot see; MINIDL_CHECK(cond) states the bound a loop relies on. Normal builds
   compile it away; MINIDL_BOUNDSCHECK=1 or MINIDL_SANITIZE=address builds (setup.py) define
   MINIDL_DEBUG_CHECKS, and a false condition then prints itself and aborts, so a geometry the
   Python checks let through but a loop cannot take is caught at the loop, not as corruption
   later. */
#ifndef MINIDL_CHECKS_H
#define MINIDL_CHECKS_H
#ifdef MINIDL_DEBUG_CHECKS
#include <stdio.h>
#include <stdlib.h>
#define MINIDL_CHECK(cond)                                                                  \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "minidl kernel check failed: %s (%s:%d)\n", #cond, __FILE__,   \
                    __LINE__);                                                              \
            abort();                                                                        \
        }                                                                                   \
    } while (0)
static inline int minidl_debug_checks(void) { return 1; }
#else
#define MINIDL_CHECK(cond) ((void)0)
static inline int minidl_debug_checks(void) { return 0; }
#endif
#endif
