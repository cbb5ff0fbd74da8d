"""Linear (PyTorch's (out, in) weight over minidl.layers.Linear) and Identity.

Output shape for one sample: Linear (D,) -> (M,); Identity keeps its input's shape.
"""
import numpy as np

from ..layers._checks import positive_int
from ..layers.linear import Linear as _LinearLayer
from . import init as _init
from .module import Module

__all__ = ["Linear", "Identity"]


class Linear(Module):
    """Fully-connected layer through minidl.layers.Linear.

    Shape: (N, in_features) -> (N, out_features); weight (out_features, in_features) as in
    PyTorch (the layer's w is its transpose), bias (out_features,). PyTorch's default
    initialisation: U(-1/sqrt(in), 1/sqrt(in)) for both.
    """

    kind = "linear"
    regularized_params = ("weight",)

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


class Identity(Module):
    """out = x."""

    def _forward(self, x):
        return x

    def _backward(self, dout):
        return dout

    def _out_shape(self, shape):
        return shape
