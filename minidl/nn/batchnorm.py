"""BatchNorm1d and BatchNorm2d: PyTorch's arguments over the course's batch-norm layers."""
import numpy as np

from ..layers._checks import positive_int
from ..layers.norm import BatchNorm as _BatchNormLayer
from ..layers.norm import SpatialBatchNorm as _SpatialBatchNormLayer
from . import init as _init
from .module import Module

__all__ = ["BatchNorm2d", "BatchNorm1d"]


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: PyTorch's arguments, the course's bn_param underneath.

    PyTorch's momentum m weighs the NEW batch (running = (1 - m) * running + m * batch); the
    course's bn_param momentum weighs the OLD value, so the layer gets 1 - m. Running
    variances use the unbiased batch variance, as PyTorch's do.

    Buffers, as PyTorch's: running_mean, running_var, and num_batches_tracked (an int64
    scalar, +1 at every training-mode forward), so that state_dict() has torchvision's keys.
    momentum=None averages all batches so far with equal weights (factor
    1 / num_batches_tracked), as PyTorch's cumulative moving average.
    """

    kind = "norm"
    optional_buffers = ("num_batches_tracked",)
    _layer = None
    _ndim = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        if not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(
                momentum, (int, float)) or not 0 <= momentum <= 1):
            raise ValueError(f"{name}: momentum (PyTorch's: the weight of the new batch) must be "
                             f"in [0, 1] or None (a cumulative average), got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self._declare_param("weight", (self.num_features,), _init.ones)
        self._declare_param("bias", (self.num_features,), _init.zeros)
        self._declare_buffer("running_mean", np.zeros(self.num_features))
        self._declare_buffer("running_var", np.ones(self.num_features))
        self._declare_buffer("num_batches_tracked", np.array(0), dtype=np.int64)

    def __setstate__(self, state):
        # Modules pickled before the counter existed (older Solver checkpoints) get a zero one.
        super().__setstate__(state)
        self._buffers.setdefault("num_batches_tracked", np.array(0, dtype=np.int64))

    def _forward(self, x):
        factor = self.momentum
        if self.training:
            count = self._buffers["num_batches_tracked"] + 1
            self._buffers["num_batches_tracked"] = np.array(count, dtype=np.int64)
            if factor is None:
                factor = 1.0 / float(self._buffers["num_batches_tracked"])
        elif factor is None:
            factor = 0.0  # eval mode leaves the running statistics alone
        bn_param = {"mode": "train" if self.training else "test", "eps": self.eps,
                    "momentum": 1.0 - factor, "unbiased_running_var": True,
                    "running_mean": self._buffers["running_mean"],
                    "running_var": self._buffers["running_var"]}
        out, self._cache = self._layer.forward(x, self._param("weight"), self._param("bias"),
                                               bn_param)
        # The layer writes new running statistics into the dict (the course's convention).
        self._buffers["running_mean"] = bn_param["running_mean"]
        self._buffers["running_var"] = bn_param["running_var"]
        return out

    def _backward(self, dout):
        dx, dgamma, dbeta = self._layer.backward(dout, self._take_cache())
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
        if self.momentum is None:
            s += ", momentum=None"
        elif self.momentum != 0.1:
            s += f", momentum={self.momentum:g}"
        return s


class BatchNorm2d(_BatchNorm):
    """Spatial batch norm over N, H, W per channel: (N, C, H, W) -> (N, C, H, W)."""
    _layer = _SpatialBatchNormLayer
    _ndim = 3


class BatchNorm1d(_BatchNorm):
    """Batch norm over N per feature: (N, D) -> (N, D)."""
    _layer = _BatchNormLayer
    _ndim = 1
