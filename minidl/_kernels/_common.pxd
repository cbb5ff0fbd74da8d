# cython: language_level=3
"""What every kernel module shares (cimported): the float32/float64 fused type, the OpenMP
helpers, the debug assertions, the small-work threshold and the BLAS ?gemm installed at run
time. The threshold and the GEMM pointers live once, in _common.pyx; the other modules read
them through the functions declared here."""

ctypedef fused floating:
    float
    double

cdef extern from "_openmp_helpers.h" nogil:
    int minidl_openmp_enabled()
    int minidl_omp_max_threads()
    void minidl_omp_set_threads(int n)

cdef extern from "_checks.h" nogil:
    void MINIDL_CHECK(bint cond)
    int minidl_debug_checks()

# OpenMP threads for a loop of `work` multiply-adds or elements: 1 below the threshold set by
# set_parallel_min_work, else the runtime's current count.
cdef int threads_for(long work) noexcept nogil
# True when a loop of `work` should run threaded (for prange's use_threads_if).
cdef bint parallel_for(long work) noexcept nogil

ctypedef void (*sgemm_t)(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                         int *lda, float *b, int *ldb, float *beta, float *c, int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a,
                         int *lda, double *b, int *ldb, double *beta, double *c, int *ldc) noexcept nogil

cdef sgemm_t blas_sgemm() noexcept nogil
cdef dgemm_t blas_dgemm() noexcept nogil


cdef inline void gemm(char ta, char tb, int m, int n, int k, floating alpha, const floating *a,
                      int lda, const floating *b, int ldb, floating beta, floating *c,
                      int ldc) noexcept nogil:
    # row-major C (m x n) = alpha op(A) op(B) + beta C, as the column-major GEMM of the
    # transposes: C^T = op(B)^T op(A)^T (a row-major matrix is its transpose in column-major).
    # Single-threaded by contract: callers run it inside their own OpenMP loops and hold the
    # BLAS at one thread meanwhile (minidl._kernels._SingleThreadedBlas).
    if floating is float:
        blas_sgemm()(&tb, &ta, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta,
                     c, &ldc)
    else:
        blas_dgemm()(&tb, &ta, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda,
                     &beta, c, &ldc)
