"""CS231n ``cs231n/classifiers/cnn.py``: ThreeLayerConvNet, over minidl.models.

As the course's module does (``from ..layers import *`` and the others), this one re-exports
cs231n.layers, cs231n.fast_layers and cs231n.layer_utils: a notebook's
``from cs231n.classifiers.cnn import *`` brings the layer functions too.
"""
import numpy as _np

from ....models import coursework as _cw
from .. import layer_utils as _layer_utils
from ..layer_utils import *  # noqa: F401,F403 (the course's re-exports)

__all__ = ["ThreeLayerConvNet"] + _layer_utils.__all__


class ThreeLayerConvNet(_cw.ThreeLayerConvNet):
    """CS231n's ThreeLayerConvNet: conv - relu - 2x2 max pool - affine - relu - affine -
    softmax, with input_dim=(C, H, W) and L2 = 0.5 * reg * sum(W^2).

    Inputs X (N, C, H, W); params W1 (F, C, K, K), b1 (F,), W2 (F * H/2 * W/2, hidden_dim),
    b2, W3 (hidden_dim, num_classes), b3. minidl.models.ThreeLayerConvNet with CS231n's
    keyword names and defaults (float32 parameters).
    """

    reg_scale = 0.5

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=_np.float32, seed=None):
        super().__init__(input_dims=input_dim, num_filters=num_filters,
                         filter_size=filter_size, hidden_dim=hidden_dim,
                         num_classes=num_classes, weight_scale=weight_scale, reg=reg,
                         dtype=dtype, seed=seed)
