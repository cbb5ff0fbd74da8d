"""minidl.viz.filter_grid tiles a conv layer's filters (a marked pixel lands in its cell), and
cs231n.vis_utils (visualize_grid, vis_grid, vis_nn) gives the course's grids through it."""
import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl.viz import filter_grid


def _marked(F, C, KH, KW, f, c, i, j, low=-2.0, high=5.0):
    """F filters filled with `low` except w[f, c, i, j] = high."""
    w = np.full((F, C, KH, KW), low)
    w[f, c, i, j] = high
    return w


@pytest.mark.parametrize("f", [0, 5, 9, 63])
def test_a_marked_pixel_lands_in_its_filters_cell(f):
    F, KH, KW, pad = 64, 11, 11, 1                  # the lecture's AlexNet conv1: 8 x 8 grid
    grid = filter_grid(_marked(F, 3, KH, KW, f, 1, 4, 7), padding=pad)
    assert grid.shape == (8 * KH + 7, 8 * KW + 7, 3)
    row, col = divmod(f, 8)
    y, x = row * (KH + pad) + 4, col * (KW + pad) + 7
    assert grid[y, x, 1] == 1.0
    ones = np.argwhere(grid == 1.0)
    assert ones.tolist() == [[y, x, 1]]             # nowhere else
    # each filter is scaled on its own: its low value -> 0
    assert grid[row * (KH + pad), col * (KW + pad), 0] == 0.0


def test_grey_filters_give_one_tiling_per_input_channel():
    w = _marked(5, 2, 3, 4, 4, 1, 2, 3)
    grid = filter_grid(w, padding=2)
    # ceil(sqrt(5)) = 3 rows and columns (the third row empty), as cs231n's visualize_grid
    assert grid.shape == (2, 3 * 3 + 2 * 2, 3 * 4 + 2 * 2)
    assert grid[1, 1 * 5 + 2, 1 * 6 + 3] == 1.0
    assert np.count_nonzero(grid) == 1
    assert grid[:, 2 * 5:, :].max() == 0             # the empty row and the padding are 0


def test_without_normalize_the_values_are_kept_and_ncols_sets_the_columns():
    w = np.arange(6 * 1 * 2 * 2, dtype=np.float32).reshape(6, 1, 2, 2)
    grid = filter_grid(w, padding=1, normalize=False, ncols=2)
    assert grid.shape == (1, 3 * 2 + 2, 2 * 2 + 1) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[0, 6:8, 3:5], w[5, 0])  # filter 5: row 2, column 1
    assert grid[0, 2, :].max() == 0 and grid[0, :, 2].max() == 0


def test_a_constant_filter_maps_to_zero_not_nan():
    grid = filter_grid(np.ones((2, 3, 2, 2)))
    assert not np.isnan(grid).any() and grid.max() == 0


def test_bad_arguments_are_errors_that_name_filter_grid():
    with pytest.raises(ValueError, match=r"filter_grid: w must be 4-D \(F, C, KH, KW\)"):
        filter_grid(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="filter_grid: padding"):
        filter_grid(np.ones((1, 1, 2, 2)), padding=-1)
    with pytest.raises(ValueError, match="filter_grid: ncols"):
        filter_grid(np.ones((1, 1, 2, 2)), ncols=0)


# --------------------------------------------------------------------------- cs231n.vis_utils

def test_visualize_grid_is_the_conv_notebooks_filter_image():
    # The notebook shows model.params['W1'].transpose(0, 2, 3, 1) as uint8.
    W1 = _marked(32, 3, 7, 7, 11, 2, 6, 0)
    grid = cs.visualize_grid(W1.transpose(0, 2, 3, 1))
    G = 6                                            # ceil(sqrt(32))
    assert grid.shape == (G * 7 + G - 1, G * 7 + G - 1, 3) and grid.dtype == np.float64
    row, col = divmod(11, G)
    assert grid[row * 8 + 6, col * 8 + 0, 2] == 255.0
    assert np.argwhere(grid == 255.0).tolist() == [[row * 8 + 6, col * 8, 2]]
    assert grid.min() == 0.0
    small = cs.visualize_grid(np.random.default_rng(0).standard_normal((3, 4, 4, 1)),
                              ubound=1.0, padding=0)
    assert small.shape == (8, 8, 1) and small.max() == 1.0
    for r, c in ((0, 0), (0, 1), (1, 0)):            # every image spans [0, ubound] on its own
        cell = small[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4]
        assert cell.min() == 0.0 and cell.max() == 1.0
    assert small[4:, 4:].max() == 0.0                # the fourth cell is empty


def test_vis_grid_scales_all_images_together_with_a_blank_after_each():
    Xs = np.stack([np.full((2, 3, 1), v, dtype=np.float32) for v in (1.0, 3.0, 5.0)])
    G = cs.vis_grid(Xs)
    assert G.shape == (2 * 3, 2 * 4, 1) and G.dtype == np.float32
    # images at rows/cols y*(H+1), x*(W+1); blanks (and the empty cell) = the minimum -> 0
    np.testing.assert_allclose(G[0:2, 0:3, 0], 0.0)
    np.testing.assert_allclose(G[0:2, 4:7, 0], 0.5)
    np.testing.assert_allclose(G[3:5, 0:3, 0], 1.0)
    assert G[2, :, 0].max() == 0 and G[:, 3, 0].max() == 0 and G[5, :, 0].max() == 0
    assert G[3:5, 4:7, 0].max() == 0


def test_vis_nn_lays_out_rows_with_blanks_worth_one():
    a, b = np.full((2, 2, 3), 0.0), np.full((2, 2, 3), 3.0)
    G = cs.vis_nn([[a, b, a], [b, a, b]])
    assert G.shape == (2 * 3, 3 * 3, 3)
    # values 0, 3 and blanks 1 scaled together: 0 -> 0, 3 -> 1, blank -> 1/3
    np.testing.assert_allclose(G[0:2, 0:2], 0.0)
    np.testing.assert_allclose(G[0:2, 3:5], 1.0)
    np.testing.assert_allclose(G[3:5, 0:2], 1.0)
    np.testing.assert_allclose(G[2, :], 1 / 3)
    np.testing.assert_allclose(G[:, 8], 1 / 3)
