"""minidl.nn: stateful modules over the stateless layers of minidl.layers (Contract 2).

    Module                 forward, backward (accumulating grads), params, grads, zero_grad,
                           train/eval, state_dict/load_state_dict, save/load (.npz),
                           named_modules, output_shape(input_shape) without data
    Conv2d, Linear, ReLU, ReLU6, Sigmoid, Identity, MaxPool2d, AvgPool2d, GlobalAvgPool,
    AdaptiveAvgPool2d, BatchNorm2d, BatchNorm1d, Dropout, Flatten, ChannelShuffle,
    ChannelSlice, Subsample, ChannelPad
    Sequential, Residual, Concat, SE          containers (paths joined by add/concat/scale)
    Optimizer              minidl.optim rules applied to a module's parameters
    ClassifierModel        a Module with the coursework params / loss(X, y=None) interface
    check_gradients        numeric gradient check of a module w.r.t. its input and parameters
"""
from . import init
from .classifier import ClassifierModel
from .containers import SE, Concat, Residual, Sequential
from .gradcheck import check_gradients
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, ChannelPad,
                     ChannelShuffle, ChannelSlice, Conv2d, Dropout, Flatten, GlobalAvgPool,
                     Identity, Linear, MaxPool2d, ReLU, ReLU6, Sigmoid, Subsample)
from .module import Module, ParamView, ShapeError, StateDictError
from .optimizer import Optimizer

manual_seed = init.manual_seed

__all__ = ["Module", "ParamView", "ShapeError", "StateDictError", "Conv2d", "Linear", "ReLU",
           "ReLU6", "Sigmoid", "Identity", "MaxPool2d", "AvgPool2d", "GlobalAvgPool",
           "AdaptiveAvgPool2d", "BatchNorm2d", "BatchNorm1d", "Dropout", "Flatten",
           "ChannelShuffle", "ChannelSlice", "Subsample", "ChannelPad", "Sequential",
           "Residual", "Concat", "SE", "Optimizer", "ClassifierModel", "check_gradients",
           "manual_seed", "init"]
