"""Layer modules: each holds its parameters and calls one stateless layer of minidl.layers.

Constructors and defaults follow PyTorch (Conv2d(in, out, kernel_size, stride, padding,
dilation, groups, bias), BatchNorm2d(num_features, eps=1e-5, momentum=0.1), Dropout(p=0.5),
MaxPool2d(kernel_size, stride=None, padding=0, ceil_mode=False)), and so do the weight
shapes: Conv2d (out, in // groups, kh, kw), Linear (out, in). Windows use PyTorch's output
size (floor division: nn modules pass floor_mode=True to the layers).

Output shapes are for one sample (no batch axis): Conv2d (C, H, W) -> (F, HO, WO) with
HO = floor((H + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1; Linear (D,) -> (M,).
"""
import numpy as np

from ..layers import extra
from ..layers._checks import nonneg_int, pair, positive_int, window_output_size
from ..layers.conv import FastConv
from ..layers.dropout import Dropout as _DropoutLayer
from ..layers.linear import Linear as _LinearLayer
from ..layers.linear import ReLU as _ReLULayer
from ..layers.norm import BatchNorm as _BatchNormLayer
from ..layers.norm import SpatialBatchNorm as _SpatialBatchNormLayer
from ..layers.pool import AvgPool as _AvgPoolLayer
from ..layers.pool import FastMaxPool as _MaxPoolLayer
from ..layers.pool import GlobalAvgPool as _GlobalAvgPoolLayer
from . import init as _init
from .module import Module

__all__ = ["Conv2d", "Linear", "ReLU", "ReLU6", "Sigmoid", "Identity", "MaxPool2d",
           "AvgPool2d", "GlobalAvgPool", "AdaptiveAvgPool2d", "BatchNorm2d", "BatchNorm1d",
           "Dropout", "Flatten", "ChannelShuffle", "ChannelSlice", "Subsample", "ChannelPad"]


def _image_shape(shape):
    if len(shape) != 3:
        raise ValueError(f"expects (C, H, W) per sample (no batch axis), got {shape}")
    return shape


def _fmt_pair(v):
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


# ---------------------------------------------------------------------------- convolution
class Conv2d(Module):
    """2-D convolution through FastConv (im2col + GEMM, compiled kernels when built).

    Shape: (N, in_channels, H, W) -> (N, out_channels, HO, WO); weight
    (out_channels, in_channels // groups, kh, kw), bias (out_channels,) when bias=True.
    Weights start Kaiming-normal (fan_out, as torchvision's ResNets), biases at zero.
    """

    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True):
        super().__init__()
        name = "Conv2d"
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = pair(name, "kernel_size", kernel_size)
        self.stride = pair(name, "stride", stride)
        self.padding = pair(name, "padding", padding, nonneg_int)
        self.dilation = pair(name, "dilation", dilation)
        self.groups = positive_int(name, "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"Conv2d: groups={self.groups} must divide in_channels "
                             f"{self.in_channels} and out_channels {self.out_channels}")
        self.has_bias = bool(bias)
        self._declare_param("weight", (self.out_channels, self.in_channels // self.groups)
                            + self.kernel_size, _init.kaiming_normal("fan_out"))
        if self.has_bias:
            self._declare_param("bias", (self.out_channels,), _init.zeros)

    def _conv_param(self):
        return {"stride": self.stride, "pad": self.padding, "dilation": self.dilation,
                "groups": self.groups, "floor_mode": True}

    def _forward(self, x):
        b = self._param("bias") if self.has_bias else None
        out, self._cache = FastConv.forward(x, self._param("weight"), b, self._conv_param())
        return out

    def _backward(self, dout):
        dx, dw, db = FastConv.backward(dout, self._take_cache())
        self._accumulate("weight", dw)
        if self.has_bias:
            self._accumulate("bias", db)
        return dx

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        if c != self.in_channels:
            raise ValueError(f"expects {self.in_channels} input channels, got {c}")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (self.kernel_size, self.stride, self.padding,
                                                  self.dilation)
        ho = window_output_size("Conv2d", "height", h, kh, sh, ph, dh, floor_mode=True)
        wo = window_output_size("Conv2d", "width", w, kw, sw, pw, dw, floor_mode=True)
        return (self.out_channels, ho, wo)

    def _describe(self, in_shape, out_shape):
        f, ho, wo = out_shape
        kh, kw = self.kernel_size
        macs = f * ho * wo * (self.in_channels // self.groups) * kh * kw
        return {"filters": self.out_channels, "kernel": _fmt_pair(self.kernel_size),
                "stride": _fmt_pair(self.stride), "pad": _fmt_pair(self.padding), "flops": macs}

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt_pair(self.kernel_size)}"
        for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
            v = getattr(self, key)
            if v != default:
                s += f", {key}={_fmt_pair(v)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.has_bias:
            s += ", bias=False"
        return s


class Linear(Module):
    """Fully-connected layer through minidl.layers.Linear.

    Shape: (N, in_features) -> (N, out_features); weight (out_features, in_features) as in
    PyTorch (the layer's w is its transpose), bias (out_features,). PyTorch's default
    initialisation: U(-1/sqrt(in), 1/sqrt(in)) for both.
    """

    kind = "linear"

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.has_bias = bool(bias)
        init = _init.uniform_fan_in(self.in_features)
        self._declare_param("weight", (self.out_features, self.in_features), init)
        if self.has_bias:
            self._declare_param("bias", (self.out_features,), init)

    def _forward(self, x):
        b = self._param("bias") if self.has_bias else np.zeros(self.out_features, x.dtype)
        out, self._cache = _LinearLayer.forward(x, self._param("weight").T, b)
        return out

    def _backward(self, dout):
        dx, dw, db = _LinearLayer.backward(dout, self._take_cache())
        self._accumulate("weight", dw.T)
        if self.has_bias:
            self._accumulate("bias", db)
        return dx

    def _out_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(f"expects ({self.in_features},) features per sample, got {shape} "
                             "(put a Flatten in front of it)")
        if shape[0] != self.in_features:
            raise ValueError(f"expects {self.in_features} input features, got {shape[0]}")
        return (self.out_features,)

    def _describe(self, in_shape, out_shape):
        return {"filters": self.out_features, "flops": self.in_features * self.out_features}

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if self.has_bias else ", bias=False"))


