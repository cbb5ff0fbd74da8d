"""Stateless layers the architectures need beyond the coursework set.

Same API as the rest of ``minidl.layers``: static ``forward(...) -> (out, cache)`` and
``backward(dout, cache) -> grads``; float32 and float64, NCHW, output in the input's dtype.
``minidl.nn`` modules and containers call these, so each gradient below exists once.

    Flatten              (N, d1, ..., dk) -> (N, d1*...*dk)
    Sigmoid, ReLU6       elementwise activations (squeeze-and-excitation, MobileNet v2)
    Add                  a + b of equal shapes (residual connections)
    ChannelConcat        join (N, Ci, H, W) arrays on the channel axis (Inception, DenseNet)
    ChannelSlice         x[:, start:stop] (ShuffleNet v2's channel split)
    ChannelShuffle       interleave G channel groups (ShuffleNet)
    ChannelScale         x * s with s (N, C, 1, 1) per channel (squeeze-and-excitation)
    Pad                  constant padding of H and W, asymmetric allowed (ceil-mode pooling)
    Subsample            x[:, :, ::s, ::s] (the ResNet paper's parameter-free shortcut)
    ChannelPad           zero channels before/after (the same shortcut)
    AdaptiveAvgPool      average over PyTorch's adaptive bins to a fixed output size
"""
import numpy as np

from ._checks import (check_array, check_dout, check_same_dtype, check_shape, nonneg_int, pair,
                      positive_int)



def _check_4d(layer, name, x):
    check_array(layer, name, x)
    if x.ndim != 4:
        raise ValueError(f"{layer}: {name} must be 4-D (N, C, H, W), got shape {x.shape}")


class Flatten:
    """x (N, d1, ..., dk) -> out (N, d1 * ... * dk) (a view when x is contiguous)."""

    @staticmethod
    def forward(x):
        """x (N, d1, ..., dk) -> out (N, D), cache."""
        check_array("Flatten", "x", x, min_ndim=1)
        return x.reshape(x.shape[0], -1), (x.shape, x.dtype)

    @staticmethod
    def backward(dout, cache):
        """dout (N, D) -> dx (N, d1, ..., dk)."""
        shape, dtype = cache
        check_dout("Flatten", dout, (shape[0], int(np.prod(shape[1:], dtype=np.int64))), dtype)
        return dout.reshape(shape)


class Sigmoid:
    """out = 1 / (1 + exp(-x)), elementwise, computed without overflow for large |x|."""

    @staticmethod
    def forward(x):
        """x (any shape) -> out (same shape), cache out."""
        check_array("Sigmoid", "x", x)
        # exp of a non-positive number only: exp(-|x|) never overflows.
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return out, out

    @staticmethod
    def backward(dout, cache):
        """dout -> dx = dout * out * (1 - out)."""
        out = cache
        check_dout("Sigmoid", dout, out.shape, out.dtype)
        return dout * out * (1 - out)


