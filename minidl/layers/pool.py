"""Pooling: MaxPool (readable loops), FastMaxPool, AvgPool, GlobalAvgPool and AdaptiveAvgPool.

pool_param: 'pool_height', 'pool_width', 'stride', and minidl's 'pad' (default 0) and
'floor_mode' (default False: the stride must tile the padded input; True: PyTorch's floor);
any other key is an error.
Max pooling pads with -inf (padding never wins); average pooling counts the zero padding
in the divisor (PyTorch's count_include_pad=True).
Output size per axis: HO = (H + 2*pad - pool_height) // stride + 1.
AdaptiveAvgPool averages over PyTorch's adaptive bins to a fixed output size instead.
"""
import numpy as np

from .. import _kernels
from ._checks import (LayerCache, check_array, check_dout, check_nchw, check_param_keys,
                      open_cache, pair, positive_int, window_output_size)


POOL_PARAM_KEYS = ("pool_height", "pool_width", "stride", "pad", "floor_mode")


def check_pool_padding(layer, name, pad, kernel):
    """pad (h, w) may be at most half the window kernel (h, w) on each axis, as in PyTorch
    (more would make windows of padding alone); ValueError naming layer and name otherwise.
    The pooling layers and nn.MaxPool2d / AvgPool2d (at construction) check here."""
    if any(2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(f"{layer}: {name} {tuple(pad)} must be at most half the pool size "
                         f"{tuple(kernel)}, as in PyTorch")


class PoolGeometry:
    """Validated sizes of one pooling window arrangement, from shapes and pool_param: built by
    forward and carried in the cache, so backward checks only dout."""

    __slots__ = ("layer", "N", "C", "H", "W", "KH", "KW", "sh", "sw", "ph", "pw", "HO", "WO",
                 "dtype")

    def __init__(self, layer, x, pool_param):
        check_array(layer, "x", x)
        if x.ndim != 4:
            raise ValueError(f"{layer}: x must be 4-D (N, C, H, W), got shape {x.shape}")
        check_param_keys(layer, "pool_param", pool_param, POOL_PARAM_KEYS)
        for key in ("pool_height", "pool_width"):
            if key not in pool_param:
                raise ValueError(f"{layer}: pool_param needs '{key}' (got keys {sorted(pool_param)})")
        self.layer = layer
        self.KH = positive_int(layer, "pool_height", pool_param["pool_height"])
        self.KW = positive_int(layer, "pool_width", pool_param["pool_width"])
        self.sh, self.sw = pair(layer, "stride", pool_param.get("stride", self.KH))
        self.ph, self.pw = pair(layer, "pad", pool_param.get("pad", 0), low=0)
        check_pool_padding(layer, "pad", (self.ph, self.pw), (self.KH, self.KW))
        floor_mode = pool_param.get("floor_mode", False)
        if not isinstance(floor_mode, (bool, np.bool_)):
            raise ValueError(f"{layer}: pool_param['floor_mode'] must be True or False, got "
                             f"{floor_mode!r}")
        self.N, self.C, self.H, self.W = x.shape
        self.dtype = x.dtype
        self.HO = window_output_size(layer, "height", self.H, self.KH, self.sh, self.ph, 1, floor_mode)
        self.WO = window_output_size(layer, "width", self.W, self.KW, self.sw, self.pw, 1, floor_mode)

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def out_shape(self):
        return (self.N, self.C, self.HO, self.WO)

    def unpadded(self, layer):
        """This arrangement over an input already padded (by -inf, for max pooling)."""
        x = np.empty((self.N, self.C, self.H + 2 * self.ph, self.W + 2 * self.pw), self.dtype)
        return PoolGeometry(layer, x, {"pool_height": self.KH, "pool_width": self.KW,
                                       "stride": (self.sh, self.sw), "floor_mode": True})

    def windows(self, x):
        """x (N, C, H, W) -> cols (N*C, KH*KW, HO*WO), one row per window position."""
        flat = x.reshape(self.N * self.C, 1, self.H, self.W)
        return _kernels.im2col(flat, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw,
                               1, 1, self.HO, self.WO)

    def fold(self, dcols):
        """Inverse of windows for gradients: (N*C, KH*KW, HO*WO) -> (N, C, H, W), summing."""
        dx = _kernels.col2im(dcols, (self.N * self.C, 1, self.H, self.W), self.KH, self.KW,
                             self.sh, self.sw, self.ph, self.pw, 1, 1, self.HO, self.WO)
        return dx.reshape(self.N, self.C, self.H, self.W)


class MaxPool:
    """Max pooling with explicit loops (the reference). Ties: the first maximum wins."""

    @staticmethod
    def forward(x, pool_param):
        """x (N, C, H, W) -> out (N, C, HO, WO), cache."""
        g = PoolGeometry("MaxPool", x, pool_param)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)), constant_values=-np.inf)
        out = np.empty(g.out_shape, dtype=x.dtype)
        for y in range(g.HO):
            for xo in range(g.WO):
                window = xpad[:, :, y * g.sh:y * g.sh + g.KH, xo * g.sw:xo * g.sw + g.KW]
                out[:, :, y, xo] = window.max(axis=(2, 3))
        return out, LayerCache("MaxPool", g, x)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, HO, WO) -> dx (N, C, H, W): each window's gradient goes to its argmax."""
        g, x = open_cache("MaxPool", cache)
        check_dout("MaxPool", dout, g.out_shape, g.dtype)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)), constant_values=-np.inf)
        dxpad = np.zeros(xpad.shape, dtype=x.dtype)
        for n in range(g.N):
            for c in range(g.C):
                for y in range(g.HO):
                    for xo in range(g.WO):
                        y0, x0 = y * g.sh, xo * g.sw
                        window = xpad[n, c, y0:y0 + g.KH, x0:x0 + g.KW]
                        i, j = np.unravel_index(np.argmax(window), window.shape)
                        dxpad[n, c, y0 + i, x0 + j] += dout[n, c, y, xo]
        return np.ascontiguousarray(dxpad[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W])


