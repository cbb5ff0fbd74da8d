"""CS231n ``cs231n/vis_utils.py``: image grids, over minidl.viz.filter_grid.

All three take images channels last, (N, H, W, C) (a conv weight W (F, C, HH, WW) is passed
as ``W.transpose(0, 2, 3, 1)``), and return a (GH, GW, C) grid:

    visualize_grid  square grid, each image scaled on its own to [0, ubound], padding 0
    vis_grid        square grid, all images scaled together to [0, 1], a blank row and
                    column after every image (blank = the smallest value, so 0)
    vis_nn          rows[y][x] on a len(rows) x len(rows[0]) grid, scaled together to
                    [0, 1], blank = the value 1 before scaling

as the course's functions do. One difference: an image with a single value maps to 0 in
visualize_grid (the course divides 0 by 0 and returns NaN).
"""
import numpy as _np

from ...viz import filter_grid as _filter_grid

__all__ = ["visualize_grid", "vis_grid", "vis_nn"]


def _grid_nhwc(images, padding, normalize, ncols=None):
    """filter_grid on (N, H, W, C) images -> (GH, GW, C)."""
    grid = _filter_grid(images.transpose(0, 3, 1, 2), padding=padding, normalize=normalize,
                        ncols=ncols)
    return grid if images.shape[3] == 3 else grid.transpose(1, 2, 0)


def _as_images(fn, Xs):
    Xs = _np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"{fn}: Xs must be 4-D (N, H, W, C), got shape {Xs.shape}")
    return Xs


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Xs (N, H, W, C) -> grid (G*H + (G-1)*padding, G*W + (G-1)*padding, C), float64, with
    G = ceil(sqrt(N)); image n at grid cell (n // G, n % G), scaled on its own to
    [0, ubound]; padding and empty cells 0."""
    Xs = _as_images("visualize_grid", Xs)
    return ubound * _grid_nhwc(Xs, padding, normalize=True)


def _scale_together(tiles):
    """A grid built from images - s with blanks 0 (so a blank stands for the value s), with a
    blank row and column appended after the last cell as the course's grids have, scaled to
    [0, 1] over the whole grid (the shift s cancels out)."""
    tiles = _np.pad(tiles, ((0, 1), (0, 1), (0, 0)))
    low, high = tiles.min(), tiles.max()
    return (tiles - low) / (high - low)


def vis_grid(Xs):
    """Xs (N, H, W, C) -> grid (G*(H+1), G*(W+1), C) in [0, 1], G = ceil(sqrt(N)): image n at
    rows (n // G)*(H+1) ..., one blank row/column after each image, all scaled together
    (min -> 0, max -> 1). dtype: Xs's float dtype (integers give float64)."""
    Xs = _as_images("vis_grid", Xs)
    low = Xs.min()
    shifted = Xs - low if Xs.dtype.kind == "f" else Xs.astype(_np.float64) - low
    return _scale_together(_grid_nhwc(shifted, 1, normalize=False))


def vis_nn(rows):
    """rows: R lists of D images (H, W, C) -> grid (R*(H+1), D*(W+1), C) in [0, 1]: image
    rows[y][x] at cell (y, x), one blank row/column after each image, blanks having the value
    1 before everything is scaled together (min -> 0, max -> 1). dtype: that of rows[0][0]
    (integers give float64)."""
    D = len(rows[0])
    first = _np.asarray(rows[0][0])
    images = _np.stack([_np.asarray(rows[y][x]) for y in range(len(rows)) for x in range(D)])
    images = images.astype(first.dtype if first.dtype.kind == "f" else _np.float64)
    return _scale_together(_grid_nhwc(images - 1, 1, normalize=False, ncols=D))
