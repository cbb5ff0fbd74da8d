/* One place that knows whether OpenMP is compiled in: the kernels' prange loops compile to
   plain loops without it (Cython guards its pragmas with _OPENMP), and these helpers answer
   "serial" instead of failing to link. */
#ifndef MINIDL_OPENMP_HELPERS_H
#define MINIDL_OPENMP_HELPERS_H
#ifdef _OPENMP
#include <omp.h>
static inline int minidl_openmp_enabled(void) { return 1; }
static inline int minidl_omp_max_threads(void) { return omp_get_max_threads(); }
static inline void minidl_omp_set_threads(int n) { omp_set_num_threads(n); }
#else
static inline int minidl_openmp_enabled(void) { return 0; }
static inline int minidl_omp_max_threads(void) { return 1; }
static inline void minidl_omp_set_threads(int n) { (void)n; }
#endif
#endif
