"""Modules that reshape, crop, pad or permute without arithmetic: Flatten, ChannelShuffle,
ChannelSlice, Subsample, ChannelPad (over minidl.layers.shape)."""
import numpy as np

from ..layers import shape as _shape
from ..layers._checks import nonneg_int, pair, positive_int
from .module import Module, _fmt_pair, _image_shape

__all__ = ["Flatten", "ChannelShuffle", "ChannelSlice", "Subsample", "ChannelPad"]


class Flatten(Module):
    """(N, d1, ..., dk) -> (N, d1 * ... * dk)."""

    def _forward(self, x):
        out, self._cache = _shape.Flatten.forward(x)
        return out

    def _backward(self, dout):
        return _shape.Flatten.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        return (int(np.prod(shape, dtype=np.int64)),)


class ChannelShuffle(Module):
    """ShuffleNet's channel shuffle with `groups` groups: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = positive_int("ChannelShuffle", "groups", groups)

    def _forward(self, x):
        out, self._cache = _shape.ChannelShuffle.forward(x, self.groups)
        return out

    def _backward(self, dout):
        return _shape.ChannelShuffle.backward(dout, self._take_cache())

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
        self.start, self.stop = _shape.channel_slice_bounds("ChannelSlice", start, stop)

    def _forward(self, x):
        out, self._cache = _shape.ChannelSlice.forward(x, self.start, self.stop)
        return out

    def _backward(self, dout):
        return _shape.ChannelSlice.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        _shape.channel_slice_bounds("ChannelSlice", self.start, self.stop, c)
        return (self.stop - self.start, h, w)

    def extra_repr(self):
        return f"{self.start}, {self.stop}"


class Subsample(Module):
    """x[:, :, ::stride, ::stride] (the ResNet paper's option-A shortcut, with ChannelPad)."""

    def __init__(self, stride):
        super().__init__()
        self.stride = pair("Subsample", "stride", stride)

    def _forward(self, x):
        out, self._cache = _shape.Subsample.forward(x, self.stride)
        return out

    def _backward(self, dout):
        return _shape.Subsample.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (c, _shape.subsampled_size(h, self.stride[0]),
                _shape.subsampled_size(w, self.stride[1]))

    def extra_repr(self):
        return f"stride={_fmt_pair(self.stride)}"


class ChannelPad(Module):
    """Zero channels before and after: (N, C, H, W) -> (N, before + C + after, H, W)."""

    def __init__(self, before, after):
        super().__init__()
        self.before = nonneg_int("ChannelPad", "before", before)
        self.after = nonneg_int("ChannelPad", "after", after)

    def _forward(self, x):
        out, self._cache = _shape.ChannelPad.forward(x, self.before, self.after)
        return out

    def _backward(self, dout):
        return _shape.ChannelPad.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        c, h, w = _image_shape(shape)
        return (self.before + c + self.after, h, w)

    def extra_repr(self):
        return f"before={self.before}, after={self.after}"
