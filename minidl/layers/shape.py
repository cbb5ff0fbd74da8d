"""Layers that move, copy or pad elements without arithmetic: reshapes, crops, padding.

Same API as the rest of ``minidl.layers``: static ``forward(...) -> (out, cache)`` and
``backward(dout, cache) -> grads``; float32 and float64, NCHW, output in the input's dtype.

    Flatten              (N, d1, ..., dk) -> (N, d1*...*dk)
    ChannelSlice         x[:, start:stop] (ShuffleNet v2's channel split)
    ChannelShuffle       interleave G channel groups (ShuffleNet)
    Pad                  constant padding of H and W, asymmetric allowed (ceil-mode pooling)
    Subsample            x[:, :, ::s, ::s] (the ResNet paper's parameter-free shortcut)
    ChannelPad           zero channels before/after (the same shortcut)
"""
import numpy as np

from ._checks import (LayerCache, check_array, check_dout, check_nchw, nonneg_int, open_cache,
                      pair, positive_int)


class Flatten:
    """x (N, d1, ..., dk) -> out (N, d1 * ... * dk) (a view when x is contiguous)."""

    @staticmethod
    def forward(x):
        """x (N, d1, ..., dk) -> out (N, D), cache."""
        check_array("Flatten", "x", x, min_ndim=1)
        return x.reshape(x.shape[0], -1), LayerCache("Flatten", x.shape, x.dtype)

    @staticmethod
    def backward(dout, cache):
        """dout (N, D) -> dx (N, d1, ..., dk)."""
        shape, dtype = open_cache("Flatten", cache)
        check_dout("Flatten", dout, (shape[0], int(np.prod(shape[1:], dtype=np.int64))), dtype)
        return dout.reshape(shape)


def channel_slice_bounds(layer, start, stop, channels=None, where=""):
    """(start, stop) as ints with 0 <= start < stop, and stop <= channels when channels is
    given; ValueError naming layer (and ``where``, e.g. the input's shape) otherwise.
    ChannelSlice and nn.ChannelSlice (at construction, then in shape inference) check here."""
    start = nonneg_int(layer, "start", start)
    stop = positive_int(layer, "stop", stop)
    if start >= stop:
        raise ValueError(f"{layer}: start {start} must be below stop {stop}")
    if channels is not None and stop > channels:
        raise ValueError(f"{layer}: stop {stop} must be at most the number of channels, "
                         f"{channels}{where} (slice {start}:{stop})")
    return start, stop


def subsampled_size(size, stride):
    """Rows (or columns) that x[::stride] keeps of size: ceil(size / stride)."""
    return -(-size // stride)


class ChannelSlice:
    """out = x[:, start:stop] (N, stop - start, H, W), a copy."""

    @staticmethod
    def forward(x, start, stop):
        """x (N, C, H, W), 0 <= start < stop <= C -> out (N, stop - start, H, W), cache."""
        check_nchw("ChannelSlice", "x", x)
        start, stop = channel_slice_bounds("ChannelSlice", start, stop, x.shape[1],
                                           f" (x {x.shape})")
        return np.ascontiguousarray(x[:, start:stop]), LayerCache("ChannelSlice", x.shape, x.dtype, start,
                                                            stop)

    @staticmethod
    def backward(dout, cache):
        """dout (N, stop - start, H, W) -> dx (N, C, H, W), zero outside the slice."""
        shape, dtype, start, stop = open_cache("ChannelSlice", cache)
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
        check_nchw("ChannelShuffle", "x", x)
        g = positive_int("ChannelShuffle", "groups", groups)
        n, c, h, w = x.shape
        if c % g:
            raise ValueError(f"ChannelShuffle: groups={g} must divide the channels of x {x.shape}")
        out = x.reshape(n, g, c // g, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
        return out, LayerCache("ChannelShuffle", x.shape, x.dtype, g)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx: the inverse permutation (a shuffle with C/G groups)."""
        shape, dtype, g = open_cache("ChannelShuffle", cache)
        check_dout("ChannelShuffle", dout, shape, dtype)
        n, c, h, w = shape
        return dout.reshape(n, c // g, g, h, w).transpose(0, 2, 1, 3, 4).reshape(shape)


class Pad:
    """Constant padding of the spatial axes: pad = (top, bottom, left, right).

    Shape: x (N, C, H, W) -> out (N, C, H + top + bottom, W + left + right). ``value`` may
    be -inf (max pooling in PyTorch's ceil mode pads so that padding never wins).
    """

    @staticmethod
    def forward(x, pad, value=0.0):
        """x (N, C, H, W), pad (top, bottom, left, right), value -> out, cache."""
        check_nchw("Pad", "x", x)
        if not isinstance(pad, (tuple, list)) or len(pad) != 4:
            raise ValueError(f"Pad: pad must be (top, bottom, left, right), got {pad!r}")
        t, b, l, r = (nonneg_int("Pad", "pad", p) for p in pad)
        out = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)
        return out, LayerCache("Pad", x.shape, x.dtype, (t, b, l, r))

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H + t + b, W + l + r) -> dx (N, C, H, W): the interior."""
        shape, dtype, (t, b, l, r) = open_cache("Pad", cache)
        n, c, h, w = shape
        check_dout("Pad", dout, (n, c, h + t + b, w + l + r), dtype)
        return np.ascontiguousarray(dout[:, :, t:t + h, l:l + w])


class Subsample:
    """out = x[:, :, ::stride, ::stride] (keeps every stride-th row and column)."""

    @staticmethod
    def forward(x, stride):
        """x (N, C, H, W), stride s -> out (N, C, ceil(H/s), ceil(W/s)), cache."""
        check_nchw("Subsample", "x", x)
        sh, sw = pair("Subsample", "stride", stride)
        return (np.ascontiguousarray(x[:, :, ::sh, ::sw]),
                LayerCache("Subsample", x.shape, x.dtype, sh, sw))

    @staticmethod
    def backward(dout, cache):
        """dout -> dx (N, C, H, W), zero at the rows and columns that were dropped."""
        shape, dtype, sh, sw = open_cache("Subsample", cache)
        n, c, h, w = shape
        check_dout("Subsample", dout, (n, c, subsampled_size(h, sh), subsampled_size(w, sw)),
                   dtype)
        dx = np.zeros(shape, dtype=dtype)
        dx[:, :, ::sh, ::sw] = dout
        return dx


class ChannelPad:
    """Zero channels added before and after: (N, C, H, W) -> (N, before + C + after, H, W)."""

    @staticmethod
    def forward(x, before, after):
        """x (N, C, H, W), before, after -> out (N, before + C + after, H, W), cache."""
        check_nchw("ChannelPad", "x", x)
        a = nonneg_int("ChannelPad", "before", before)
        b = nonneg_int("ChannelPad", "after", after)
        return (np.pad(x, ((0, 0), (a, b), (0, 0), (0, 0))),
                LayerCache("ChannelPad", x.shape, x.dtype, a, b))

    @staticmethod
    def backward(dout, cache):
        """dout (N, before + C + after, H, W) -> dx (N, C, H, W)."""
        shape, dtype, a, b = open_cache("ChannelPad", cache)
        check_dout("ChannelPad", dout, (shape[0], a + shape[1] + b) + shape[2:], dtype)
        return np.ascontiguousarray(dout[:, a:a + shape[1]])
