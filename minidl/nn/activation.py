"""Elementwise activation modules: ReLU, ReLU6, Sigmoid (any shape, no parameters)."""
from ..layers.activation import ReLU6 as _ReLU6Layer
from ..layers.activation import Sigmoid as _SigmoidLayer
from ..layers.linear import ReLU as _ReLULayer
from .module import Module

__all__ = ["ReLU", "ReLU6", "Sigmoid"]


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
    _layer = _ReLU6Layer


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), any shape (squeeze-and-excitation gates)."""
    _layer = _SigmoidLayer
