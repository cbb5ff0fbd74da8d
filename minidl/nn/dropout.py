"""Dropout: PyTorch's module (p drops) over minidl.layers.Dropout."""
from ..layers.dropout import Dropout as _DropoutLayer
from ..layers.dropout import dropout_probability
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout: in training each unit is zeroed with probability p (PyTorch's p,
    which is also EECS 498's); the identity in eval mode. Masks come from NumPy's global
    generator, so np.random.seed makes them repeatable."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = dropout_probability("Dropout", "p (the probability of dropping a unit)", p)

    def _forward(self, x):
        param = {"p": self.p, "mode": "train" if self.training else "test"}
        out, self._cache = _DropoutLayer.forward(x, param)
        return out

    def _backward(self, dout):
        return _DropoutLayer.backward(dout, self._take_cache())

    def _out_shape(self, shape):
        return shape

    def extra_repr(self):
        return f"p={self.p}"