# ---------------------------------------------------------------------------- elementwise
class _Elementwise(Module):
    """A parameter-free layer whose output has its input's shape: layer.forward(x)."""

    kind = "act"
    _layer = None

    def _forward(self, x):
        out, self._cache = self._layer.forward(x)
        return out

    def _backward(self, dout):
        return self._layer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        return shape


class ReLU(_Elementwise):
    """max(x, 0), any shape (minidl.layers.ReLU)."""
    _layer = _ReLULayer


class ReLU6(_Elementwise):
    """min(max(x, 0), 6), any shape (MobileNet v2)."""
    _layer = extra.ReLU6


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), any shape (squeeze-and-excitation gates)."""
    _layer = extra.Sigmoid


class Identity(Module):
    """out = x."""

    def _forward(self, x):
        return x

    def _backward(self, dout):
        return dout

    def _out_shape(self, shape):
        return shape


class Dropout(Module):
    """Inverted dropout: in training each unit is zeroed with probability p (PyTorch's p,
    which is also EECS 498's); the identity in eval mode. Masks come from NumPy's global
    generator, so np.random.seed makes them repeatable."""

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p is the probability of dropping and must be in [0, 1), "
                             f"got {p!r}")
        self.p = float(p)

    def _forward(self, x):
        param = {"p": self.p, "mode": "train" if self.training else "test"}
        out, self._cache = _DropoutLayer.forward(x, param)
        return out

    def _backward(self, dout):
        return _DropoutLayer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        return shape

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """(N, d1, ..., dk) -> (N, d1 * ... * dk)."""

    def _forward(self, x):
        out, self._cache = extra.Flatten.forward(x)
        return out

    def _backward(self, dout):
        return extra.Flatten.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        return (int(np.prod(shape, dtype=np.int64)),)


# ---------------------------------------------------------------------------- pooling
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
        self.padding = pair("MaxPool2d", "padding", padding, nonneg_int)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the kernel "
                             f"size {self.kernel_size}")
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
            x, pad_cache = extra.Pad.forward(x, (ph, ph + eh, pw, pw + ew), value=-np.inf)
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
        return extra.Pad.backward(dx, pad_cache) if pad_cache is not None else dx

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
        self.padding = pair("AvgPool2d", "padding", padding, nonneg_int)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"AvgPool2d: padding {self.padding} must be at most half the kernel "
                             f"size {self.kernel_size}")

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
        out, self._cache = extra.AdaptiveAvgPool.forward(x, self.output_size)
        return out

    def _backward(self, dout):
        return extra.AdaptiveAvgPool.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (c,) + self.output_size

    def _describe(self, in_shape, out_shape):
        c, h, w = in_shape
        rows = extra.adaptive_bins(h, self.output_size[0])
        cols = extra.adaptive_bins(w, self.output_size[1])
        # One add per input element of every bin (bins may overlap).
        flops = c * sum(r1 - r0 for r0, r1 in rows) * sum(c1 - c0 for c0, c1 in cols)
        kh, kw = max(r1 - r0 for r0, r1 in rows), max(c1 - c0 for c0, c1 in cols)
        return {"kernel": _fmt_pair((kh, kw)), "flops": flops}

    def extra_repr(self):
        return f"output_size={_fmt_pair(self.output_size)}"


# ---------------------------------------------------------------------------- normalisation
class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: PyTorch's arguments, the course's bn_param underneath.

    PyTorch's momentum m weighs the NEW batch (running = (1 - m) * running + m * batch); the
    course's bn_param momentum weighs the OLD value, so the layer gets 1 - m. Running
    variances use the unbiased batch variance, as PyTorch's do.
    """

    kind = "norm"
    _layer = None
    _ndim = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        if not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum (PyTorch's: the weight of the new batch) must be "
                             f"in [0, 1], got {momentum!r}")
        self.eps, self.momentum = float(eps), float(momentum)
        self._declare_param("weight", (self.num_features,), _init.ones)
        self._declare_param("bias", (self.num_features,), _init.zeros)
        self._declare_buffer("running_mean", np.zeros(self.num_features))
        self._declare_buffer("running_var", np.ones(self.num_features))

    def _forward(self, x):
        bn_param = {"mode": "train" if self.training else "test", "eps": self.eps,
                    "momentum": 1.0 - self.momentum, "unbiased_running_var": True,
                    "running_mean": self._buffers["running_mean"],
                    "running_var": self._buffers["running_var"]}
        out, self._cache = self._layer.forward(x, self._param("weight"), self._param("bias"),
                                               bn_param)
        # The layer writes new running statistics into the dict (the course's convention).
        self._buffers["running_mean"] = bn_param["running_mean"]
        self._buffers["running_var"] = bn_param["running_var"]
        return out

    def _backward(self, dout):
        dx, dgamma, dbeta = self._layer.backward(dout, self._take_cache())
        self._accumulate("weight", dgamma)
        self._accumulate("bias", dbeta)
        return dx

    def _out_shape(self, shape):
        if len(shape) != self._ndim:
            want = "(C, H, W)" if self._ndim == 3 else "(D,)"
            raise ValueError(f"expects {want} per sample, got {shape}")
        if shape[0] != self.num_features:
            raise ValueError(f"expects {self.num_features} channels, got {shape[0]}")
        return shape

    def extra_repr(self):
        s = f"{self.num_features}"
        if self.eps != 1e-5:
            s += f", eps={self.eps:g}"
        if self.momentum != 0.1:
            s += f", momentum={self.momentum:g}"
        return s


class BatchNorm2d(_BatchNorm):
    """Spatial batch norm over N, H, W per channel: (N, C, H, W) -> (N, C, H, W)."""
    _layer = _SpatialBatchNormLayer
    _ndim = 3


class BatchNorm1d(_BatchNorm):
    """Batch norm over N per feature: (N, D) -> (N, D)."""
    _layer = _BatchNormLayer
    _ndim = 1


# ---------------------------------------------------------------------------- channel ops
class ChannelShuffle(Module):
    """ShuffleNet's channel shuffle with `groups` groups: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = positive_int("ChannelShuffle", "groups", groups)

    def _forward(self, x):
        out, self._cache = extra.ChannelShuffle.forward(x, self.groups)
        return out

    def _backward(self, dout):
        return extra.ChannelShuffle.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        if c % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {c} channels")
        return shape

    def extra_repr(self):
        return f"groups={self.groups}"


class ChannelSlice(Module):
    """x[:, start:stop]: (N, C, H, W) -> (N, stop - start, H, W) (ShuffleNet v2's split)."""

    def __init__(self, start, stop):
        super().__init__()
        self.start = nonneg_int("ChannelSlice", "start", start)
        self.stop = positive_int("ChannelSlice", "stop", stop)
        if self.start >= self.stop:
            raise ValueError(f"ChannelSlice: start {start} must be below stop {stop}")

    def _forward(self, x):
        out, self._cache = extra.ChannelSlice.forward(x, self.start, self.stop)
        return out

    def _backward(self, dout):
        return extra.ChannelSlice.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        if self.stop > c:
            raise ValueError(f"slice {self.start}:{self.stop} needs at least {self.stop} "
                             f"channels, got {c}")
        return (self.stop - self.start, h, w)

    def extra_repr(self):
        return f"{self.start}, {self.stop}"


class Subsample(Module):
    """x[:, :, ::stride, ::stride] (the ResNet paper's option-A shortcut, with ChannelPad)."""

    def __init__(self, stride):
        super().__init__()
        self.stride = pair("Subsample", "stride", stride)

    def _forward(self, x):
        out, self._cache = extra.Subsample.forward(x, self.stride)
        return out

    def _backward(self, dout):
        return extra.Subsample.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (c, -(-h // self.stride[0]), -(-w // self.stride[1]))

    def extra_repr(self):
        return f"stride={_fmt_pair(self.stride)}"


class ChannelPad(Module):
    """Zero channels before and after: (N, C, H, W) -> (N, before + C + after, H, W)."""

    def __init__(self, before, after):
        super().__init__()
        self.before = nonneg_int("ChannelPad", "before", before)
        self.after = nonneg_int("ChannelPad", "after", after)

    def _forward(self, x):
        out, self._cache = extra.ChannelPad.forward(x, self.before, self.after)
        return out

    def _backward(self, dout):
        return extra.ChannelPad.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (self.before + c + self.after, h, w)

    def extra_repr(self):
        return f"before={self.before}, after={self.after}"
