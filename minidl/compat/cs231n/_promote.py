"""NumPy's type promotion for the CS231n names (the one place it happens).

The course's layers are NumPy code, so they accept integer, bool and mixed-precision arrays
and compute in the type NumPy promotes them to: ``b = np.array([0, 128])`` with float64 ``x``
and ``w`` gives a float64 convolution, float32 ``x`` with float64 ``w`` gives float64. minidl's
layers (the EECS 498 names) are strict instead: one float dtype, or a TypeError. The CS231n
names call them through ``promote`` (forward arguments) and ``backward_promoted`` (dout
against the dtype the forward ran in), so the rule is:

    compute dtype = np.result_type(all array arguments), except that
      integer / bool only  -> float64  (what np.zeros and true division give the course)
      float16              -> float32  (minidl's kernels run in float32 and float64)
    everything else (complex, longdouble, object, strings) is a TypeError naming the argument.

Backward runs in the forward's dtype; when dout's dtype promotes beyond it (a float64 dout
for a float32 forward) the gradients are returned in the promoted dtype, as NumPy would.
"""
import numpy as np

from ..._validate import check_param_keys

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_numeric(fn, name, value):
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name} must be an integer, bool or float array, got dtype "
                        f"{a.dtype} (shape {a.shape})")
    return a


def compute_dtype(fn, **arrays):
    """The float dtype the course's NumPy code computes in for these arrays (see module
    docstring); None values are ignored. Raises TypeError for non-numeric arrays."""
    present = [_as_numeric(fn, k, v) for k, v in arrays.items() if v is not None]
    if not present:
        return np.dtype(np.float64)
    dtype = np.result_type(*present)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype not in _FLOAT_DTYPES:
        names = ", ".join(f"{k} {np.asarray(v).dtype}" for k, v in arrays.items() if v is not None)
        raise TypeError(f"{fn}: arrays promote to {dtype} ({names}); minidl computes in "
                        "float32 or float64")
    return dtype


def promote(fn, **arrays):
    """The arrays (in the order given) cast to their compute dtype; None stays None.

    Arrays already of that dtype are returned as they are (no copy)."""
    dtype = compute_dtype(fn, **arrays)
    out = tuple(None if v is None else np.asarray(v).astype(dtype, copy=False)
                for v in arrays.values())
    return out if len(out) > 1 else out[0]


def cache_dtype(cache):
    """The dtype a minidl layer's forward ran in, read from its cache: the first float array
    or np.dtype found depth-first (tuples, lists and __slots__ objects; param dicts are
    skipped, their running statistics may have another dtype). None when there is none
    (dropout in test mode keeps no mask)."""
    if isinstance(cache, np.ndarray):
        return cache.dtype if cache.dtype in _FLOAT_DTYPES else None
    if isinstance(cache, np.dtype):
        return cache
    if isinstance(cache, (tuple, list)):
        items = cache
    elif hasattr(type(cache), "__slots__") and not isinstance(cache, (dict, str, bytes)):
        items = [getattr(cache, s, None) for s in type(cache).__slots__]
    else:
        return None
    for item in items:
        found = cache_dtype(item)
        if found is not None:
            return found
    return None


def backward_promoted(fn, backward, dout, cache):
    """Run a minidl backward with dout cast to the forward's dtype; the gradients come back
    in np.result_type(dout, forward dtype) (ints and bools -> float64), as NumPy would."""
    forward_dtype = cache_dtype(cache)
    dout = _as_numeric(fn, "dout", dout)
    if forward_dtype is None:
        forward_dtype = compute_dtype(fn, dout=dout)
    result_dtype = compute_dtype(fn, dout=dout, forward=np.empty(0, forward_dtype))
    grads = backward(dout.astype(forward_dtype, copy=False), cache)
    if result_dtype == forward_dtype:
        return grads
    if isinstance(grads, tuple):
        return tuple(None if g is None else g.astype(result_dtype) for g in grads)
    return grads.astype(result_dtype)


# The keys the course's param dicts have. minidl's layers take more (conv 'dilation', 'groups'
# and 'floor_mode', pool 'pad' and 'floor_mode', bn 'unbiased_running_var'); through the
# course's names those are errors, as any unknown key is, so that code written against minidl
# does not pass for course code that would ignore them.
COURSE_PARAM_KEYS = {
    "conv_param": ("stride", "pad"),
    "pool_param": ("pool_height", "pool_width", "stride"),
    "bn_param": ("mode", "eps", "momentum", "running_mean", "running_var"),
    "ln_param": ("eps", "mode"),
    "gn_param": ("eps", "mode"),
    "dropout_param": ("p", "mode", "seed"),
}


def course_params(fn, **params):
    """Check each param dict against the course's keys (see COURSE_PARAM_KEYS); a key only
    minidl's layers know is named as such. Returns nothing; raises ValueError/TypeError."""
    for name, value in params.items():
        if value is None and name in ("ln_param", "gn_param"):
            continue
        allowed = COURSE_PARAM_KEYS[name]
        if isinstance(value, dict):
            extra = sorted(set(value) - set(allowed), key=str)
            minidl_only = [k for k in extra if k in _MINIDL_ONLY.get(name, ())]
            if minidl_only:
                raise ValueError(f"{fn}: {name} key(s) {', '.join(map(repr, minidl_only))} are "
                                 f"minidl's (minidl.layers takes them); the course's {fn} "
                                 f"takes {', '.join(map(repr, allowed))}")
        check_param_keys(fn, name, value, allowed)


_MINIDL_ONLY = {"conv_param": ("dilation", "groups", "floor_mode"),
                "pool_param": ("pad", "floor_mode"),
                "bn_param": ("unbiased_running_var",)}
