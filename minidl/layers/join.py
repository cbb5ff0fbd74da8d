"""The joins of parallel paths (minidl.nn containers): add, concatenate, scale per channel.

Same API as the rest of ``minidl.layers``: static ``forward(...) -> (out, cache)`` and
``backward(dout, cache) -> grads``; float32 and float64, NCHW, output in the input's dtype.
The backward of a join returns one gradient per joined input.

    Add                  a + b of equal shapes (residual connections)
    ChannelConcat        join (N, Ci, H, W) arrays on the channel axis (Inception, DenseNet)
    ChannelScale         x * s with s (N, C, 1, 1) per channel (squeeze-and-excitation)
"""
import numpy as np

from ._checks import (LayerCache, check_array, check_dout, check_nchw, check_same_dtype,
                      check_shape, open_cache)


class Add:
    """out = a + b for arrays of one shape and dtype (a residual connection)."""

    @staticmethod
    def forward(a, b):
        """a, b (same shape) -> out, cache."""
        check_array("Add", "a", a)
        check_array("Add", "b", b)
        check_same_dtype("Add", a=a, b=b)
        if a.shape != b.shape:
            raise ValueError(f"Add: a and b must have the same shape, got a {a.shape} and "
                             f"b {b.shape}")
        return a + b, LayerCache("Add", a.shape, a.dtype)

    @staticmethod
    def backward(dout, cache):
        """dout -> (da, db): the sum passes its gradient to both inputs unchanged."""
        shape, dtype = open_cache("Add", cache)
        check_dout("Add", dout, shape, dtype)
        return dout, dout


class ChannelConcat:
    """Join arrays (N, C_i, H, W) on the channel axis -> (N, sum C_i, H, W)."""

    @staticmethod
    def forward(xs):
        """xs: a list of (N, C_i, H, W) arrays of one dtype -> out (N, sum C_i, H, W), cache."""
        if not isinstance(xs, (list, tuple)) or not xs:
            raise TypeError("ChannelConcat: xs must be a non-empty list of arrays")
        for i, x in enumerate(xs):
            check_nchw("ChannelConcat", f"xs[{i}]", x)
        check_same_dtype("ChannelConcat", **{f"xs[{i}]": x for i, x in enumerate(xs)})
        n, _, h, w = xs[0].shape
        for i, x in enumerate(xs):
            if (x.shape[0], x.shape[2], x.shape[3]) != (n, h, w):
                raise ValueError(f"ChannelConcat: xs[{i}] has shape {x.shape} but xs[0] has "
                                 f"{xs[0].shape}: only the channel counts may differ")
        sizes = [x.shape[1] for x in xs]
        return (np.concatenate(xs, axis=1),
                LayerCache("ChannelConcat", sizes, xs[0].shape, xs[0].dtype))

    @staticmethod
    def backward(dout, cache):
        """dout (N, sum C_i, H, W) -> a list of dxs_i (N, C_i, H, W)."""
        sizes, shape0, dtype = open_cache("ChannelConcat", cache)
        check_dout("ChannelConcat", dout, (shape0[0], sum(sizes)) + shape0[2:], dtype)
        bounds = np.cumsum([0] + sizes)
        return [np.ascontiguousarray(dout[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class ChannelScale:
    """out = x * s: each channel of each image scaled by one number (squeeze-and-excitation).

    Shape: x (N, C, H, W), s (N, C, 1, 1) -> out (N, C, H, W).
    """

    @staticmethod
    def forward(x, s):
        """x (N, C, H, W), s (N, C, 1, 1) -> out (N, C, H, W), cache."""
        check_nchw("ChannelScale", "x", x)
        check_array("ChannelScale", "s", s)
        check_same_dtype("ChannelScale", x=x, s=s)
        check_shape("ChannelScale", "s", s, x.shape[:2] + (1, 1))
        return x * s, LayerCache("ChannelScale", x, s)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx = dout * s, ds = sum over H, W of dout * x."""
        x, s = open_cache("ChannelScale", cache)
        check_dout("ChannelScale", dout, x.shape, x.dtype)
        return dout * s, (dout * x).sum(axis=(2, 3), keepdims=True)
