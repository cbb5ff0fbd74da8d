"""Stanford CS231n assignment 2 names and signatures over minidl's implementations.

Code written against ``cs231n.layers``, ``cs231n.fast_layers``, ``cs231n.layer_utils``,
``cs231n.optim``, ``cs231n.solver``, ``cs231n.classifiers`` and
``cs231n.gradient_check`` runs unchanged with::

    from minidl.compat.cs231n import *

Every function here calls a minidl layer (minidl.layers, minidl.losses, minidl.optim,
minidl.gradcheck); nothing is computed twice. Where CS231n differs from EECS 498 (and so
from the rest of minidl), this module follows CS231n:

- dropout_forward: dropout_param['p'] is the probability of KEEPING a unit
  (minidl.layers.Dropout's 'p' drops); FullyConnectedNet takes dropout_keep_ratio.
- the models' L2 regularisation is 0.5 * reg * sum(W^2) (EECS 498: reg * sum(W^2)).
- rel_error is CS231n's elementwise max |x - y| / max(1e-8, |x| + |y|).
- Solver takes update_rule as a name in cs231n.optim ('sgd', 'adam', ...; a function
  also works) and samples minibatches with replacement, as CS231n does.
- spatial_groupnorm_forward takes gamma and beta of shape (1, C, 1, 1) (or (C,)).

The "fast" convolutions (conv_forward_fast, _im2col, _strides) are all minidl's FastConv,
which needs no separate build step; the max pool variants are all FastMaxPool.
"""
import numpy as np

from .. import gradcheck as _gradcheck
from .. import optim as _optim
from .. import solver as _solver
from ..layers.conv import Conv, FastConv
from ..layers.dropout import Dropout
from ..layers.linear import Linear, Linear_ReLU, ReLU
from ..layers.norm import BatchNorm, LayerNorm, SpatialBatchNorm, SpatialGroupNorm
from ..layers.pool import FastMaxPool, MaxPool
from ..layers.sandwich import Conv_BatchNorm_ReLU, Conv_ReLU, Conv_ReLU_Pool
from ..losses import softmax_loss, svm_loss
from ..models import coursework as _cw

__all__ = [
    # layers.py
    "affine_forward", "affine_backward", "relu_forward", "relu_backward",
    "softmax_loss", "svm_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive",
    "max_pool_forward_naive", "max_pool_backward_naive",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    # fast_layers.py
    "conv_forward_fast", "conv_backward_fast", "conv_forward_im2col", "conv_backward_im2col",
    "conv_forward_strides", "conv_backward_strides",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape",
    "max_pool_forward_im2col", "max_pool_backward_im2col",
    # layer_utils.py
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward",
    # optim.py, solver.py, classifiers, gradient_check.py
    "sgd", "sgd_momentum", "rmsprop", "adam", "Solver",
    "TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet",
    "eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error",
]

# --------------------------------------------------------------------------- layers.py


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M), cache. (minidl Linear)"""
    return Linear.forward(x, w, b)


def affine_backward(dout, cache):
    """dout (N, M) -> dx (N, d_1, ..., d_k), dw (D, M), db (M,)."""
    return Linear.backward(dout, cache)


def relu_forward(x):
    """x (any shape) -> out = max(x, 0), cache."""
    return ReLU.forward(x)


def relu_backward(dout, cache):
    """dout (x's shape) -> dx."""
    return ReLU.backward(dout, cache)


def batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, D), gamma (D,), beta (D,), bn_param ('mode', 'eps', 'momentum',
    'running_mean', 'running_var') -> out (N, D), cache. (minidl BatchNorm)"""
    return BatchNorm.forward(x, gamma, beta, bn_param)


def batchnorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,), through the computational graph."""
    return BatchNorm.backward(dout, cache)


def batchnorm_backward_alt(dout, cache):
    """dout (N, D) -> dx, dgamma, dbeta with the simplified closed form."""
    return BatchNorm.backward_alt(dout, cache)


def layernorm_forward(x, gamma, beta, ln_param):
    """x (N, D), gamma (D,), beta (D,), ln_param ('eps') -> out (N, D), cache."""
    return LayerNorm.forward(x, gamma, beta, ln_param)


def layernorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    return LayerNorm.backward(dout, cache)


