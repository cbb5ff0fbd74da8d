"""CS231n ``cs231n/layer_utils.py``: the "sandwich" layers, over minidl's sandwich layers.

Each pair is one minidl class (Linear_ReLU, Conv_ReLU, Conv_ReLU_Pool, Conv_BatchNorm_ReLU),
which only composes the layers below it; the convolutions and pools are the fast ones, as in
the course. Arguments follow NumPy's type promotion (see ``_promote``). As the course's module
does (``from .layers import *``, ``from .fast_layers import *``), this one re-exports
cs231n.layers and cs231n.fast_layers.
"""
from ...layers.linear import Linear_ReLU as _Linear_ReLU
from ...layers.sandwich import Conv_BatchNorm_ReLU as _Conv_BatchNorm_ReLU
from ...layers.sandwich import Conv_ReLU as _Conv_ReLU
from ...layers.sandwich import Conv_ReLU_Pool as _Conv_ReLU_Pool
from . import fast_layers as _fast_layers
from . import layers as _layers
from ._promote import backward_promoted as _backward
from ._promote import course_params as _course_params
from ._promote import promote as _promote
from .fast_layers import *  # noqa: F401,F403 (the course's re-exports)
from .layers import *  # noqa: F401,F403

__all__ = [
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward",
] + _layers.__all__ + _fast_layers.__all__


def affine_relu_forward(x, w, b):
    """affine -> ReLU: x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M), cache."""
    x, w, b = _promote("affine_relu_forward", x=x, w=w, b=b)
    return _Linear_ReLU.forward(x, w, b)


def affine_relu_backward(dout, cache):
    """dout (N, M) -> dx (N, d_1, ..., d_k), dw (D, M), db (M,)."""
    return _backward("affine_relu_backward", _Linear_ReLU.backward, dout, cache)


def conv_relu_forward(x, w, b, conv_param):
    """fast conv -> ReLU: x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param
    -> out (N, F, H', W'), cache."""
    _course_params("conv_relu_forward", conv_param=conv_param)
    x, w, b = _promote("conv_relu_forward", x=x, w=w, b=b)
    return _Conv_ReLU.forward(x, w, b, conv_param)


def conv_relu_backward(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db."""
    return _backward("conv_relu_backward", _Conv_ReLU.backward, dout, cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """fast conv -> spatial batch norm -> ReLU: x (N, C, H, W), w (F, C, HH, WW), b (F,),
    gamma (F,), beta (F,), conv_param, bn_param -> out (N, F, H', W'), cache."""
    _course_params("conv_bn_relu_forward", conv_param=conv_param, bn_param=bn_param)
    x, w, b, gamma, beta = _promote("conv_bn_relu_forward", x=x, w=w, b=b, gamma=gamma,
                                    beta=beta)
    return _Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, bn_param)


def conv_bn_relu_backward(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db, dgamma, dbeta."""
    return _backward("conv_bn_relu_backward", _Conv_BatchNorm_ReLU.backward, dout, cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """fast conv -> ReLU -> fast max pool: x (N, C, H, W), w, b, conv_param, pool_param
    -> out (N, F, H'', W''), cache."""
    _course_params("conv_relu_pool_forward", conv_param=conv_param, pool_param=pool_param)
    x, w, b = _promote("conv_relu_pool_forward", x=x, w=w, b=b)
    return _Conv_ReLU_Pool.forward(x, w, b, conv_param, pool_param)


def conv_relu_pool_backward(dout, cache):
    """dout (N, F, H'', W'') -> dx, dw, db."""
    return _backward("conv_relu_pool_backward", _Conv_ReLU_Pool.backward, dout, cache)
