"""Elementwise activations the architectures add to the coursework's ReLU (minidl.layers.linear).

Same API as the rest of ``minidl.layers``: static ``forward(x) -> (out, cache)`` and
``backward(dout, cache) -> dx``; any shape, float32 and float64, output in the input's dtype.

    Sigmoid     1 / (1 + exp(-x)) (squeeze-and-excitation gates)
    ReLU6       min(max(x, 0), 6) (MobileNet v2)
"""
import numpy as np

from ._checks import LayerCache, check_array, check_dout, open_cache


class Sigmoid:
    """out = 1 / (1 + exp(-x)), elementwise, computed without overflow for large |x|."""

    @staticmethod
    def forward(x):
        """x (any shape) -> out (same shape), cache out."""
        check_array("Sigmoid", "x", x)
        # exp of a non-positive number only: exp(-|x|) never overflows.
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return out, LayerCache("Sigmoid", out)

    @staticmethod
    def backward(dout, cache):
        """dout -> dx = dout * out * (1 - out)."""
        out, = open_cache("Sigmoid", cache)
        check_dout("Sigmoid", dout, out.shape, out.dtype)
        return dout * out * (1 - out)


class ReLU6:
    """out = min(max(x, 0), 6), elementwise (MobileNet v2). Gradient 0 at exactly 0 and 6."""

    @staticmethod
    def forward(x):
        """x (any shape) -> out (same shape), cache x."""
        check_array("ReLU6", "x", x)
        return np.clip(x, 0, 6), LayerCache("ReLU6", x)

    @staticmethod
    def backward(dout, cache):
        """dout -> dx = dout where 0 < x < 6, else 0."""
        x, = open_cache("ReLU6", cache)
        check_dout("ReLU6", dout, x.shape, x.dtype)
        return dout * ((x > 0) & (x < 6))
