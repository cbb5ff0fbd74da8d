"""BatchNorm1d, BatchNorm2d and SyncBatchNorm: PyTorch's arguments over the course's batch-norm
layers."""
import numpy as np

from ..layers._checks import positive_int
from ..layers.fused import SpatialBatchNormReLU as _SpatialBatchNormReLULayer
from ..layers.norm import BatchNorm as _BatchNormLayer
from ..layers.norm import SpatialBatchNorm as _SpatialBatchNormLayer
from ..layers.norm import check_eps, check_momentum
from . import init as _init
from .module import Module

__all__ = ["BatchNorm2d", "BatchNorm1d", "SyncBatchNorm"]


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
    # The fused batch norm + ReLU layer a container may run instead of this module and the
    # ReLU after it (see minidl.nn.containers, fusion); None: never fused.
    _relu_layer = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        self.eps = check_eps(name, "eps", eps)
        # None: PyTorch's cumulative moving average (see _run_layer)
        self.momentum = None if momentum is None else check_momentum(
            name, "momentum (PyTorch's: the weight of the new batch)", momentum)
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
        return self._run_layer(self._layer, x)

    def _forward_relu(self, x):
        """max(this module(x), 0) in one fused layer (its backward then takes the gradient of
        the ReLU's output); called by containers in place of this module and a ReLU."""
        return self._run_layer(self._relu_layer, x)

    def _run_layer(self, layer, x):
        # Counted here, so that the fused path (and SyncBatchNorm) count as PyTorch does.
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
        if self.momentum is None:
            s += ", momentum=None"
        elif self.momentum != 0.1:
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


class _SyncLayer:
    """SyncBatchNorm's layer: BatchNorm on (N, D), SpatialBatchNorm on (N, C, H, W), given
    the module's reduction (None with a single process: the plain layers, compiled path
    included)."""

    def __init__(self, module):
        self.module = module

    def forward(self, x, gamma, beta, bn_param):
        layer = _BatchNormLayer if x.ndim == 2 else _SpatialBatchNormLayer
        return layer.forward(x, gamma, beta, bn_param, reduce=self.module._reduce())

    @staticmethod
    def backward(dout, cache):
        layer = _BatchNormLayer if np.ndim(dout) == 2 else _SpatialBatchNormLayer
        return layer.backward(dout, cache)


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the whole data-parallel batch:
    (N, D) or (N, C, H, W) -> the same shape, N being this rank's share of the batch.

    In training mode the mean and variance are reduced over every rank of comm (the forward
    sums, then the two backward sums sum(dout) and sum(dout * xhat), each in one small
    allreduce), so that K ranks normalise with exactly the statistics one process would
    compute on the whole batch, and update the running statistics with them (identical on
    every rank). Evaluation uses the running statistics, as BatchNorm2d does. The parameters,
    buffers and state_dict keys are BatchNorm2d's (PyTorch's SyncBatchNorm).

    comm: a minidl.distributed communicator; None means minidl.distributed.world() (looked up
    at the first training forward; a single process then runs plain batch norm).
    ``SyncBatchNorm.convert_sync_batchnorm(model, comm)`` turns a model's BatchNorm1d/2d
    modules into SyncBatchNorm (parameters and buffers kept), as in PyTorch.
    """

    # Containers never fuse it with a following ReLU (minidl.nn.containers, where they fuse
    # BatchNorm2d): the compiled fused kernel has no place for the reduction.
    _relu_layer = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, comm=None):
        super().__init__(num_features, eps, momentum)
        self.comm = comm

    @property
    def _layer(self):
        return _SyncLayer(self)

    def _reduce(self):
        """The allreduce for the layer, or None when this process trains alone."""
        comm = self.comm
        if comm is None:
            from .. import distributed

            comm = distributed.world()
        return comm.allreduce if comm.size > 1 else None

    def _out_shape(self, shape):
        if len(shape) not in (1, 3):
            raise ValueError(f"expects (C,) or (C, H, W) per sample, got {shape}")
        if shape[0] != self.num_features:
            raise ValueError(f"expects {self.num_features} channels, got {shape[0]}")
        return shape

    def __getstate__(self):
        state = super().__getstate__()
        state["comm"] = None  # a communicator belongs to its processes: world() after a copy
        return state

    @classmethod
    def convert_sync_batchnorm(cls, module, comm=None):
        """module with every BatchNorm1d/BatchNorm2d in it (itself included) replaced by a
        SyncBatchNorm that keeps its parameters, buffers, settings and mode. Children are
        replaced in place; returns the module (a new SyncBatchNorm when module is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls.__new__(cls)
            sync.__dict__.update(module.__dict__)  # the same arrays: nothing is drawn again
            sync.__dict__["comm"] = comm
            return sync
        for name, child in list(module.named_children()):
            module._children[name] = cls.convert_sync_batchnorm(child, comm)
        return module
