# cython: language_level=3
"""im2col / col2im for NCHW images, any stride, padding and dilation (float32 and float64).

Column layout, per image: cols[n, (c, i, j), (y, x)] = x[n, c, y*sh - ph + i*dh, x*sw - pw + j*dw]
(zero where that position falls in the padding), i.e. a C-contiguous array of shape
(N, C*KH*KW, HO*WO). A convolution's forward is then W(F, C*KH*KW) @ cols[n] for each image.

The Python wrappers in ``minidl._kernels`` validate shapes, dtypes and contiguity; the
functions here trust them and cannot read or write out of bounds for valid arguments.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double

cdef extern from "_openmp_helpers.h":
    int minidl_openmp_enabled() nogil
    int minidl_omp_max_threads() nogil
    void minidl_omp_set_threads(int n) nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(minidl_openmp_enabled())


def omp_max_threads():
    """The number of threads an OpenMP parallel region would use now."""
    return minidl_omp_max_threads()


def im2col(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           int ho, int wo):
    """Fill cols (N, C*KH*KW, HO*WO) from x (N, C, H, W). Parallel over (image, channel)."""
    cdef Py_ssize_t n_img = x.shape[0], n_ch = x.shape[1]
    cdef Py_ssize_t nc
    with nogil:
        for nc in prange(n_img * n_ch, schedule="static"):
            _im2col_channel(x, cols, nc // n_ch, nc % n_ch,
                            kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


cdef inline void _im2col_channel(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
                                 Py_ssize_t n, Py_ssize_t c,
                                 int kh, int kw, int sh, int sw, int ph, int pw,
                                 int dh, int dw, int ho, int wo) noexcept nogil:
    cdef Py_ssize_t h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t i, j, y, xo, iy, ix, row, x_lo, x_hi
    for i in range(kh):
        for j in range(kw):
            row = (c * kh + i) * kw + j
            # output columns xo whose input column xo*sw - pw + j*dw lies in [0, w)
            x_lo = _ceil_div(pw - j * dw, sw)
            if x_lo < 0:
                x_lo = 0
            x_hi = _ceil_div(w + pw - j * dw, sw)
            if x_hi > wo:
                x_hi = wo
            if x_hi < x_lo:
                x_hi = x_lo
            for y in range(ho):
                iy = y * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    for xo in range(wo):
                        cols[n, row, y * wo + xo] = 0
                    continue
                for xo in range(x_lo):
                    cols[n, row, y * wo + xo] = 0
                for xo in range(x_lo, x_hi):
                    ix = xo * sw - pw + j * dw
                    cols[n, row, y * wo + xo] = x[n, c, iy, ix]
                for xo in range(x_hi, wo):
                    cols[n, row, y * wo + xo] = 0


def col2im(const floating[:, :, ::1] cols, floating[:, :, :, ::1] dx,
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           int ho, int wo):
    """Scatter-add cols (N, C*KH*KW, HO*WO) into dx (N, C, H, W), which must start zeroed.

    Each (image, channel) pair owns its slice of dx, so the parallel loop never races.
    """
    cdef Py_ssize_t n_img = dx.shape[0], n_ch = dx.shape[1]
    cdef Py_ssize_t nc
    with nogil:
        for nc in prange(n_img * n_ch, schedule="static"):
            _col2im_channel(cols, dx, nc // n_ch, nc % n_ch,
                            kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


cdef inline void _col2im_channel(const floating[:, :, ::1] cols, floating[:, :, :, ::1] dx,
                                 Py_ssize_t n, Py_ssize_t c,
                                 int kh, int kw, int sh, int sw, int ph, int pw,
                                 int dh, int dw, int ho, int wo) noexcept nogil:
    cdef Py_ssize_t h = dx.shape[2], w = dx.shape[3]
    cdef Py_ssize_t i, j, y, xo, iy, ix, row, x_lo, x_hi
    for i in range(kh):
        for j in range(kw):
            row = (c * kh + i) * kw + j
            x_lo = _ceil_div(pw - j * dw, sw)
            if x_lo < 0:
                x_lo = 0
            x_hi = _ceil_div(w + pw - j * dw, sw)
            if x_hi > wo:
                x_hi = wo
            for y in range(ho):
                iy = y * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                for xo in range(x_lo, x_hi):
                    ix = xo * sw - pw + j * dw
                    dx[n, c, iy, ix] += cols[n, row, y * wo + xo]


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # ceil(a / b) for b > 0 and any sign of a (C division truncates toward zero)
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


def set_omp_threads(int n):
    """omp_set_num_threads(n) in the OpenMP runtime these kernels were linked with."""
    minidl_omp_set_threads(n)