class ReLU6:
    """out = min(max(x, 0), 6), elementwise (MobileNet v2). Gradient 0 at exactly 0 and 6."""

    @staticmethod
    def forward(x):
        """x (any shape) -> out (same shape), cache x."""
        check_array("ReLU6", "x", x)
        return np.clip(x, 0, 6), x

    @staticmethod
    def backward(dout, cache):
        """dout -> dx = dout where 0 < x < 6, else 0."""
        x = cache
        check_dout("ReLU6", dout, x.shape, x.dtype)
        return dout * ((x > 0) & (x < 6))


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
        return a + b, (a.shape, a.dtype)

    @staticmethod
    def backward(dout, cache):
        """dout -> (da, db): the sum passes its gradient to both inputs unchanged."""
        shape, dtype = cache
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
            _check_4d("ChannelConcat", f"xs[{i}]", x)
        check_same_dtype("ChannelConcat", **{f"xs[{i}]": x for i, x in enumerate(xs)})
        n, _, h, w = xs[0].shape
        for i, x in enumerate(xs):
            if (x.shape[0], x.shape[2], x.shape[3]) != (n, h, w):
                raise ValueError(f"ChannelConcat: xs[{i}] has shape {x.shape} but xs[0] has "
                                 f"{xs[0].shape}: only the channel counts may differ")
        sizes = [x.shape[1] for x in xs]
        return np.concatenate(xs, axis=1), (sizes, xs[0].shape, xs[0].dtype)

    @staticmethod
    def backward(dout, cache):
        """dout (N, sum C_i, H, W) -> a list of dxs_i (N, C_i, H, W)."""
        sizes, shape0, dtype = cache
        check_dout("ChannelConcat", dout, (shape0[0], sum(sizes)) + shape0[2:], dtype)
        bounds = np.cumsum([0] + sizes)
        return [np.ascontiguousarray(dout[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class ChannelSlice:
    """out = x[:, start:stop] (N, stop - start, H, W), a copy."""

    @staticmethod
    def forward(x, start, stop):
        """x (N, C, H, W), 0 <= start < stop <= C -> out (N, stop - start, H, W), cache."""
        _check_4d("ChannelSlice", "x", x)
        start = nonneg_int("ChannelSlice", "start", start)
        stop = positive_int("ChannelSlice", "stop", stop)
        if not start < stop <= x.shape[1]:
            raise ValueError(f"ChannelSlice: need 0 <= start < stop <= channels, got start "
                             f"{start}, stop {stop} for x {x.shape}")
        return np.ascontiguousarray(x[:, start:stop]), (x.shape, x.dtype, start, stop)

    @staticmethod
    def backward(dout, cache):
        """dout (N, stop - start, H, W) -> dx (N, C, H, W), zero outside the slice."""
        shape, dtype, start, stop = cache
        check_dout("ChannelSlice", dout, (shape[0], stop - start) + shape[2:], dtype)
        dx = np.zeros(shape, dtype=dtype)
        dx[:, start:stop] = dout
        return dx


class ChannelShuffle:
    """ShuffleNet's channel shuffle with G groups: channel g * (C/G) + i moves to i * G + g.

    Shape: x (N, C, H, W) with C divisible by G -> out (N, C, H, W).
    """

    @staticmethod
    def forward(x, groups):
        """x (N, C, H, W), groups G -> out (N, C, H, W), cache."""
        _check_4d("ChannelShuffle", "x", x)
        g = positive_int("ChannelShuffle", "groups", groups)
        n, c, h, w = x.shape
        if c % g:
            raise ValueError(f"ChannelShuffle: groups={g} must divide the channels of x {x.shape}")
        out = x.reshape(n, g, c // g, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
        return out, (x.shape, x.dtype, g)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx: the inverse permutation (a shuffle with C/G groups)."""
        shape, dtype, g = cache
        check_dout("ChannelShuffle", dout, shape, dtype)
        n, c, h, w = shape
        return dout.reshape(n, c // g, g, h, w).transpose(0, 2, 1, 3, 4).reshape(shape)


class ChannelScale:
    """out = x * s: each channel of each image scaled by one number (squeeze-and-excitation).

    Shape: x (N, C, H, W), s (N, C, 1, 1) -> out (N, C, H, W).
    """

    @staticmethod
    def forward(x, s):
        """x (N, C, H, W), s (N, C, 1, 1) -> out (N, C, H, W), cache."""
        _check_4d("ChannelScale", "x", x)
        check_array("ChannelScale", "s", s)
        check_same_dtype("ChannelScale", x=x, s=s)
        check_shape("ChannelScale", "s", s, x.shape[:2] + (1, 1))
        return x * s, (x, s)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx = dout * s, ds = sum over H, W of dout * x."""
        x, s = cache
        check_dout("ChannelScale", dout, x.shape, x.dtype)
        return dout * s, (dout * x).sum(axis=(2, 3), keepdims=True)


class Pad:
    """Constant padding of the spatial axes: pad = (top, bottom, left, right).

    Shape: x (N, C, H, W) -> out (N, C, H + top + bottom, W + left + right). ``value`` may
    be -inf (max pooling in PyTorch's ceil mode pads so that padding never wins).
    """

    @staticmethod
    def forward(x, pad, value=0.0):
        """x (N, C, H, W), pad (top, bottom, left, right), value -> out, cache."""
        _check_4d("Pad", "x", x)
        if not isinstance(pad, (tuple, list)) or len(pad) != 4:
            raise ValueError(f"Pad: pad must be (top, bottom, left, right), got {pad!r}")
        t, b, l, r = (nonneg_int("Pad", "pad", p) for p in pad)
        out = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)
        return out, (x.shape, x.dtype, (t, b, l, r))

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H + t + b, W + l + r) -> dx (N, C, H, W): the interior."""
        shape, dtype, (t, b, l, r) = cache
        n, c, h, w = shape
        check_dout("Pad", dout, (n, c, h + t + b, w + l + r), dtype)
        return np.ascontiguousarray(dout[:, :, t:t + h, l:l + w])


class Subsample:
    """out = x[:, :, ::stride, ::stride] (keeps every stride-th row and column)."""

    @staticmethod
    def forward(x, stride):
        """x (N, C, H, W), stride s -> out (N, C, ceil(H/s), ceil(W/s)), cache."""
        _check_4d("Subsample", "x", x)
        sh, sw = pair("Subsample", "stride", stride)
        return np.ascontiguousarray(x[:, :, ::sh, ::sw]), (x.shape, x.dtype, sh, sw)

    @staticmethod
    def backward(dout, cache):
        """dout -> dx (N, C, H, W), zero at the rows and columns that were dropped."""
        shape, dtype, sh, sw = cache
        n, c, h, w = shape
        check_dout("Subsample", dout, (n, c, -(-h // sh), -(-w // sw)), dtype)
        dx = np.zeros(shape, dtype=dtype)
        dx[:, :, ::sh, ::sw] = dout
        return dx


class ChannelPad:
    """Zero channels added before and after: (N, C, H, W) -> (N, before + C + after, H, W)."""

    @staticmethod
    def forward(x, before, after):
        """x (N, C, H, W), before, after -> out (N, before + C + after, H, W), cache."""
        _check_4d("ChannelPad", "x", x)
        a = nonneg_int("ChannelPad", "before", before)
        b = nonneg_int("ChannelPad", "after", after)
        return np.pad(x, ((0, 0), (a, b), (0, 0), (0, 0))), (x.shape, x.dtype, a)

    @staticmethod
    def backward(dout, cache):
        """dout (N, before + C + after, H, W) -> dx (N, C, H, W)."""
        shape, dtype, a = cache
        check_array("ChannelPad", "dout", dout, ndim=4)
        check_dout("ChannelPad", dout, (shape[0], dout.shape[1]) + shape[2:], dtype)
        return np.ascontiguousarray(dout[:, a:a + shape[1]])


def adaptive_bins(size, out_size):
    """PyTorch's adaptive pooling bins along one axis: [(start, end), ...] with
    start = floor(i * size / out_size), end = ceil((i + 1) * size / out_size)."""
    return [((i * size) // out_size, -(-((i + 1) * size) // out_size)) for i in range(out_size)]


class AdaptiveAvgPool:
    """Average pooling to a fixed output size over PyTorch's adaptive bins (bins may overlap
    or differ in size by one; an output larger than the input repeats input values).

    Shape: x (N, C, H, W), output_size (HO, WO) -> out (N, C, HO, WO).
    """

    @staticmethod
    def forward(x, output_size):
        """x (N, C, H, W), output_size int or (HO, WO) -> out (N, C, HO, WO), cache."""
        _check_4d("AdaptiveAvgPool", "x", x)
        ho, wo = pair("AdaptiveAvgPool", "output_size", output_size)
        n, c, h, w = x.shape
        rows, cols = adaptive_bins(h, ho), adaptive_bins(w, wo)
        out = np.empty((n, c, ho, wo), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return out, (x.shape, x.dtype, rows, cols)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, HO, WO) -> dx (N, C, H, W): each bin's gradient shared equally."""
        shape, dtype, rows, cols = cache
        check_dout("AdaptiveAvgPool", dout, shape[:2] + (len(rows), len(cols)), dtype)
        dx = np.zeros(shape, dtype=dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                share = dout[:, :, i, j] / ((r1 - r0) * (c1 - c0))
                dx[:, :, r0:r1, c0:c1] += share[:, :, None, None]
        return dx
