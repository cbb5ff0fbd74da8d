"""CS231n ``cs231n/fast_layers.py``: the fast convolution and max pool, over minidl's FastConv
and FastMaxPool (compiled kernels; no separate ``python setup.py build_ext`` step).

The course offers several implementations (im2col, strides, reshape, and in 2019 PyTorch's
conv); here every conv name is FastConv and every max-pool name is FastMaxPool, with the
same arguments and results. Arguments follow NumPy's type promotion (see ``_promote``). As
the course's module does (``from .im2col import *``), this one re-exports cs231n.im2col.
"""
from ...layers.conv import FastConv as _FastConv
from ...layers.pool import FastMaxPool as _FastMaxPool
from . import im2col as _im2col
from ._promote import backward_promoted as _backward
from ._promote import course_params as _course_params
from ._promote import promote as _promote
from .im2col import col2im_indices, get_im2col_indices, im2col_indices

__all__ = [
    "conv_forward_im2col", "conv_forward_strides", "conv_backward_strides",
    "conv_backward_im2col", "conv_forward_fast", "conv_backward_fast",
    "conv_forward_pytorch", "conv_backward_pytorch",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape",
    "max_pool_forward_im2col", "max_pool_backward_im2col",
] + _im2col.__all__


def conv_forward_fast(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param ('stride', 'pad')
    -> out (N, F, H', W'), cache. (minidl FastConv)"""
    _course_params("conv_forward_fast", conv_param=conv_param)
    x, w, b = _promote("conv_forward_fast", x=x, w=w, b=b)
    return _FastConv.forward(x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    return _backward("conv_backward_fast", _FastConv.backward, dout, cache)


conv_forward_im2col = conv_forward_strides = conv_forward_pytorch = conv_forward_fast
conv_backward_im2col = conv_backward_strides = conv_backward_pytorch = conv_backward_fast


def max_pool_forward_fast(x, pool_param):
    """x (N, C, H, W), pool_param ('pool_height', 'pool_width', 'stride')
    -> out (N, C, H', W'), cache. (minidl FastMaxPool)"""
    _course_params("max_pool_forward_fast", pool_param=pool_param)
    return _FastMaxPool.forward(_promote("max_pool_forward_fast", x=x), pool_param)


def max_pool_backward_fast(dout, cache):
    """dout (N, C, H', W') -> dx (N, C, H, W)."""
    return _backward("max_pool_backward_fast", _FastMaxPool.backward, dout, cache)


max_pool_forward_reshape = max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast
