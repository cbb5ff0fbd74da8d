"""BatchNorm1d and BatchNorm2d: PyTorch's arguments over the course's batch-norm layers."""
import numpy as np

from ..layers._checks import positive_int
from ..layers.fused import SpatialBatchNormReLU as _SpatialBatchNormReLULayer
from ..layers.norm import BatchNorm as _BatchNormLayer
from ..layers.norm import SpatialBatchNorm as _SpatialBatchNormLayer
from ..layers.norm import check_eps, check_momentum
from . import init as _init
from .module import Module

__all__ = ["BatchNorm2d", "BatchNorm1d"]


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: PyTorch's arguments, the course's bn_param underneath.

    PyTorch's momentum m weighs the NEW batch (running = (1 - m) * running + m * batch); the
    course's bn_param momentum weighs the OLD value, so the layer gets 1 - m. Running
    variances use the unbiased batch variance, as PyTorch's do.
    """

    kind = "norm"
    _layer = None
    _ndim = None
    # The fused batch norm + ReLU layer a container may run instead of this module and the
    # ReLU after it (see minidl.nn.containers, fusion); None: never fused.
    _relu_layer = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        self.eps = check_eps(name, "eps", eps)
        self.momentum = check_momentum(name, "momentum (PyTorch's: the weight of the new batch)",
                                       momentum)
        self._declare_param("weight", (self.num_features,), _init.ones)
        self._declare_param("bias", (self.num_features,), _init.zeros)
        self._declare_buffer("running_mean", np.zeros(self.num_features))
        self._declare_buffer("running_var", np.ones(self.num_features))

    def _forward(self, x):
        return self._run_layer(self._layer, x)

    def _forward_relu(self, x):
        """max(this module(x), 0) in one fused layer (its backward then takes the gradient of
        the ReLU's output); called by containers in place of this module and a ReLU."""
        return self._run_layer(self._relu_layer, x)

    def _run_layer(self, layer, x):
        bn_param = {"mode": "train" if self.training else "test", "eps": self.eps,
                    "momentum": 1.0 - self.momentum, "unbiased_running_var": True,
                    "running_mean": self._buffers["running_mean"],
                    "running_var": self._buffers["running_var"]}
        out, cache = layer.forward(x, self._param("weight"), self._param("bias"), bn_param)
        self._cache = (layer, cache)
        # The layer writes new running statistics into the dict (the course's convention).
        self._buffers["running_mean"] = bn_param["running_mean"]
        self._buffers["running_var"] = bn_param["running_var"]
        return out

    def _backward(self, dout):
        layer, cache = self._take_cache()  # the layer forward ran: plain or fused with ReLU
        dx, dgamma, dbeta = layer.backward(dout, cache)
        self._accumulate("weight", dgamma)
        self._accumulate("bias", dbeta)
        return dx

    def _out_shape(self, shape):
        if len(shape) != self._ndim:
            want = "(C, H, W)" if self._ndim == 3 else "(D,)"
            raise ValueError(f"expects {want} per sample, got {shape}")
        if shape[0] != self.num_features:
            raise ValueError(f"expects {self.num_features} channels, got {shape[0]}")
        return shape

    def extra_repr(self):
        s = f"{self.num_features}"
        if self.eps != 1e-5:
            s += f", eps={self.eps:g}"
        if self.momentum != 0.1:
            s += f", momentum={self.momentum:g}"
        return s


class BatchNorm2d(_BatchNorm):
    """Spatial batch norm over N, H, W per channel: (N, C, H, W) -> (N, C, H, W)."""
    _layer = _SpatialBatchNormLayer
    _relu_layer = _SpatialBatchNormReLULayer
    _ndim = 3


class BatchNorm1d(_BatchNorm):
    """Batch norm over N per feature: (N, D) -> (N, D)."""
    _layer = _BatchNormLayer
    _ndim = 1
