"""Visualisation of networks, as arrays (plot them with matplotlib's imshow).

``filter_grid(w)``: a convolution layer's filters tiled into one image, as the lecture shows
AlexNet's first layer (64 filters of 3 x 11 x 11 in an 8 x 8 grid). It also serves
cs231n.vis_utils (visualize_grid, vis_grid, vis_nn).
"""
import math

import numpy as np

__all__ = ["filter_grid"]


def filter_grid(w, padding=1, normalize=True, ncols=None):
    """Tile the filters of a convolution layer into one image.

    Inputs:
    - w: weights (F, C, KH, KW), e.g. ``model.params['W1']`` or a Conv2d's weight (any
      numeric array).
    - padding: blank pixels (0) between neighbouring cells (none around the border).
    - normalize: scale each filter on its own to [0, 1] (its minimum -> 0, its maximum -> 1; a
      constant filter -> 0), so that small filters are as visible as large ones; False keeps
      the values.
    - ncols: filters per row. Default: a square grid of ceil(sqrt(F)) rows and columns (the
      rows may be partly empty); with ncols, ceil(F / ncols) rows.

    Returns, with R rows and K columns of cells, GH = R*KH + (R-1)*padding and
    GW = K*KW + (K-1)*padding:
    - (GH, GW, 3) when C == 3: an RGB image, channels last (for imshow);
    - (C, GH, GW) otherwise: one grey tiling per input channel.
    Filter f fills cell (f // K, f % K), i.e. rows [r*(KH+padding), r*(KH+padding) + KH) and
    the matching columns; empty cells and padding are 0. The dtype is float64 when
    normalize is True, else w's float dtype (integers give float64).

    Example: the lecture's AlexNet conv1, w (64, 3, 11, 11) -> (95, 95, 3), an 8 x 8 grid.
    """
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: w must be 4-D (F, C, KH, KW), got shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"filter_grid: w must be a numeric array, got {w.dtype} {w.shape}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"filter_grid: padding must be a non-negative int, got {padding!r}")
    F, C, KH, KW = w.shape
    if F == 0:
        raise ValueError(f"filter_grid: w has no filters (shape {w.shape})")
    if ncols is None:
        cols = rows = math.ceil(math.sqrt(F))
    else:
        if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
            raise ValueError(f"filter_grid: ncols must be a positive int, got {ncols!r}")
        cols, rows = int(ncols), math.ceil(F / ncols)

    if normalize:
        flat = w.reshape(F, -1).astype(np.float64)
        low = flat.min(axis=1, keepdims=True)
        span = flat.max(axis=1, keepdims=True) - low
        # A constant filter has nothing to show: 0 rather than 0/0.
        cells = np.divide(flat - low, span, out=np.zeros_like(flat), where=span > 0)
        cells = cells.reshape(w.shape)
    else:
        cells = w if w.dtype.kind == "f" else w.astype(np.float64)

    step_h, step_w = KH + padding, KW + padding
    grid = np.zeros((C, rows * step_h - padding, cols * step_w - padding), dtype=cells.dtype)
    for f in range(F):
        r, c = divmod(f, cols)
        grid[:, r * step_h:r * step_h + KH, c * step_w:c * step_w + KW] = cells[f]
    return np.ascontiguousarray(grid.transpose(1, 2, 0)) if C == 3 else grid