class FastMaxPool:
    """Max pooling with the compiled kernel (parallel over (image, channel) planes; it keeps the
    int32 position of each window's maximum for backward), or through the window unfolding
    (im2col) on the NumPy path. Same results as MaxPool: the first maximum wins ties."""

    @staticmethod
    def forward(x, pool_param):
        """x (N, C, H, W) -> out (N, C, HO, WO), cache."""
        g = PoolGeometry("FastMaxPool", x, pool_param)
        if _kernels.direct_available():
            # compiled kernel: window maxima and their flat positions, parallel over planes
            out, idx = _kernels.maxpool_forward(x, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.HO, g.WO)
            return out, LayerCache("FastMaxPool", g, "kernel", idx)
        if g.ph or g.pw:
            # pad with -inf first so that padding never wins the max
            x_in = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)), constant_values=-np.inf)
            gp = g.unpadded("FastMaxPool")
        else:
            x_in, gp = x, g
        cols = gp.windows(x_in)
        argmax = cols.argmax(axis=1)  # first maximum, like MaxPool
        out = np.take_along_axis(cols, argmax[:, None, :], axis=1)
        return out.reshape(g.out_shape), LayerCache("FastMaxPool", g, "numpy", argmax)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, HO, WO) -> dx (N, C, H, W)."""
        g, path, argmax = open_cache("FastMaxPool", cache)
        check_dout("FastMaxPool", dout, g.out_shape, g.dtype)
        if path == "kernel":
            return _kernels.maxpool_backward(dout, argmax, g.x_shape)
        dcols = np.zeros((g.N * g.C, g.KH * g.KW, g.HO * g.WO), dtype=g.dtype)
        np.put_along_axis(dcols, argmax[:, None, :], dout.reshape(g.N * g.C, 1, -1), axis=1)
        if g.ph or g.pw:
            dxp = g.unpadded("FastMaxPool").fold(dcols)
            return np.ascontiguousarray(dxp[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W])
        return g.fold(dcols)


class AvgPool:
    """Average pooling (zero padding counts in the divisor, like PyTorch's default).

    Compiled kernel when built (parallel over planes), window unfolding otherwise."""

    @staticmethod
    def forward(x, pool_param):
        """x (N, C, H, W) -> out (N, C, HO, WO), cache."""
        g = PoolGeometry("AvgPool", x, pool_param)
        if _kernels.direct_available():
            out = _kernels.avgpool_forward(x, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.HO, g.WO)
        else:
            out = g.windows(x).mean(axis=1).reshape(g.out_shape).astype(x.dtype, copy=False)
        return out, LayerCache("AvgPool", g)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, HO, WO) -> dx (N, C, H, W)."""
        g, = open_cache("AvgPool", cache)
        check_dout("AvgPool", dout, g.out_shape, g.dtype)
        if _kernels.direct_available():
            return _kernels.avgpool_backward(dout, g.x_shape, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw)
        share = dout.reshape(g.N * g.C, 1, -1) / (g.KH * g.KW)
        dcols = np.broadcast_to(share, (g.N * g.C, g.KH * g.KW, g.HO * g.WO))
        return g.fold(np.ascontiguousarray(dcols, dtype=g.dtype))


class GlobalAvgPool:
    """Mean over the spatial axes: x (N, C, H, W) -> out (N, C, 1, 1)."""

    @staticmethod
    def forward(x):
        """x (N, C, H, W) -> out (N, C, 1, 1), cache."""
        check_array("GlobalAvgPool", "x", x)
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool: x must be 4-D (N, C, H, W), got shape {x.shape}")
        return x.mean(axis=(2, 3), keepdims=True), LayerCache("GlobalAvgPool", x.shape, x.dtype)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, 1, 1) -> dx (N, C, H, W)."""
        x_shape, dtype = open_cache("GlobalAvgPool", cache)
        check_dout("GlobalAvgPool", dout, (x_shape[0], x_shape[1], 1, 1), dtype)
        scale = dout.dtype.type(1.0 / (x_shape[2] * x_shape[3]))
        return np.broadcast_to(dout * scale, x_shape).copy()


def adaptive_bins(size, out_size):
    """PyTorch's adaptive pooling bins along one axis: [(start, end), ...] with
    start = floor(i * size / out_size), end = ceil((i + 1) * size / out_size)."""
    return [((i * size) // out_size, -(-((i + 1) * size) // out_size)) for i in range(out_size)]


class AdaptiveAvgPool:
    """Average pooling to a fixed output size over PyTorch's adaptive bins (bins may overlap
    or differ in size by one; an output larger than the input repeats input values).

    Shape: x (N, C, H, W), output_size (HO, WO) -> out (N, C, HO, WO).
    """

    @staticmethod
    def forward(x, output_size):
        """x (N, C, H, W), output_size int or (HO, WO) -> out (N, C, HO, WO), cache."""
        check_nchw("AdaptiveAvgPool", "x", x)
        ho, wo = pair("AdaptiveAvgPool", "output_size", output_size)
        n, c, h, w = x.shape
        rows, cols = adaptive_bins(h, ho), adaptive_bins(w, wo)
        out = np.empty((n, c, ho, wo), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return out, LayerCache("AdaptiveAvgPool", x.shape, x.dtype, rows, cols)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, HO, WO) -> dx (N, C, H, W): each bin's gradient shared equally."""
        shape, dtype, rows, cols = open_cache("AdaptiveAvgPool", cache)
        check_dout("AdaptiveAvgPool", dout, shape[:2] + (len(rows), len(cols)), dtype)
        dx = np.zeros(shape, dtype=dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                share = dout[:, :, i, j] / ((r1 - r0) * (c1 - c0))
                dx[:, :, r0:r1, c0:c1] += share[:, :, None, None]
        return dx
