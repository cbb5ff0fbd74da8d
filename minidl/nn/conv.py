"""Conv2d: the convolution module (PyTorch's constructor and weight layout) over FastConv.

Output shape for one sample (no batch axis): (C, H, W) -> (F, HO, WO) with
HO = floor((H + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1 (PyTorch's floor size:
the module passes floor_mode=True to the layer). Sizes, multiply-adds and the algorithm come
from the convolution plan (minidl._kernels.convolution), which the module keeps for the last
input shape it saw.
"""
from .. import _kernels
from .._kernels import convolution
from ..layers._checks import pair, positive_int
from ..layers.conv import FastConv
from . import init as _init
from .module import Module, _fmt_pair, _image_shape

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D convolution through FastConv (im2col + GEMM, compiled kernels when built).

    Shape: (N, in_channels, H, W) -> (N, out_channels, HO, WO); weight
    (out_channels, in_channels // groups, kh, kw), bias (out_channels,) when bias=True.
    Weights start Kaiming-normal (fan_out, as torchvision's ResNets), biases at zero.
    """

    kind = "conv"
    regularized_params = ("weight",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True):
        super().__init__()
        name = "Conv2d"
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = pair(name, "kernel_size", kernel_size)
        self.stride = pair(name, "stride", stride)
        self.padding = pair(name, "padding", padding, low=0)
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

    def _plan(self, x, w, b):
        """The ConvPlan for this input, kept while shape, dtype and settings stay the same."""
        key = (x.shape, x.dtype.char, convolution.settings_version())
        held = self.__dict__.get("_plan_held")
        if held is not None and held[0] == key:
            return held[1]
        plan = _kernels.plan_conv("Conv2d", x, w, b, self._conv_param())
        self.__dict__["_plan_held"] = (key, plan)
        return plan

    def _forward(self, x):
        w = self._param("weight")
        b = self._param("bias") if self.has_bias else None
        out, self._cache = FastConv.run(self._plan(x, w, b), x, w, b)
        return out

    def _backward(self, dout):
        dx, dw, db = FastConv.backward(dout, self._take_cache())
        self._accumulate("weight", dw)
        if self.has_bias:
            self._accumulate("bias", db)
        return dx

    def _geometry(self, shape):
        """The plan's validated sizes for one sample of shape (C, H, W), without data."""
        c, h, w = _image_shape(shape)
        if c != self.in_channels:
            raise ValueError(f"expects {self.in_channels} input channels, got {c}")
        return convolution.conv_geometry(
            "Conv2d", (1, c, h, w), (self.out_channels, c // self.groups) + self.kernel_size,
            self.has_bias, self.dtype, self.stride, self.padding, self.dilation, self.groups,
            floor_mode=True)

    def _out_shape(self, shape):
        return self._geometry(shape).out_shape[1:]

    def _describe(self, in_shape, out_shape):
        return {"filters": self.out_channels, "kernel": _fmt_pair(self.kernel_size),
                "stride": _fmt_pair(self.stride), "pad": _fmt_pair(self.padding),
                "flops": self._geometry(in_shape).macs_per_image}

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
