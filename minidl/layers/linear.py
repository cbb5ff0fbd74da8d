"""Fully-connected layer and ReLU (EECS 498-007 A3 ``Linear``, ``ReLU``, ``Linear_ReLU``).

Symbols: N samples, D = d1 * ... * dk input features, M outputs.
"""
import numpy as np

from .. import _kernels
from ._checks import LayerCache, check_array, check_dout, check_same_dtype, check_shape, open_cache


class Linear:
    """out = x.reshape(N, D) @ w + b.

    Shape: x (N, d1, ..., dk) with D = d1 * ... * dk, w (D, M), b (M,) -> out (N, M).
    """

    @staticmethod
    def forward(x, w, b):
        """x (N, d1, ..., dk), w (D, M), b (M,) -> out (N, M), cache (x, w, b)."""
        check_array("Linear", "x", x, min_ndim=2)
        check_array("Linear", "w", w, ndim=2)
        check_array("Linear", "b", b, ndim=1)
        check_same_dtype("Linear", x=x, w=w, b=b)
        N = x.shape[0]
        D = int(np.prod(x.shape[1:]))
        if w.shape[0] != D:
            raise ValueError(f"Linear: x {x.shape} flattens to {D} features per sample but "
                             f"w {w.shape} expects {w.shape[0]}")
        check_shape("Linear", "b", b, (w.shape[1],))
        out = x.reshape(N, D) @ w + b
        return out, LayerCache("Linear", x, w)

    @staticmethod
    def backward(dout, cache):
        """dout (N, M) -> dx (N, d1, ..., dk), dw (D, M), db (M,)."""
        x, w = open_cache("Linear", cache)
        check_dout("Linear", dout, (x.shape[0], w.shape[1]), x.dtype)
        dx = (dout @ w.T).reshape(x.shape)
        dw = x.reshape(x.shape[0], -1).T @ dout
        db = dout.sum(axis=0)
        return dx, dw, db


class ReLU:
    """out = max(x, 0), elementwise, any shape."""

    @staticmethod
    def forward(x):
        """x (any shape) -> out (same shape), cache x."""
        check_array("ReLU", "x", x)
        return _kernels.relu_forward(x), LayerCache("ReLU", x)

    @staticmethod
    def backward(dout, cache):
        """dout (x's shape) -> dx; the gradient at exactly 0 is taken as 0, as the course does."""
        x, = open_cache("ReLU", cache)
        check_dout("ReLU", dout, x.shape, x.dtype)
        return _kernels.relu_backward(dout, x)


class Linear_ReLU:
    """Linear followed by ReLU (composition only: no gradient of its own)."""

    @staticmethod
    def forward(x, w, b):
        """x (N, d1, ..., dk), w (D, M), b (M,) -> out (N, M), cache."""
        a, fc_cache = Linear.forward(x, w, b)
        out, relu_cache = ReLU.forward(a)
        return out, LayerCache("Linear_ReLU", fc_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, M) -> dx (N, d1, ..., dk), dw (D, M), db (M,)."""
        fc_cache, relu_cache = open_cache("Linear_ReLU", cache)
        return Linear.backward(ReLU.backward(dout, relu_cache), fc_cache)
