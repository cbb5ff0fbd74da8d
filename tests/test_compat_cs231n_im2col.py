"""cs231n.im2col: the course's index-array API over minidl's im2col/col2im kernels. The
indices pick exactly the elements minidl's im2col copies, the column layout is the course's
(column p*N + n), and col2im_indices is the adjoint of im2col_indices."""
import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl import _kernels

GEOMETRIES = [  # x_shape, field_height, field_width, padding, stride
    ((2, 3, 5, 5), 3, 3, 1, 1),
    ((3, 2, 7, 5), 3, 1, 0, 2),
    ((1, 4, 6, 6), 2, 2, 0, 2),
    ((2, 1, 4, 4), 4, 4, 2, 1),
]


def _output_size(x_shape, fh, fw, p, s):
    return (x_shape[2] + 2 * p - fh) // s + 1, (x_shape[3] + 2 * p - fw) // s + 1


@pytest.mark.parametrize("x_shape, fh, fw, p, s", GEOMETRIES)
def test_indices_pick_exactly_what_minidls_im2col_copies(x_shape, fh, fw, p, s):
    x = np.random.default_rng(0).standard_normal(x_shape)
    k, i, j = cs.get_im2col_indices(x_shape, fh, fw, p, s)
    ho, wo = _output_size(x_shape, fh, fw, p, s)
    assert k.shape == (x_shape[1] * fh * fw, 1) and i.shape == j.shape == (k.shape[0], ho * wo)
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    minidl_cols = _kernels.im2col(x, fh, fw, s, s, p, p, 1, 1, ho, wo)
    np.testing.assert_array_equal(x_padded[:, k, i, j], minidl_cols)


@pytest.mark.parametrize("x_shape, fh, fw, p, s", GEOMETRIES)
def test_im2col_indices_has_the_courses_layout(x_shape, fh, fw, p, s):
    x = np.random.default_rng(1).standard_normal(x_shape)
    cols = cs.im2col_indices(x, fh, fw, p, s)
    N, C = x_shape[:2]
    ho, wo = _output_size(x_shape, fh, fw, p, s)
    assert cols.shape == (C * fh * fw, ho * wo * N)
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    # column p*N + n is the window at output position p of image n; row (c, kh, kw)
    for n in range(N):
        for pos in (0, ho * wo - 1):
            y0, x0 = (pos // wo) * s, (pos % wo) * s
            window = x_padded[n, :, y0:y0 + fh, x0:x0 + fw].reshape(-1)
            np.testing.assert_array_equal(cols[:, pos * N + n], window)


@pytest.mark.parametrize("x_shape, fh, fw, p, s", GEOMETRIES)
def test_col2im_indices_is_the_adjoint_and_sums_overlaps(x_shape, fh, fw, p, s):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    cols = rng.standard_normal(cs.im2col_indices(x, fh, fw, p, s).shape)
    back = cs.col2im_indices(cols, x_shape, fh, fw, p, s)
    assert back.shape == x_shape
    # <im2col(x), cols> == <x, col2im(cols)>
    np.testing.assert_allclose(np.sum(cs.im2col_indices(x, fh, fw, p, s) * cols),
                               np.sum(x * back), rtol=1e-12)
    # and equals scattering with the index arrays (np.add.at), as the course does
    k, i, j = cs.get_im2col_indices(x_shape, fh, fw, p, s)
    padded = np.zeros((x_shape[0], x_shape[1], x_shape[2] + 2 * p, x_shape[3] + 2 * p))
    np.add.at(padded, (slice(None), k, i, j), cols.reshape(k.shape[0], -1, x_shape[0])
              .transpose(2, 0, 1))
    np.testing.assert_allclose(back, padded[:, :, p:p + x_shape[2], p:p + x_shape[3]],
                               rtol=1e-12, atol=1e-12)


def test_integer_input_keeps_its_dtype_as_the_course_does():
    x = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    cols = cs.im2col_indices(x, 2, 2, padding=0, stride=2)
    assert cols.dtype == x.dtype and cols.shape == (4, 8)
    assert cols[:, 0].tolist() == [0, 1, 4, 5] and cols[:, 1].tolist() == [16, 17, 20, 21]
    assert cs.col2im_indices(cols, x.shape, 2, 2, 0, 2).tolist() == x.tolist()


def test_a_stride_that_does_not_tile_is_an_error_naming_the_function():
    with pytest.raises(ValueError, match="get_im2col_indices: stride 2 does not tile"):
        cs.get_im2col_indices((1, 1, 4, 4), 3, 3, padding=1, stride=2)
    with pytest.raises(ValueError, match="col2im_indices: cols must have shape"):
        cs.col2im_indices(np.zeros((9, 5)), (1, 1, 4, 4), 3, 3, 1, 1)
    with pytest.raises(ValueError, match="im2col_indices: x must be 4-D"):
        cs.im2col_indices(np.zeros((4, 4)), 3, 3)
