"""The coursework layer API (UMich EECS 498-007 A3 names) on NumPy arrays.

Each class has static ``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
Arrays are NCHW; every layer works in float32 and float64 and returns the input's dtype.
"""
from .conv import Conv, FastConv
from .pool import AvgPool, FastMaxPool, GlobalAvgPool, MaxPool

__all__ = ["Conv", "FastConv", "MaxPool", "FastMaxPool", "AvgPool", "GlobalAvgPool"]
