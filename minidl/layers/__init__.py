"""The coursework layer API (UMich EECS 498-007 A3 names) on NumPy arrays.

Each class has static ``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
Arrays are NCHW; every layer works in float32 and float64 and returns the input's dtype.
"""
from .conv import Conv, FastConv
from .activation import ReLU6, Sigmoid
from .dropout import Dropout
from .fused import AddReLU, SpatialBatchNormReLU
from .join import Add, ChannelConcat, ChannelScale
from .linear import Linear, Linear_ReLU, ReLU
from .norm import BatchNorm, LayerNorm, SpatialBatchNorm, SpatialGroupNorm
from .pool import AdaptiveAvgPool, AvgPool, FastMaxPool, GlobalAvgPool, MaxPool
from .shape import ChannelPad, ChannelShuffle, ChannelSlice, Flatten, Pad, Subsample
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
