"""Convolution: Conv (readable loops, the coursework reference) and FastConv (planned kernels).

Symbols: N images, C input channels, F filters, G groups, KH x KW kernel, H x W input,
HO x WO output. Weights are (F, C // G, KH, KW), as in PyTorch; filter f reads the input
channels of its group g = f // (F // G).

conv_param: 'stride' and 'pad' (the course's), 'dilation', 'groups' and 'floor_mode'
(minidl's); each an int or an (h, w) pair. Any other key is an error.

Output size, per axis: HO = (H + 2*pad - dilation*(KH - 1) - 1) // stride + 1. With the
default ``floor_mode=False`` the division must be exact (the course's assumption); with
``floor_mode=True`` it floors, as PyTorch does.

Both layers validate through ``minidl._kernels.plan_conv``: the geometry is checked once per
shape and cached as a ConvPlan (sizes, multiply-adds, FastConv's algorithm), which the cache
carries to backward, so backward checks only dout.
"""
import numpy as np

from .. import _kernels
from .._kernels import convolution
from ._checks import LayerCache, check_dout, open_cache


class Conv:
    """Convolution with explicit loops over images, filters and output positions.

    The reference implementation: slow, but every line maps to the definition
    out[n, f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw].
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) -> out (N, F, HO, WO), cache."""
        g = _kernels.plan_conv("Conv", x, w, b, conv_param)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        Fg, Cg = g.Fg, g.Cg
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
        return out, LayerCache("Conv", g, x, w)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,)."""
        g, x, w = open_cache("Conv", cache)
        check_dout("Conv", dout, g.out_shape, g.dtype)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        dxpad = np.zeros_like(xpad)
        dw = np.zeros_like(w)
        Fg, Cg = g.Fg, g.Cg
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
        db = dout.sum(axis=(0, 2, 3)) if g.has_bias else None
        return np.ascontiguousarray(dx), dw, db


class FastConv:
    """Convolution through the planned kernels: im2col + GEMM (batched, or one image per OpenMP
    thread), 1x1 as a plain GEMM, direct kernels for thin groups and depthwise layers (see
    ``minidl._kernels.convolution`` for each algorithm and how one is chosen;
    ``minidl.set_conv_algorithm`` forces a family).

    The cache holds the plan, x and w (plus the column matrix of a small batched call).
    Same arguments, results and errors as Conv.
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None -> out (N, F, HO, WO), cache."""
        plan = _kernels.plan_conv("FastConv", x, w, b, conv_param)
        return FastConv.run(plan, x, w, b)

    @staticmethod
    def run(plan, x, w, b):
        """forward with a plan made for these arrays' shapes (minidl.nn keeps its plans)."""
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        b = None if b is None else np.ascontiguousarray(b)
        out, saved = convolution.forward(plan, x, w, b)
        return out, LayerCache("FastConv", plan, x, w, saved)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,) or None."""
        plan, x, w, saved = open_cache("FastConv", cache)
        check_dout("FastConv", dout, plan.out_shape, plan.dtype)
        return convolution.backward(plan, np.ascontiguousarray(dout), x, w, saved)
