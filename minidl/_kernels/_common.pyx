# cython: language_level=3
"""The state every kernel module shares: OpenMP's thread count, the small-work threshold,
whether the debug assertions are compiled in, and the BLAS ?gemm (see _common.pxd)."""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

# Below this much work (multiply-adds or elements touched) a loop runs on the calling thread:
# waking a team of OpenMP threads costs microseconds on a quiet machine and milliseconds on a
# busy one. Its default is minidl._kernels.PARALLEL_MIN_WORK, set at import.
cdef long _min_parallel_work = 0

cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(minidl_openmp_enabled())


def omp_max_threads():
    """The number of threads an OpenMP parallel region would use now."""
    return minidl_omp_max_threads()


def set_omp_threads(int n):
    """omp_set_num_threads(n) in the OpenMP runtime these kernels were linked with."""
    minidl_omp_set_threads(n)


def debug_checks():
    """True when the kernels were built with their index assertions (MINIDL_BOUNDSCHECK=1 or
    MINIDL_SANITIZE=address; see setup.py)."""
    return bool(minidl_debug_checks())


def set_parallel_min_work(long n):
    """Loops with less work than n run serially (0: always parallel, for tests)."""
    global _min_parallel_work
    _min_parallel_work = n


def get_parallel_min_work():
    """The threshold of set_parallel_min_work."""
    return _min_parallel_work


cdef int threads_for(long work) noexcept nogil:
    return minidl_omp_max_threads() if work >= _min_parallel_work else 1


cdef bint parallel_for(long work) noexcept nogil:
    return work >= _min_parallel_work


def set_blas(sgemm_capsule, dgemm_capsule):
    """Install the BLAS ?gemm functions (PyCapsules from scipy.linalg.cython_blas.__pyx_capi__)."""
    global _sgemm, _dgemm
    _sgemm = <sgemm_t>PyCapsule_GetPointer(sgemm_capsule, PyCapsule_GetName(sgemm_capsule))
    _dgemm = <dgemm_t>PyCapsule_GetPointer(dgemm_capsule, PyCapsule_GetName(dgemm_capsule))


cdef sgemm_t blas_sgemm() noexcept nogil:
    return _sgemm


cdef dgemm_t blas_dgemm() noexcept nogil:
    return _dgemm