def dropout_forward(x, dropout_param):
    """Inverted dropout with CS231n's convention: dropout_param['p'] is the probability of
    KEEPING each unit (0 < p <= 1); 'mode' is 'train' or 'test'; 'seed' is optional.

    x (any shape) -> out (x's shape), cache. Calls minidl.layers.Dropout with the drop
    probability 1 - p.
    """
    if not isinstance(dropout_param, dict):
        raise TypeError("dropout_forward: dropout_param must be a dict with 'p' and 'mode', "
                        f"got {type(dropout_param).__name__}")
    if "p" not in dropout_param:
        raise ValueError("dropout_forward: dropout_param needs 'p' (the probability of keeping "
                         "a unit)")
    p = dropout_param["p"]
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not 0 < p <= 1:
        raise ValueError("dropout_forward: dropout_param['p'] is the probability of keeping a "
                         f"unit (CS231n) and must be in (0, 1], got {p!r}")
    layer_param = dict(dropout_param, p=1.0 - float(p))
    return Dropout.forward(x, layer_param)


def dropout_backward(dout, cache):
    """dout (x's shape) -> dx."""
    return Dropout.backward(dout, cache)


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param ('stride', 'pad')
    -> out (N, F, H', W'), cache. Loop implementation (minidl Conv)."""
    return Conv.forward(x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db."""
    return Conv.backward(dout, cache)


def max_pool_forward_naive(x, pool_param):
    """x (N, C, H, W), pool_param ('pool_height', 'pool_width', 'stride')
    -> out (N, C, H', W'), cache. Loop implementation (minidl MaxPool)."""
    return MaxPool.forward(x, pool_param)


def max_pool_backward_naive(dout, cache):
    """dout (N, C, H', W') -> dx (N, C, H, W)."""
    return MaxPool.backward(dout, cache)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, C, H, W), gamma (C,), beta (C,), bn_param -> out (N, C, H, W), cache."""
    return SpatialBatchNorm.forward(x, gamma, beta, bn_param)


def spatial_batchnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx, dgamma (C,), dbeta (C,)."""
    return SpatialBatchNorm.backward(dout, cache)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """x (N, C, H, W), gamma and beta (1, C, 1, 1) (CS231n's shape; (C,) also works),
    G groups (a divisor of C), gn_param ('eps') -> out (N, C, H, W), cache."""
    return SpatialGroupNorm.forward(x, gamma, beta, G, gn_param)


