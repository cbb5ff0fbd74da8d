"""CS231n ``cs231n/im2col.py``: im2col by index arrays, over minidl's im2col/col2im kernels.

The course builds its column matrix by fancy indexing: ``get_im2col_indices`` returns index
arrays (k, i, j) with ``x_padded[:, k, i, j]`` the columns of every image. That function is
part of the course's API, so it is kept as what it is, an index computation (its indices
are tested to pick exactly the elements minidl's im2col copies); ``im2col_indices`` and
``col2im_indices`` do not use it but call ``minidl._kernels.im2col`` / ``col2im`` (the
kernels every convolution in minidl runs) and only reorder the result into the course's
layout:

    minidl:  cols (N, C*KH*KW, HO*WO)
    course:  cols (C*KH*KW, HO*WO*N), column p*N + n for output position p of image n

Rows are ordered (c, kh, kw) in both. The course's versions divide sizes with ``/`` and fail
on Python 3 (``np.repeat`` of a float count); these use integer sizes.
"""
import numpy as np

from ... import _kernels
from ...layers._checks import window_output_size as _window_output_size

__all__ = ["get_im2col_indices", "im2col_indices", "col2im_indices"]


def _geometry(fn, x_shape, field_height, field_width, padding, stride):
    """(C, HO, WO) for a square stride and padding, checked as the course asserts: the
    stride must tile the padded input."""
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    _, C, H, W = (int(s) for s in x_shape)
    HO = _window_output_size(fn, "height", H, int(field_height), int(stride), int(padding))
    WO = _window_output_size(fn, "width", W, int(field_width), int(stride), int(padding))
    return C, HO, WO


def get_im2col_indices(x_shape, field_height, field_width, padding=1, stride=1):
    """Index arrays of the course's fancy-indexing im2col.

    x_shape (N, C, H, W) -> (k, i, j): k (C*KH*KW, 1) channel, i and j (C*KH*KW, HO*WO) row
    and column in the zero-padded input, so that ``x_padded[:, k, i, j]`` has shape
    (N, C*KH*KW, HO*WO), row (c, kh, kw), column the output position (as minidl's im2col).
    """
    C, HO, WO = _geometry("get_im2col_indices", x_shape, field_height, field_width, padding,
                          stride)
    fh, fw, s = int(field_height), int(field_width), int(stride)
    window_row = np.tile(np.repeat(np.arange(fh), fw), C)           # kh of each row
    window_col = np.tile(np.arange(fw), fh * C)                      # kw of each row
    out_row = s * np.repeat(np.arange(HO), WO)                       # top of each window
    out_col = s * np.tile(np.arange(WO), HO)                         # left of each window
    i = window_row[:, None] + out_row[None, :]
    j = window_col[:, None] + out_col[None, :]
    k = np.repeat(np.arange(C), fh * fw)[:, None]
    return k, i, j


def im2col_indices(x, field_height, field_width, padding=1, stride=1):
    """x (N, C, H, W) -> cols (C*KH*KW, HO*WO*N) in the course's layout (column p*N + n).

    Any numeric dtype; cols has x's dtype."""
    x = np.asarray(x)
    C, HO, WO = _geometry("im2col_indices", x.shape, field_height, field_width, padding,
                          stride)
    p, s = int(padding), int(stride)
    cols = _kernels.im2col(x, int(field_height), int(field_width), s, s, p, p, 1, 1, HO, WO)
    return cols.transpose(1, 2, 0).reshape(C * int(field_height) * int(field_width), -1)


def col2im_indices(cols, x_shape, field_height=3, field_width=3, padding=1, stride=1):
    """cols (C*KH*KW, HO*WO*N) in the course's layout -> x (N, C, H, W), summing the entries
    of overlapping windows (the gradient of im2col_indices). x has cols' dtype."""
    cols = np.asarray(cols)
    N = int(x_shape[0])
    C, HO, WO = _geometry("col2im_indices", x_shape, field_height, field_width, padding,
                          stride)
    rows = C * int(field_height) * int(field_width)
    if cols.shape != (rows, HO * WO * N):
        raise ValueError(f"col2im_indices: cols must have shape {(rows, HO * WO * N)} for "
                         f"x_shape {tuple(x_shape)}, got {cols.shape}")
    per_image = np.ascontiguousarray(cols.reshape(rows, HO * WO, N).transpose(2, 0, 1))
    p, s = int(padding), int(stride)
    return _kernels.col2im(per_image, tuple(int(v) for v in x_shape), int(field_height),
                           int(field_width), s, s, p, p, 1, 1, HO, WO)
