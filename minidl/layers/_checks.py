"""Argument checks shared by every layer: each raises before any work is done, with a message
that names the layer, the argument and the shapes involved."""
import numpy as np

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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def nonneg_int(layer, name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def pair(layer, name, value, check=positive_int):
    """An int or a pair of ints -> a (height, width) tuple, each checked."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{layer}: {name} must be an int or a pair, got {value!r}")
        return check(layer, name, value[0]), check(layer, name, value[1])
    v = check(layer, name, value)
    return v, v


def window_output_size(layer, axis, size, kernel, stride, pad, dilation=1, floor_mode=False):
    """Output length of a sliding window along one axis ('height' or 'width').

    Raises when the (dilated) kernel is larger than the padded input. By default it also
    raises when the stride does not tile the padded input exactly (the course layers assume
    it, and a silently ignored last row is a classic bug); with ``floor_mode=True`` it follows
    PyTorch instead: floor((size + 2*pad - extent) / stride) + 1, and input rows that no
    window reaches get a zero gradient. minidl.nn modules use floor_mode, as PyTorch does.
    """
    extent = dilation * (kernel - 1) + 1
    padded = size + 2 * pad
    what = f"kernel {axis} {kernel}" + (f" (dilated to {extent})" if dilation > 1 else "")
    if padded < extent:
        raise ValueError(f"{layer}: input {axis} {size} with pad {pad} is smaller than {what}")
    if not floor_mode and (padded - extent) % stride != 0:
        raise ValueError(
            f"{layer}: stride {stride} does not tile the input {axis}: "
            f"({size} + 2*{pad} - {extent}) = {padded - extent} is not divisible by {stride} "
            "(pass floor_mode=True in the param dict for PyTorch's floor semantics)")
    return (padded - extent) // stride + 1
