"""minidl.nn: stateful modules over the stateless layers of minidl.layers (Contract 2).

    Module                 forward, backward (accumulating grads), params, grads, zero_grad,
                           train/eval, state_dict/load_state_dict, save/load (.npz),
                           named_modules, output_shape(input_shape) without data,
                           trace_shapes(input_shape) -> (output_shape, [LayerTrace, ...])
    Conv2d, Linear, ReLU, ReLU6, Sigmoid, Identity, MaxPool2d, AvgPool2d, GlobalAvgPool,
    AdaptiveAvgPool2d, BatchNorm2d, BatchNorm1d, LayerNorm, Dropout, Flatten, ChannelShuffle,
    ChannelSlice, Subsample, ChannelPad
    Sequential, Residual, Concat, SE          containers (paths joined by add/concat/scale)
    FlatParameters         all parameters and all gradients as two contiguous buffers
                           (Module.flat_parameters(); bind_parameters for dict models)
    Optimizer              minidl.optim rules applied to a model's flat parameter buffer
    ClassifierModel        a Module with the coursework params / loss(X, y=None) interface
    check_gradients        numeric gradient check of a module w.r.t. its input and parameters
"""
from . import init
from .activation import ReLU, ReLU6, Sigmoid
from .batchnorm import BatchNorm1d, BatchNorm2d
from .classifier import ClassifierModel
from .containers import SE, Concat, Residual, Sequential, get_fusion, no_fusion, set_fusion
from .conv import Conv2d
from .dropout import Dropout
from .gradcheck import check_gradients
from .layernorm import LayerNorm
from .linear import Identity, Linear
from .module import LayerTrace, Module, ParamView, ShapeError, StateDictError
from .pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool, MaxPool2d
from .shape import ChannelPad, ChannelShuffle, ChannelSlice, Flatten, Subsample
from .flat import FlatParameters, bind_parameters
from .optimizer import Optimizer

manual_seed = init.manual_seed

__all__ = ["Module", "LayerTrace", "ParamView", "ShapeError", "StateDictError", "Conv2d", "Linear", "ReLU",
           "ReLU6", "Sigmoid", "Identity", "MaxPool2d", "AvgPool2d", "GlobalAvgPool",
           "AdaptiveAvgPool2d", "BatchNorm2d", "BatchNorm1d", "LayerNorm", "Dropout", "Flatten",
           "ChannelShuffle", "ChannelSlice", "Subsample", "ChannelPad", "Sequential",
           "Residual", "Concat", "SE", "Optimizer", "ClassifierModel", "check_gradients",
           "manual_seed", "init"]
__all__ += ["FlatParameters", "bind_parameters", "set_fusion", "get_fusion", "no_fusion"]
