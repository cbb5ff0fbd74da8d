"""Models: the coursework nets (EECS 498-007 A3) and, in ``minidl.models.zoo``, the
lecture's architectures.

TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet and DeepConvNet have ``params`` and
``loss(X, y=None)`` and train with minidl.solver.Solver.
"""
import importlib

from .coursework import (DeepConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet,
                         kaiming_initializer)

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "DeepConvNet",
           "kaiming_initializer", "zoo"]


def __getattr__(name):
    # The zoo is imported on first use, so `import minidl.models` stays light.
    if name == "zoo":
        return importlib.import_module(".zoo", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
