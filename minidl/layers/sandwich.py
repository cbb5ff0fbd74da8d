"""Sandwich layers (EECS 498-007 A3): common chains of layers as one forward/backward pair.

They only compose FastConv, FastMaxPool, Linear, BatchNorm, ReLU and the fused
SpatialBatchNormReLU (spatial batch norm + ReLU as one kernel): each forward keeps the caches
of its parts and each backward calls the parts' backwards in reverse order, so there is no
gradient code here.
"""
from .conv import FastConv
from .fused import SpatialBatchNormReLU
from .linear import Linear, ReLU
from .norm import BatchNorm
from .pool import FastMaxPool


class Conv_ReLU:
    """FastConv -> ReLU."""

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) -> out (N, F, HO, WO), cache."""
        a, conv_cache = FastConv.forward(x, w, b, conv_param)
        out, relu_cache = ReLU.forward(a)
        return out, (conv_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx, dw, db."""
        conv_cache, relu_cache = cache
        return FastConv.backward(ReLU.backward(dout, relu_cache), conv_cache)


class Conv_ReLU_Pool:
    """FastConv -> ReLU -> FastMaxPool."""

    @staticmethod
    def forward(x, w, b, conv_param, pool_param):
        """x (N, C, H, W), w, b, conv_param, pool_param -> out (N, F, HP, WP), cache."""
        a, conv_cache = FastConv.forward(x, w, b, conv_param)
        s, relu_cache = ReLU.forward(a)
        out, pool_cache = FastMaxPool.forward(s, pool_param)
        return out, (conv_cache, relu_cache, pool_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HP, WP) -> dx, dw, db."""
        conv_cache, relu_cache, pool_cache = cache
        ds = FastMaxPool.backward(dout, pool_cache)
        return FastConv.backward(ReLU.backward(ds, relu_cache), conv_cache)


class Conv_BatchNorm_ReLU:
    """FastConv -> SpatialBatchNorm -> ReLU (the last two fused: SpatialBatchNormReLU)."""

    @staticmethod
    def forward(x, w, b, gamma, beta, conv_param, bn_param):
        """x (N, C, H, W), w, b, gamma (F,), beta (F,), conv_param, bn_param
        -> out (N, F, HO, WO), cache."""
        a, conv_cache = FastConv.forward(x, w, b, conv_param)
        out, bn_relu_cache = SpatialBatchNormReLU.forward(a, gamma, beta, bn_param)
        return out, (conv_cache, bn_relu_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx, dw, db, dgamma, dbeta."""
        conv_cache, bn_relu_cache = cache
        da, dgamma, dbeta = SpatialBatchNormReLU.backward(dout, bn_relu_cache)
        dx, dw, db = FastConv.backward(da, conv_cache)
        return dx, dw, db, dgamma, dbeta


class Conv_BatchNorm_ReLU_Pool:
    """FastConv -> SpatialBatchNorm -> ReLU -> FastMaxPool (batch norm and ReLU fused:
    SpatialBatchNormReLU)."""

    @staticmethod
    def forward(x, w, b, gamma, beta, conv_param, bn_param, pool_param):
        """x (N, C, H, W), w, b, gamma (F,), beta (F,), conv_param, bn_param, pool_param
        -> out (N, F, HP, WP), cache."""
        a, conv_cache = FastConv.forward(x, w, b, conv_param)
        s, bn_relu_cache = SpatialBatchNormReLU.forward(a, gamma, beta, bn_param)
        out, pool_cache = FastMaxPool.forward(s, pool_param)
        return out, (conv_cache, bn_relu_cache, pool_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HP, WP) -> dx, dw, db, dgamma, dbeta."""
        conv_cache, bn_relu_cache, pool_cache = cache
        ds = FastMaxPool.backward(dout, pool_cache)
        da, dgamma, dbeta = SpatialBatchNormReLU.backward(ds, bn_relu_cache)
        dx, dw, db = FastConv.backward(da, conv_cache)
        return dx, dw, db, dgamma, dbeta


class Linear_BatchNorm_ReLU:
    """Linear -> BatchNorm -> ReLU."""

    @staticmethod
    def forward(x, w, b, gamma, beta, bn_param):
        """x (N, d1, ..., dk), w (D, M), b (M,), gamma (M,), beta (M,), bn_param
        -> out (N, M), cache."""
        a, fc_cache = Linear.forward(x, w, b)
        an, bn_cache = BatchNorm.forward(a, gamma, beta, bn_param)
        out, relu_cache = ReLU.forward(an)
        return out, (fc_cache, bn_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, M) -> dx (N, d1, ..., dk), dw, db, dgamma, dbeta."""
        fc_cache, bn_cache, relu_cache = cache
        dan = ReLU.backward(dout, relu_cache)
        da, dgamma, dbeta = BatchNorm.backward_alt(dan, bn_cache)
        dx, dw, db = Linear.backward(da, fc_cache)
        return dx, dw, db, dgamma, dbeta
