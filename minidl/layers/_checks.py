"""Argument checks shared by every layer: each raises before any work is done, with a message
that names the layer, the argument and the shapes involved."""
import numpy as np

# The one output-size formula, the integer and param-dict checks: shared with the kernels.
from .._validate import check_param_keys, index_int, window_output_size  # noqa: F401
from .._validate import int_pair as pair  # noqa: F401  (an int or an (h, w) pair)

FLOAT_DTYPES = (np.float32, np.float64)


def check_array(layer, name, a, ndim=None, min_ndim=None):
    """a must be a float32/float64 NumPy array with the given number of dimensions."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{layer}: {name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.type not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: {name} must be float32 or float64, got {a.dtype} "
                        f"(shape {a.shape})")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{layer}: {name} must be {ndim}-D, got shape {a.shape} ({a.ndim}-D)")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{layer}: {name} must have at least {min_ndim} dimensions, "
                         f"got shape {a.shape}")
    return a


def check_nchw(layer, name, x):
    """x must be a float32/float64 array of shape (N, C, H, W)."""
    check_array(layer, name, x)
    if x.ndim != 4:
        raise ValueError(f"{layer}: {name} must be 4-D (N, C, H, W), got shape {x.shape}")
    return x


def check_same_dtype(layer, **arrays):
    """All named arrays must share one dtype (no silent float32/float64 mixing)."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    k0, a0 = items[0]
    for k, a in items[1:]:
        if a.dtype != a0.dtype:
            raise TypeError(f"{layer}: dtype mismatch: {k0} is {a0.dtype} {a0.shape} but "
                            f"{k} is {a.dtype} {a.shape}; cast one of them")


def check_shape(layer, name, a, expected):
    """a.shape must equal expected (a tuple)."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{layer}: {name} must have shape {tuple(expected)}, got {a.shape}")


def check_dout(layer, dout, shape, dtype):
    """The upstream gradient of a backward: a float array of the output's shape and dtype."""
    check_array(layer, "dout", dout)
    check_shape(layer, "dout", dout, shape)
    if dout.dtype != dtype:
        raise TypeError(f"{layer}: dtype mismatch: dout is {dout.dtype} {dout.shape} but the "
                        f"forward ran in {np.dtype(dtype)}; cast one of them")


def positive_int(layer, name, value):
    """value as a positive int within the kernels' index range, else ValueError."""
    return index_int(layer, name, value, 1)


def nonneg_int(layer, name, value):
    """value as a non-negative int within the kernels' index range, else ValueError."""
    return index_int(layer, name, value, 0)



class LayerCache:
    """What a layer's forward hands to its backward, labelled with the layer that made it, so
    that a cache passed to another layer's backward is named as such instead of failing
    somewhere inside (``open_cache``)."""

    __slots__ = ("layer", "values")

    def __init__(self, layer, *values):
        self.layer = layer
        self.values = values

    def __repr__(self):
        return f"<{self.layer} cache>"


def open_cache(layer, cache, makers=None):
    """The values of a LayerCache made by ``layer``.forward (or by one of ``makers``);
    TypeError naming both layers otherwise."""
    makers = (layer,) if makers is None else tuple(makers)
    if not isinstance(cache, LayerCache):
        got = type(cache).__name__ + (f" of {len(cache)}" if isinstance(cache, tuple) else "")
        raise TypeError(f"{layer}.backward: cache must be the cache {makers[0]}.forward "
                        f"returned, got a {got}")
    if cache.layer not in makers:
        raise TypeError(f"{layer}.backward: this cache was made by {cache.layer}.forward, "
                        f"not {' or '.join(m + '.forward' for m in makers)}")
    return cache.values
