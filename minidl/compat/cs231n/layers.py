"""CS231n ``cs231n/layers.py``: the layer functions, over minidl.layers and minidl.losses.

Every function calls one minidl layer (nothing is computed twice). Arguments follow NumPy's
type promotion (see ``_promote``): integer, bool and mixed-precision arrays are accepted and
computed in the dtype NumPy would give. Where CS231n differs from EECS 498 (and so from the
rest of minidl), this module follows CS231n:

- dropout_forward: dropout_param['p'] is the probability of KEEPING a unit (2018 onwards;
  minidl.layers.Dropout's 'p' drops, as EECS 498 and 2017's CS231n did).
- spatial_groupnorm_forward takes gamma and beta of shape (1, C, 1, 1) (or (C,)).
"""
from ... import losses as _losses
from ...layers.conv import Conv as _Conv
from ...layers.dropout import Dropout as _Dropout
from ...layers.dropout import dropout_probability
from ...layers.linear import Linear as _Linear
from ...layers.linear import ReLU as _ReLU
from ...layers.norm import BatchNorm as _BatchNorm
from ...layers.norm import LayerNorm as _LayerNorm
from ...layers.norm import SpatialBatchNorm as _SpatialBatchNorm
from ...layers.norm import SpatialGroupNorm as _SpatialGroupNorm
from ...layers.pool import MaxPool as _MaxPool
from ._promote import backward_promoted as _backward
from ._promote import course_params as _course_params
from ._promote import promote as _promote

__all__ = [
    "affine_forward", "affine_backward", "relu_forward", "relu_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive",
    "max_pool_forward_naive", "max_pool_backward_naive",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    "svm_loss", "softmax_loss",
]


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M), cache. (minidl Linear)"""
    x, w, b = _promote("affine_forward", x=x, w=w, b=b)
    return _Linear.forward(x, w, b)


def affine_backward(dout, cache):
    """dout (N, M) -> dx (N, d_1, ..., d_k), dw (D, M), db (M,)."""
    return _backward("affine_backward", _Linear.backward, dout, cache)


def relu_forward(x):
    """x (any shape) -> out = max(x, 0), cache."""
    return _ReLU.forward(_promote("relu_forward", x=x))


def relu_backward(dout, cache):
    """dout (x's shape) -> dx."""
    return _backward("relu_backward", _ReLU.backward, dout, cache)


def batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, D), gamma (D,), beta (D,), bn_param ('mode', 'eps', 'momentum',
    'running_mean', 'running_var') -> out (N, D), cache. (minidl BatchNorm)"""
    _course_params("batchnorm_forward", bn_param=bn_param)
    x, gamma, beta = _promote("batchnorm_forward", x=x, gamma=gamma, beta=beta)
    return _BatchNorm.forward(x, gamma, beta, bn_param)


def batchnorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,), through the computational graph."""
    return _backward("batchnorm_backward", _BatchNorm.backward, dout, cache)


def batchnorm_backward_alt(dout, cache):
    """dout (N, D) -> dx, dgamma, dbeta with the simplified closed form."""
    return _backward("batchnorm_backward_alt", _BatchNorm.backward_alt, dout, cache)


def layernorm_forward(x, gamma, beta, ln_param):
    """x (N, D), gamma (D,), beta (D,), ln_param ('eps') -> out (N, D), cache."""
    _course_params("layernorm_forward", ln_param=ln_param)
    x, gamma, beta = _promote("layernorm_forward", x=x, gamma=gamma, beta=beta)
    return _LayerNorm.forward(x, gamma, beta, ln_param)


def layernorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    return _backward("layernorm_backward", _LayerNorm.backward, dout, cache)


def dropout_forward(x, dropout_param):
    """Inverted dropout with CS231n's convention: dropout_param['p'] is the probability of
    KEEPING each unit (0 < p <= 1); 'mode' is 'train' or 'test'; 'seed' is optional.

    x (any shape) -> out (x's shape), cache. Calls minidl.layers.Dropout with the drop
    probability 1 - p.
    """
    _course_params("dropout_forward", dropout_param=dropout_param)
    if "p" not in dropout_param:
        raise ValueError("dropout_forward: dropout_param needs 'p' (the probability of keeping "
                         "a unit)")
    p = dropout_probability("dropout_forward", "dropout_param['p'] (the probability of keeping "
                            "a unit, CS231n)", dropout_param["p"], keep=True)
    layer_param = dict(dropout_param, p=1.0 - p)
    return _Dropout.forward(_promote("dropout_forward", x=x), layer_param)


def dropout_backward(dout, cache):
    """dout (x's shape) -> dx."""
    return _backward("dropout_backward", _Dropout.backward, dout, cache)


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param ('stride', 'pad')
    -> out (N, F, H', W'), cache. Loop implementation (minidl Conv)."""
    _course_params("conv_forward_naive", conv_param=conv_param)
    x, w, b = _promote("conv_forward_naive", x=x, w=w, b=b)
    return _Conv.forward(x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db."""
    return _backward("conv_backward_naive", _Conv.backward, dout, cache)


def max_pool_forward_naive(x, pool_param):
    """x (N, C, H, W), pool_param ('pool_height', 'pool_width', 'stride')
    -> out (N, C, H', W'), cache. Loop implementation (minidl MaxPool)."""
    _course_params("max_pool_forward_naive", pool_param=pool_param)
    return _MaxPool.forward(_promote("max_pool_forward_naive", x=x), pool_param)


def max_pool_backward_naive(dout, cache):
    """dout (N, C, H', W') -> dx (N, C, H, W)."""
    return _backward("max_pool_backward_naive", _MaxPool.backward, dout, cache)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, C, H, W), gamma (C,), beta (C,), bn_param -> out (N, C, H, W), cache."""
    _course_params("spatial_batchnorm_forward", bn_param=bn_param)
    x, gamma, beta = _promote("spatial_batchnorm_forward", x=x, gamma=gamma, beta=beta)
    return _SpatialBatchNorm.forward(x, gamma, beta, bn_param)


def spatial_batchnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx, dgamma (C,), dbeta (C,)."""
    return _backward("spatial_batchnorm_backward", _SpatialBatchNorm.backward, dout, cache)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """x (N, C, H, W), gamma and beta (1, C, 1, 1) (CS231n's shape; (C,) also works),
    G groups (a divisor of C), gn_param ('eps') -> out (N, C, H, W), cache."""
    _course_params("spatial_groupnorm_forward", gn_param=gn_param)
    x, gamma, beta = _promote("spatial_groupnorm_forward", x=x, gamma=gamma, beta=beta)
    return _SpatialGroupNorm.forward(x, gamma, beta, G, gn_param)


def spatial_groupnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx, dgamma, dbeta (dgamma, dbeta shaped as gamma, beta)."""
    return _backward("spatial_groupnorm_backward", _SpatialGroupNorm.backward, dout, cache)


def svm_loss(x, y):
    """Multiclass SVM loss (minidl.losses.svm_loss): x (N, C) scores, y (N,) labels in
    [0, C) -> loss (scalar), dx (N, C)."""
    return _losses.svm_loss(_promote("svm_loss", x=x), y)


def softmax_loss(x, y):
    """Softmax cross-entropy (minidl.losses.softmax_loss): x (N, C) scores, y (N,) labels in
    [0, C) -> loss (scalar), dx (N, C)."""
    return _losses.softmax_loss(_promote("softmax_loss", x=x), y)
