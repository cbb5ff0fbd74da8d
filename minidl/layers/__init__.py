"""The coursework layer API (UMich EECS 498-007 A3 names) on NumPy arrays.

Each class has static ``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
Arrays are NCHW; every layer works in float32 and float64 and returns the input's dtype.
"""
from .conv import Conv, FastConv
from .dropout import Dropout
from .extra import (AdaptiveAvgPool, Add, ChannelConcat, ChannelPad, ChannelScale, ChannelShuffle,
                    ChannelSlice, Flatten, Pad, ReLU6, Sigmoid, Subsample)
from .fused import AddReLU, SpatialBatchNormReLU
from .linear import Linear, Linear_ReLU, ReLU
from .norm import BatchNorm, LayerNorm, SpatialBatchNorm, SpatialGroupNorm
from .pool import AvgPool, FastMaxPool, GlobalAvgPool, MaxPool
from .sandwich import (Conv_BatchNorm_ReLU, Conv_BatchNorm_ReLU_Pool, Conv_ReLU, Conv_ReLU_Pool,
                       Linear_BatchNorm_ReLU)

__all__ = [
    "Linear", "ReLU", "Linear_ReLU", "Dropout",
    "Conv", "FastConv", "MaxPool", "FastMaxPool", "AvgPool", "GlobalAvgPool",
    "BatchNorm", "SpatialBatchNorm", "LayerNorm", "SpatialGroupNorm",
    "Conv_ReLU", "Conv_ReLU_Pool", "Conv_BatchNorm_ReLU", "Conv_BatchNorm_ReLU_Pool",
    "Linear_BatchNorm_ReLU",
    # fused pairs (one compiled kernel each; the same math as the unfused chain)
    "SpatialBatchNormReLU", "AddReLU",
    # building blocks of the architectures (minidl.nn)
    "Flatten", "Sigmoid", "ReLU6", "Add", "ChannelConcat", "ChannelSlice", "ChannelShuffle",
    "ChannelScale", "Pad", "Subsample", "ChannelPad", "AdaptiveAvgPool",
]
