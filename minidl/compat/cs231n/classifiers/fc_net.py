"""CS231n ``cs231n/classifiers/fc_net.py``: TwoLayerNet and FullyConnectedNet, over
minidl.models.

As the course's module does (``from ..layers import *``, ``from ..layer_utils import *``),
this one re-exports cs231n.layers and cs231n.layer_utils: a notebook's
``from cs231n.classifiers.fc_net import *`` brings batchnorm_forward, dropout_forward, ...
"""
import numpy as _np

from ....layers.dropout import dropout_probability
from ....models import coursework as _cw
from .. import layer_utils as _layer_utils
from ..layer_utils import *  # noqa: F401,F403 (the course's re-exports)
from ..layers import dropout_backward as _dropout_backward
from ..layers import dropout_forward as _dropout_forward

__all__ = ["TwoLayerNet", "FullyConnectedNet"] + _layer_utils.__all__


class TwoLayerNet(_cw.TwoLayerNet):
    """CS231n's TwoLayerNet: affine - relu - affine - softmax, L2 = 0.5 * reg * sum(W^2).

    Inputs (N, d_1, ..., d_k) flattening to input_dim; params W1 (input_dim, hidden_dim), b1,
    W2 (hidden_dim, num_classes), b2. As minidl.models.TwoLayerNet, with CS231n's defaults:
    float64 parameters (CS231n draws them with np.random.randn and does not cast).
    """

    reg_scale = 0.5

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=_np.float64, seed=None):
        super().__init__(input_dim=input_dim, hidden_dim=hidden_dim, num_classes=num_classes,
                         weight_scale=weight_scale, reg=reg, dtype=dtype, seed=seed)


class _KeepDropout:
    """Dropout with CS231n's 'p' (keep probability), for CS231n's FullyConnectedNet."""

    forward = staticmethod(_dropout_forward)
    backward = staticmethod(_dropout_backward)


def _keep_ratio(name, dropout_keep_ratio, dropout):
    """The keep probability from 2022's dropout_keep_ratio or 2018-2021's dropout keyword."""
    keep = dropout_keep_ratio
    if dropout is not None:
        if dropout_keep_ratio != 1 and dropout_keep_ratio != dropout:
            raise ValueError(f"{name}: dropout={dropout!r} and dropout_keep_ratio="
                             f"{dropout_keep_ratio!r} disagree; they are the same setting "
                             "(the probability of keeping a unit), give one")
        keep = dropout
    dropout_probability(name, "the dropout keep probability", keep, keep=True,
                        hint=" (1: no dropout; CS231n 2017's dropout=0 meant no dropout, from "
                             "2018 the value is the probability of keeping a unit)")
    return keep


class FullyConnectedNet(_cw.FullyConnectedNet):
    """CS231n's FullyConnectedNet:

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    Inputs (N, d_1, ..., d_k) flattening to input_dim; params W1..WL, b1..bL and, with
    normalization, gamma1..gamma(L-1), beta1..beta(L-1).

    dropout_keep_ratio (2022 onwards) and dropout (2018-2021, keyword) are the same setting:
    the probability of KEEPING a unit, 1 meaning no dropout. It is stored as
    self.dropout_param['p'] as CS231n does. L2 = 0.5 * reg * sum(W^2). Everything else is
    minidl.models.FullyConnectedNet.
    """

    reg_scale = 0.5
    _dropout_layer = _KeepDropout

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10,
                 dropout_keep_ratio=1, normalization=None, reg=0.0, weight_scale=1e-2,
                 dtype=_np.float32, seed=None, *, dropout=None):
        keep = _keep_ratio(type(self).__name__, dropout_keep_ratio, dropout)
        # The base class hands `dropout` to the two hooks below, which read it as a keep ratio.
        super().__init__(hidden_dims, input_dim=input_dim, num_classes=num_classes,
                         dropout=keep, normalization=normalization, reg=reg,
                         weight_scale=weight_scale, seed=seed, dtype=dtype)

    @staticmethod
    def _uses_dropout(keep_ratio):
        return keep_ratio != 1

    @staticmethod
    def _make_dropout_param(keep_ratio):
        return {"mode": "train", "p": keep_ratio}
