"""LayerNorm: PyTorch's module for (N, D) features over minidl.layers.LayerNorm."""
from ..layers._checks import positive_int
from ..layers.norm import LayerNorm as _LayerNormLayer
from . import init as _init
from .module import Module

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """Layer normalisation of each sample over its D features, then a per-feature scale
    (weight, ones) and shift (bias, zeros); the same in training and eval mode.

    Shape: (N, normalized_shape) -> (N, normalized_shape). Only 1-D features (the CS231n
    layer's case); eps as PyTorch's default, 1e-5.
    """

    kind = "norm"

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.normalized_shape = positive_int("LayerNorm", "normalized_shape", normalized_shape)
        if not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"LayerNorm: eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self._declare_param("weight", (self.normalized_shape,), _init.ones)
        self._declare_param("bias", (self.normalized_shape,), _init.zeros)

    def _forward(self, x):
        out, self._cache = _LayerNormLayer.forward(x, self._param("weight"),
                                                   self._param("bias"), {"eps": self.eps})
        return out

    def _backward(self, dout):
        dx, dgamma, dbeta = _LayerNormLayer.backward(dout, self._take_cache())
        self._accumulate("weight", dgamma)
        self._accumulate("bias", dbeta)
        return dx

    def _out_shape(self, shape):
        if shape != (self.normalized_shape,):
            raise ValueError(f"expects ({self.normalized_shape},) features per sample, got "
                             f"{shape}")
        return shape

    def extra_repr(self):
        return f"{self.normalized_shape}" + (f", eps={self.eps:g}" if self.eps != 1e-5 else "")
