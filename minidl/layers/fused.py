"""Fused layers: a chain of layers as one forward/backward pair, computed by one compiled
kernel in fewer passes over memory.

    SpatialBatchNormReLU   max(SpatialBatchNorm(x), 0)    (Conv_BatchNorm_ReLU, ResNet blocks)
    AddReLU                max(a + b, 0)                  (a residual sum and its ReLU)

Each is the same math as its unfused chain and is tested against it: the compiled forward
gives the unfused output bit for bit and the same batch statistics and running statistics;
the backward applies the ReLU's mask inside batch norm's gradient passes (or gives the masked
gradient once to both summands). Without the compiled kernels (or with
``_kernels.use_compiled(False)``) each runs its unfused chain of layers, so there is one
gradient per piece of math either way.
"""
import numpy as np

from .. import _kernels
from ._checks import LayerCache, check_array, check_dout, check_same_dtype, open_cache
from .join import Add
from .linear import ReLU
from .norm import (BatchNorm, _backward_closed_form, _bn_settings, _check_batch_statistics,
                   _update_running)


class _BNReLUCache:
    """What SpatialBatchNormReLU.backward needs: the unfused caches (parts), or for the
    compiled path x and the statistics the forward normalised with (float64, as the kernel
    computed them, so that the backward's recomputed ReLU mask is the forward's)."""

    __slots__ = ("parts", "mode", "x", "gamma", "beta", "mean", "var", "eps")

    def __init__(self, parts=None, mode=None, x=None, gamma=None, beta=None, mean=None, var=None,
                 eps=None):
        self.parts, self.mode, self.x, self.gamma, self.beta = parts, mode, x, gamma, beta
        self.mean, self.var, self.eps = mean, var, eps


class SpatialBatchNormReLU:
    """Spatial batch norm followed by ReLU, fused: out = max(SpatialBatchNorm(x), 0).

    Shape: x (N, C, H, W), gamma (C,), beta (C,) -> out (N, C, H, W).
    bn_param exactly as SpatialBatchNorm's ('mode' required, 'eps', 'momentum',
    'running_mean', 'running_var', 'unbiased_running_var'); in 'train' mode the running
    statistics are written into it as SpatialBatchNorm writes them.

    Training mode runs batch norm's two passes per channel with the ReLU applied as out is
    written, and the backward batch norm's two gradient passes with the ReLU mask recomputed
    from x; 'test' mode is one affine + ReLU pass each way. The gradient at an output of
    exactly 0 is 0, as ReLU's.
    """

    @staticmethod
    def forward(x, gamma, beta, bn_param):
        """x (N, C, H, W), gamma (C,), beta (C,), bn_param -> out (N, C, H, W), cache."""
        layer = "SpatialBatchNormReLU"
        check_array(layer, "x", x, ndim=4)
        if not _kernels.direct_available():
            # SpatialBatchNorm's own code, then ReLU: the unfused chain
            an, bn_cache = BatchNorm._forward(layer, "bn_param", x, gamma, beta, bn_param)
            out, relu_cache = ReLU.forward(an)
            return out, LayerCache(layer, _BNReLUCache(parts=(bn_cache, relu_cache)))
        bn_param, mode, eps, momentum, running = _bn_settings(layer, "bn_param", x, gamma, beta,
                                                              bn_param)
        x = np.ascontiguousarray(x)
        if mode == "train":
            _check_batch_statistics(layer, x)
            out, mean, var = _kernels.batchnorm_relu_forward_train(x, gamma, beta, eps)
            # in x's dtype first, as SpatialBatchNorm's compiled path does
            _update_running(bn_param, running, momentum, mean.astype(x.dtype),
                            var.astype(x.dtype), x)
        else:
            # the running statistics in x's dtype, as SpatialBatchNorm's test mode uses them
            mean, var = (running[k].astype(x.dtype).astype(np.float64)
                         for k in ("running_mean", "running_var"))
            out = _kernels.batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps)
        return out, LayerCache(layer, _BNReLUCache(mode=mode, x=x, gamma=gamma, beta=beta,
                                                   mean=mean, var=var, eps=eps))

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W), the gradient of out -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
        c, = open_cache("SpatialBatchNormReLU", cache)
        if c.parts is not None:
            bn_cache, relu_cache = c.parts
            bn, = open_cache("SpatialBatchNormReLU", bn_cache)
            return _backward_closed_form(ReLU.backward(dout, relu_cache), bn)
        check_dout("SpatialBatchNormReLU", dout, c.x.shape, c.x.dtype)
        if c.mode == "train":
            return _kernels.batchnorm_relu_backward(dout, c.x, c.mean, c.var, c.gamma, c.beta,
                                                    c.eps)
        return _kernels.batchnorm_relu_backward_eval(dout, c.x, c.mean, c.var, c.gamma, c.beta,
                                                     c.eps)


class AddReLU:
    """A residual sum followed by ReLU, fused: out = max(a + b, 0).

    Shape: a, b (any shape, the same for both, one dtype) -> out (that shape).
    The forward is one pass; the backward computes dout * (out > 0) once and returns it as
    the gradient of both a and b (the sum passes its gradient on unchanged). The cache holds
    out itself, so out must not be modified in place before backward.
    """

    @staticmethod
    def forward(a, b):
        """a, b (same shape and dtype) -> out (that shape), cache."""
        layer = "AddReLU"
        check_array(layer, "a", a)
        check_array(layer, "b", b)
        check_same_dtype(layer, a=a, b=b)
        if a.shape != b.shape:
            raise ValueError(f"{layer}: a and b must have the same shape, got a {a.shape} and "
                             f"b {b.shape}")
        if not _kernels.direct_available():
            s, add_cache = Add.forward(a, b)
            out, relu_cache = ReLU.forward(s)
            return out, LayerCache(layer, None, (add_cache, relu_cache))
        out = _kernels.add_relu_forward(a, b)
        return out, LayerCache(layer, out, None)

    @staticmethod
    def backward(dout, cache):
        """dout (out's shape) -> (da, db), one array given as both (the masked dout)."""
        out, parts = open_cache("AddReLU", cache)
        if parts is not None:
            add_cache, relu_cache = parts
            return Add.backward(ReLU.backward(dout, relu_cache), add_cache)
        check_dout("AddReLU", dout, out.shape, out.dtype)
        d = _kernels.relu_backward(dout, out)  # out > 0 exactly where a + b > 0
        return d, d
