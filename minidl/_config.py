"""Process-wide defaults: the dtype new parameters and data are created in."""
import numpy as np

_default_dtype = np.float32


def float_dtype(owner, dtype):
    """np.float32 or np.float64 from a dtype-like (None: the minidl default dtype).

    owner names the function or class in the TypeError raised for any other dtype.
    """
    if dtype is None:
        return _default_dtype
    dt = np.dtype(dtype).type
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {np.dtype(dtype)}")
    return dt


def set_default_dtype(dtype):
    """Choose float32 (the default, for training) or float64 (gradient checks) for new arrays."""
    global _default_dtype
    if dtype is None:
        raise TypeError("set_default_dtype: dtype must be float32 or float64, got None")
    _default_dtype = float_dtype("set_default_dtype", dtype)


def get_default_dtype():
    """The dtype (np.float32 or np.float64) new parameters are created in."""
    return _default_dtype
