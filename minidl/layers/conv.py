"""Convolution: Conv (readable loops, the coursework reference) and FastConv (im2col + GEMM).

Symbols: N images, C input channels, F filters, G groups, KH x KW kernel, H x W input,
HO x WO output. Weights are (F, C // G, KH, KW), as in PyTorch; filter f reads the input
channels of its group g = f // (F // G).

Output size, per axis: HO = (H + 2*pad - dilation*(KH - 1) - 1) // stride + 1. With the
default ``floor_mode=False`` the division must be exact (the course's assumption); with
``floor_mode=True`` it floors, as PyTorch does.
"""
import numpy as np

from .. import _kernels
from ._checks import (check_array, check_same_dtype, check_shape, nonneg_int, pair,
                      positive_int, window_output_size)


class ConvGeometry:
    """Validated sizes of one convolution (everything a kernel needs, as plain ints)."""

    __slots__ = ("N", "C", "H", "W", "F", "G", "KH", "KW", "sh", "sw", "ph", "pw",
                 "dh", "dw", "HO", "WO")

    def __init__(self, layer, x, w, b, conv_param):
        check_array(layer, "x", x)
        if x.ndim != 4:
            raise ValueError(f"{layer}: x must be 4-D (N, C, H, W), got shape {x.shape}")
        check_array(layer, "w", w)
        if w.ndim != 4:
            raise ValueError(f"{layer}: w must be 4-D (F, C // groups, KH, KW), got shape {w.shape}")
        if b is not None:
            check_array(layer, "b", b)
        check_same_dtype(layer, x=x, w=w, b=b)
        if not isinstance(conv_param, dict):
            raise TypeError(f"{layer}: conv_param must be a dict, got {type(conv_param).__name__}")
        self.sh, self.sw = pair(layer, "stride", conv_param.get("stride", 1))
        self.ph, self.pw = pair(layer, "pad", conv_param.get("pad", 0), nonneg_int)
        self.dh, self.dw = pair(layer, "dilation", conv_param.get("dilation", 1))
        self.G = positive_int(layer, "groups", conv_param.get("groups", 1))
        floor_mode = bool(conv_param.get("floor_mode", False))
        self.N, self.C, self.H, self.W = x.shape
        self.F, cg, self.KH, self.KW = w.shape
        G = self.G
        if self.C % G or self.F % G:
            raise ValueError(f"{layer}: groups={G} must divide both input channels {self.C} "
                             f"(x {x.shape}) and filters {self.F} (w {w.shape})")
        if cg != self.C // G:
            raise ValueError(f"{layer}: w has {cg} input channels per filter (w {w.shape}) but "
                             f"x has {self.C} channels / groups {G} = {self.C // G} (x {x.shape})")
        if b is not None:
            check_shape(layer, "b", b, (self.F,))
        self.HO = window_output_size(layer, "height", self.H, self.KH, self.sh, self.ph,
                                     self.dh, floor_mode)
        self.WO = window_output_size(layer, "width", self.W, self.KW, self.sw, self.pw,
                                     self.dw, floor_mode)

    @property
    def out_shape(self):
        return (self.N, self.F, self.HO, self.WO)

    def kernel_args(self):
        """The positional arguments of minidl._kernels.im2col / col2im after the array."""
        return (self.KH, self.KW, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
                self.HO, self.WO)


class Conv:
    """Convolution with explicit loops over images, filters and output positions.

    The reference implementation: slow, but every line maps to the definition
    out[n, f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw].
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) -> out (N, F, HO, WO), cache."""
        g = ConvGeometry("Conv", x, w, b, conv_param)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        Fg, Cg = g.F // g.G, g.C // g.G
        ext_h, ext_w = g.dh * (g.KH - 1) + 1, g.dw * (g.KW - 1) + 1
        out = np.empty(g.out_shape, dtype=x.dtype)
        for n in range(g.N):
            for f in range(g.F):
                c0 = (f // Fg) * Cg
                for y in range(g.HO):
                    for xo in range(g.WO):
                        y0, x0 = y * g.sh, xo * g.sw
                        window = xpad[n, c0:c0 + Cg, y0:y0 + ext_h:g.dh, x0:x0 + ext_w:g.dw]
                        out[n, f, y, xo] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
        return out, (x, w, b, conv_param)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,)."""
        x, w, b, conv_param = cache
        g = ConvGeometry("Conv", x, w, b, conv_param)
        check_shape("Conv", "dout", dout, g.out_shape)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        dxpad = np.zeros_like(xpad)
        dw = np.zeros_like(w)
        Fg, Cg = g.F // g.G, g.C // g.G
        ext_h, ext_w = g.dh * (g.KH - 1) + 1, g.dw * (g.KW - 1) + 1
        for n in range(g.N):
            for f in range(g.F):
                c0 = (f // Fg) * Cg
                for y in range(g.HO):
                    for xo in range(g.WO):
                        y0, x0 = y * g.sh, xo * g.sw
                        win = (n, slice(c0, c0 + Cg), slice(y0, y0 + ext_h, g.dh),
                               slice(x0, x0 + ext_w, g.dw))
                        dw[f] += dout[n, f, y, xo] * xpad[win]
                        dxpad[win] += dout[n, f, y, xo] * w[f]
        dx = dxpad[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]
        db = dout.sum(axis=(0, 2, 3)) if b is not None else None
        return np.ascontiguousarray(dx), dw, db


class FastConv:
    """Convolution as im2col + one GEMM per group (the BLAS does the arithmetic).

    cols = im2col(x): (N, C*KH*KW, HO*WO); per group g,
    out[n, g] = w[g] (F/G, C/G*KH*KW) @ cols[n, g] (C/G*KH*KW, HO*WO).
    Backward: dw = dout @ cols^T summed over images, dcols = w^T @ dout, dx = col2im(dcols).
    Same arguments, results and errors as Conv.
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None -> out (N, F, HO, WO), cache."""
        g = ConvGeometry("FastConv", x, w, b, conv_param)
        cols = _kernels.im2col(x, *g.kernel_args())
        G = g.G
        K = g.C // G * g.KH * g.KW
        # (N, G, K, P) @ (G, F/G, K)^T broadcast over N -> (N, G, F/G, P)
        out = np.matmul(w.reshape(G, g.F // G, K), cols.reshape(g.N, G, K, -1))
        out = out.reshape(g.out_shape)
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out, (x, w, b, conv_param, cols)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,) or None."""
        x, w, b, conv_param, cols = cache
        g = ConvGeometry("FastConv", x, w, b, conv_param)
        check_shape("FastConv", "dout", dout, g.out_shape)
        check_same_dtype("FastConv", x=x, dout=dout)
        G = g.G
        K = g.C // G * g.KH * g.KW
        d = dout.reshape(g.N, G, g.F // G, -1)
        c = cols.reshape(g.N, G, K, -1)
        dw = np.matmul(d, c.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        dcols = np.matmul(w.reshape(G, g.F // G, K).transpose(0, 2, 1), d)
        dx = _kernels.col2im(dcols.reshape(g.N, G * K, -1), x.shape, *g.kernel_args())
        db = dout.sum(axis=(0, 2, 3)) if b is not None else None
        return dx, dw, db
