"""Argument checks shared by the kernels' plans and the layers (a leaf module: it imports
nothing of minidl's). Each raises before any work, naming the layer, the argument and the
value or shapes involved."""
import numpy as np

INDEX_LIMIT = 2**31 - 1  # the kernels index with C ints (and the BLAS takes int dimensions)


def check_param_keys(layer, name, params, allowed):
    """params must be a dict whose keys are all in ``allowed``: a typo ('momentun') or a key
    another layer takes is an error, not silently ignored."""
    if not isinstance(params, dict):
        raise TypeError(f"{layer}: {name} must be a dict, got {type(params).__name__}")
    unknown = sorted(set(params) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"{layer}: unknown {name} key(s) {', '.join(map(repr, unknown))}; "
                         f"the keys are {', '.join(map(repr, allowed))}")


def index_int(layer, name, value, low):
    """value as an int >= low (1: positive, 0: non-negative) that the kernels can index with
    (<= INDEX_LIMIT); ValueError naming layer and argument otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        kind = "positive" if low == 1 else "non-negative"
        raise ValueError(f"{layer}: {name} must be a {kind} integer, got {value!r}")
    value = int(value)
    if value > INDEX_LIMIT:
        raise ValueError(f"{layer}: {name} {value} is too large: the kernels index with 32-bit "
                         f"integers (at most {INDEX_LIMIT})")
    return value


def int_pair(layer, name, value, low=1):
    """An int or a pair of ints -> a (height, width) tuple of ints >= low and <= INDEX_LIMIT."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{layer}: {name} must be an int or a pair, got {value!r}")
        return index_int(layer, name, value[0], low), index_int(layer, name, value[1], low)
    v = index_int(layer, name, value, low)
    return v, v


def window_output_size(layer, axis, size, kernel, stride, pad, dilation=1, floor_mode=False):
    """Output length of a sliding window along one axis ('height' or 'width'): the one
    formula, (size + 2*pad - dilation*(kernel - 1) - 1) // stride + 1.

    Raises when the (dilated) kernel is larger than the padded input, and when an index the
    kernels compute (the padded size, the dilated extent) would pass INDEX_LIMIT. By default it
    also raises when the stride does not tile the padded input exactly (the course layers
    assume it, and a silently ignored last row is a classic bug); with ``floor_mode=True`` it
    follows PyTorch instead: input rows that no window reaches get a zero gradient.
    """
    extent = dilation * (kernel - 1) + 1
    padded = size + 2 * pad
    if extent > INDEX_LIMIT:
        raise ValueError(f"{layer}: dilation {dilation} with kernel {axis} {kernel} spans "
                         f"{extent} {axis} positions, more than the kernels' 32-bit index "
                         f"range ({INDEX_LIMIT})")
    if padded > INDEX_LIMIT:
        raise ValueError(f"{layer}: pad {pad} is too large: the padded input {axis} "
                         f"{size} + 2*{pad} = {padded} passes the kernels' 32-bit index range "
                         f"({INDEX_LIMIT})")
    what = f"kernel {axis} {kernel}" + (f" (dilated to {extent})" if dilation > 1 else "")
    if padded < extent:
        raise ValueError(f"{layer}: input {axis} {size} with pad {pad} is smaller than {what}")
    if not floor_mode and (padded - extent) % stride != 0:
        raise ValueError(
            f"{layer}: stride {stride} does not tile the input {axis}: "
            f"({size} + 2*{pad} - {extent}) = {padded - extent} is not divisible by {stride} "
            "(pass floor_mode=True in the param dict for PyTorch's floor semantics)")
    return (padded - extent) // stride + 1
