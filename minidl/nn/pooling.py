"""Pooling modules: MaxPool2d, AvgPool2d, GlobalAvgPool, AdaptiveAvgPool2d.

PyTorch's constructors (MaxPool2d(kernel_size, stride=None, padding=0, ceil_mode=False)) and
output sizes (floor division: the modules pass floor_mode=True to the layers).
Shape: (N, C, H, W) -> (N, C, HO, WO).
"""
import numpy as np

from ..layers._checks import nonneg_int, pair, window_output_size
from ..layers.pool import AdaptiveAvgPool as _AdaptiveAvgPoolLayer
from ..layers.pool import AvgPool as _AvgPoolLayer
from ..layers.pool import FastMaxPool as _MaxPoolLayer
from ..layers.pool import GlobalAvgPool as _GlobalAvgPoolLayer
from ..layers.pool import adaptive_bins, check_pool_padding
from ..layers.shape import Pad as _PadLayer
from .module import Module, _fmt_pair, _image_shape

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool", "AdaptiveAvgPool2d"]


class MaxPool2d(Module):
    """Max pooling through FastMaxPool; padding never wins (it is -inf).

    ceil_mode=True gives PyTorch's (and Caffe's) ceil output size, by padding the bottom and
    right with -inf so that the last window still starts inside the input.
    Shape: (N, C, H, W) -> (N, C, HO, WO).
    """

    kind = "pool"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair("MaxPool2d", "kernel_size", kernel_size)
        self.stride = (pair("MaxPool2d", "stride", stride) if stride is not None
                       else self.kernel_size)
        self.padding = pair("MaxPool2d", "padding", padding, low=0)
        check_pool_padding("MaxPool2d", "padding", self.padding, self.kernel_size)
        self.ceil_mode = bool(ceil_mode)

    def _sizes(self, h, w):
        """Output size and the extra bottom/right padding ceil mode needs, per axis."""
        out, extra_pad = [], []
        for axis, size, k, s, p in (("height", h, self.kernel_size[0], self.stride[0],
                                     self.padding[0]),
                                    ("width", w, self.kernel_size[1], self.stride[1],
                                     self.padding[1])):
            if not self.ceil_mode:
                n = window_output_size("MaxPool2d", axis, size, k, s, p, floor_mode=True)
            else:
                # PyTorch: ceil((size + 2p - k) / s) + 1, less one if the last window would
                # start in the padding; a window may run past the end (torchvision's GoogLeNet
                # takes 15x15 inputs this way).
                n = (size + 2 * p - k + s - 1) // s + 1
                if n > 1 and (n - 1) * s >= size + p:
                    n -= 1
                if n < 1 or (n - 1) * s >= size + p:
                    raise ValueError(f"MaxPool2d: input {axis} {size} with pad {p} is too small "
                                     f"for kernel {axis} {k} with stride {s} (ceil mode)")
            out.append(n)
            extra_pad.append(max(0, (n - 1) * s + k - (size + 2 * p)))
        return out, extra_pad

    def _forward(self, x):
        (ho, wo), (eh, ew) = self._sizes(x.shape[2], x.shape[3])
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if eh or ew:
            x, pad_cache = _PadLayer.forward(x, (ph, ph + eh, pw, pw + ew), value=-np.inf)
            ph = pw = 0
        else:
            pad_cache = None
        param = {"pool_height": kh, "pool_width": kw, "stride": (sh, sw), "pad": (ph, pw),
                 "floor_mode": True}
        out, pool_cache = _MaxPoolLayer.forward(x, param)
        self._cache = (pad_cache, pool_cache)
        return out

    def _backward(self, dout):
        pad_cache, pool_cache = self._take_cache()
        dx = _MaxPoolLayer.backward(dout, pool_cache)
        return _PadLayer.backward(dx, pad_cache) if pad_cache is not None else dx

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        (ho, wo), _ = self._sizes(h, w)
        return (c, ho, wo)

    def _describe(self, in_shape, out_shape):
        c, ho, wo = out_shape
        kh, kw = self.kernel_size
        return {"kernel": _fmt_pair(self.kernel_size), "stride": _fmt_pair(self.stride),
                "pad": _fmt_pair(self.padding), "flops": c * ho * wo * kh * kw}

    def extra_repr(self):
        s = f"kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt_pair(self.padding)}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(Module):
    """Average pooling (zero padding counts in the divisor, PyTorch's default).

    Shape: (N, C, H, W) -> (N, C, HO, WO), HO = floor((H + 2 * padding - k) / stride) + 1.
    """

    kind = "pool"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair("AvgPool2d", "kernel_size", kernel_size)
        self.stride = (pair("AvgPool2d", "stride", stride) if stride is not None
                       else self.kernel_size)
        self.padding = pair("AvgPool2d", "padding", padding, low=0)
        check_pool_padding("AvgPool2d", "padding", self.padding, self.kernel_size)

    def _param_dict(self):
        return {"pool_height": self.kernel_size[0], "pool_width": self.kernel_size[1],
                "stride": self.stride, "pad": self.padding, "floor_mode": True}

    def _forward(self, x):
        out, self._cache = _AvgPoolLayer.forward(x, self._param_dict())
        return out

    def _backward(self, dout):
        return _AvgPoolLayer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (c, window_output_size("AvgPool2d", "height", h, kh, sh, ph, floor_mode=True),
                window_output_size("AvgPool2d", "width", w, kw, sw, pw, floor_mode=True))

    _describe = MaxPool2d._describe

    def extra_repr(self):
        s = f"kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}"
        return s + (f", padding={_fmt_pair(self.padding)}" if self.padding != (0, 0) else "")


class GlobalAvgPool(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1) (PyTorch's AdaptiveAvgPool2d(1))."""

    kind = "pool"

    def _forward(self, x):
        out, self._cache = _GlobalAvgPoolLayer.forward(x)
        return out

    def _backward(self, dout):
        return _GlobalAvgPoolLayer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (c, 1, 1)

    def _describe(self, in_shape, out_shape):
        c, h, w = in_shape
        return {"kernel": _fmt_pair((h, w)), "stride": 1, "pad": 0, "flops": c * h * w}


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size over PyTorch's adaptive bins.

    Shape: (N, C, H, W) -> (N, C, HO, WO) for output_size (HO, WO); with an input of exactly
    the output size it is the identity (torchvision's AlexNet and VGG at 224x224).
    """

    kind = "pool"

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair("AdaptiveAvgPool2d", "output_size", output_size)

    def _forward(self, x):
        out, self._cache = _AdaptiveAvgPoolLayer.forward(x, self.output_size)
        return out

    def _backward(self, dout):
        return _AdaptiveAvgPoolLayer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (c,) + self.output_size

    def _describe(self, in_shape, out_shape):
        c, h, w = in_shape
        rows = adaptive_bins(h, self.output_size[0])
        cols = adaptive_bins(w, self.output_size[1])
        # One add per input element of every bin (bins may overlap).
        flops = c * sum(r1 - r0 for r0, r1 in rows) * sum(c1 - c0 for c0, c1 in cols)
        kh, kw = max(r1 - r0 for r0, r1 in rows), max(c1 - c0 for c0, c1 in cols)
        return {"kernel": _fmt_pair((kh, kw)), "flops": flops}

    def extra_repr(self):
        return f"output_size={_fmt_pair(self.output_size)}"