def spatial_groupnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx, dgamma, dbeta (dgamma, dbeta shaped as gamma, beta)."""
    return SpatialGroupNorm.backward(dout, cache)


# --------------------------------------------------------------------------- fast_layers.py


def conv_forward_fast(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param -> out, cache. (minidl FastConv)"""
    return FastConv.forward(x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db."""
    return FastConv.backward(dout, cache)


conv_forward_im2col = conv_forward_strides = conv_forward_fast
conv_backward_im2col = conv_backward_strides = conv_backward_fast


def max_pool_forward_fast(x, pool_param):
    """x (N, C, H, W), pool_param -> out (N, C, H', W'), cache. (minidl FastMaxPool)"""
    return FastMaxPool.forward(x, pool_param)


def max_pool_backward_fast(dout, cache):
    """dout (N, C, H', W') -> dx (N, C, H, W)."""
    return FastMaxPool.backward(dout, cache)


max_pool_forward_reshape = max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast

# --------------------------------------------------------------------------- layer_utils.py


def affine_relu_forward(x, w, b):
    """affine -> ReLU: x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M), cache."""
    return Linear_ReLU.forward(x, w, b)


def affine_relu_backward(dout, cache):
    """dout (N, M) -> dx, dw, db."""
    return Linear_ReLU.backward(dout, cache)


def conv_relu_forward(x, w, b, conv_param):
    """fast conv -> ReLU: x (N, C, H, W), w, b, conv_param -> out (N, F, H', W'), cache."""
    return Conv_ReLU.forward(x, w, b, conv_param)


def conv_relu_backward(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db."""
    return Conv_ReLU.backward(dout, cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """fast conv -> ReLU -> fast max pool: -> out (N, F, H'', W''), cache."""
    return Conv_ReLU_Pool.forward(x, w, b, conv_param, pool_param)


def conv_relu_pool_backward(dout, cache):
    """dout (N, F, H'', W'') -> dx, dw, db."""
    return Conv_ReLU_Pool.backward(dout, cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """fast conv -> spatial batch norm -> ReLU: -> out (N, F, H', W'), cache."""
    return Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, bn_param)


def conv_bn_relu_backward(dout, cache):
    """dout (N, F, H', W') -> dx, dw, db, dgamma, dbeta."""
    return Conv_BatchNorm_ReLU.backward(dout, cache)


# --------------------------------------------------------------------------- optim.py

sgd = _optim.sgd
sgd_momentum = _optim.sgd_momentum
rmsprop = _optim.rmsprop
adam = _optim.adam

# --------------------------------------------------------------------------- gradient_check.py

eval_numerical_gradient = _gradcheck.eval_numerical_gradient
eval_numerical_gradient_array = _gradcheck.eval_numerical_gradient_array
rel_error = _gradcheck.rel_error_max  # CS231n's definition, not EECS 498's

# --------------------------------------------------------------------------- solver.py


class Solver(_solver.Solver):
    """CS231n's Solver: minidl.solver.Solver with CS231n's conventions.

    update_rule is a name in cs231n.optim ('sgd', 'sgd_momentum', 'rmsprop', 'adam'; a
    function also works); minibatches and accuracy subsamples are drawn with replacement
    and progress lines read "(Iteration t / T) loss: ...", as in CS231n. The other
    arguments, attributes and methods are minidl.solver.Solver's (the same as CS231n's).
    """

    _sample_with_replacement = True

    def _print_loss(self, t, num_iterations, start_time):
        print("(Iteration %d / %d) loss: %f" % (t + 1, num_iterations, self.loss_history[-1]))


# --------------------------------------------------------------------------- classifiers


class TwoLayerNet(_cw.TwoLayerNet):
    """CS231n's TwoLayerNet: affine - relu - affine - softmax, L2 = 0.5 * reg * sum(W^2).

    As minidl.models.TwoLayerNet, with CS231n's defaults: float64 parameters (CS231n draws
    them with np.random.randn and does not cast).
    """

    reg_scale = 0.5

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float64, seed=None):
        super().__init__(input_dim=input_dim, hidden_dim=hidden_dim, num_classes=num_classes,
                         weight_scale=weight_scale, reg=reg, dtype=dtype, seed=seed)


class _KeepDropout:
    """Dropout with CS231n's 'p' (keep probability), for CS231n's FullyConnectedNet."""

    forward = staticmethod(dropout_forward)
    backward = staticmethod(dropout_backward)


class FullyConnectedNet(_cw.FullyConnectedNet):
    """CS231n's FullyConnectedNet:

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    dropout_keep_ratio is the probability of KEEPING a unit (1: no dropout), stored as
    self.dropout_param['p'] as CS231n does; L2 = 0.5 * reg * sum(W^2). Everything else is
    minidl.models.FullyConnectedNet.
    """

    reg_scale = 0.5
    _dropout_layer = _KeepDropout

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10,
                 dropout_keep_ratio=1, normalization=None, reg=0.0, weight_scale=1e-2,
                 dtype=np.float32, seed=None):
        # The base class hands `dropout` to the two hooks below, which read it as a keep ratio.
        super().__init__(hidden_dims, input_dim=input_dim, num_classes=num_classes,
                         dropout=dropout_keep_ratio, normalization=normalization, reg=reg,
                         weight_scale=weight_scale, seed=seed, dtype=dtype)

    @staticmethod
    def _uses_dropout(keep_ratio):
        return keep_ratio != 1

    @staticmethod
    def _make_dropout_param(keep_ratio):
        return {"mode": "train", "p": keep_ratio}


class ThreeLayerConvNet(_cw.ThreeLayerConvNet):
    """CS231n's ThreeLayerConvNet: conv - relu - 2x2 max pool - affine - relu - affine -
    softmax, with input_dim=(C, H, W) and L2 = 0.5 * reg * sum(W^2)."""

    reg_scale = 0.5

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=None):
        super().__init__(input_dims=input_dim, num_filters=num_filters,
                         filter_size=filter_size, hidden_dim=hidden_dim,
                         num_classes=num_classes, weight_scale=weight_scale, reg=reg,
                         dtype=dtype, seed=seed)
