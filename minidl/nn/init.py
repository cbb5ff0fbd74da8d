"""Parameter initialisation, and the seed that makes it repeatable.

Parameters are created lazily: a module records each parameter's shape, its initialiser and
a seed drawn when the module is built, and draws the values only when they are first needed
(forward, ``params``, ``state_dict``). So building a full-size VGG-19 for ``summary`` or a
parameter count allocates nothing, and the values a parameter gets do not depend on the
order in which parameters are first touched. ``manual_seed(s)`` before building a model makes
its initial values repeatable.

An initialiser is ``init(rng, shape, dtype) -> array``.
"""
import numpy as np

_seeds = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator that gives every new parameter its own seed."""
    global _seeds
    _seeds = np.random.default_rng(seed)


def next_seed():
    """A fresh 63-bit seed for one parameter (called when the parameter is declared)."""
    return int(_seeds.integers(0, 2**63 - 1))


def kaiming_normal_values(rng, shape, dtype, fan, gain=2.0):
    """N(0, gain / fan) values of ``shape`` in ``dtype``: He et al.'s initialisation (gain 2
    for a layer that ReLU follows, 1 for a linear one), drawn with rng.standard_normal (a
    Generator, or NumPy's global np.random). The one implementation: kaiming_normal and
    minidl.models.kaiming_initializer call it."""
    return (np.sqrt(gain / fan) * rng.standard_normal(shape)).astype(dtype)


def _fans(shape):
    """(fan_in, fan_out) of a weight (out, in) or (out, in/groups, kh, kw), as PyTorch."""
    receptive = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


class kaiming_normal:
    """N(0, 2 / fan): He et al. for ReLU networks (torchvision's convolution init, fan_out).

    Initialisers are small classes rather than closures so that models pickle (Solver
    checkpoints pickle the model)."""

    def __init__(self, mode="fan_out"):
        self.mode = mode

    def __call__(self, rng, shape, dtype):
        fan_in, fan_out = _fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return kaiming_normal_values(rng, shape, dtype, fan)


class uniform_fan_in:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear weights and biases."""

    def __init__(self, fan_in):
        self.bound = 1.0 / np.sqrt(max(fan_in, 1))

    def __call__(self, rng, shape, dtype):
        return rng.uniform(-self.bound, self.bound, size=shape).astype(dtype)


class constant:
    """Every element equal to value (batch-norm gamma = 1, beta = 0, conv bias = 0)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, rng, shape, dtype):
        return np.full(shape, self.value, dtype=dtype)


zeros = constant(0.0)
ones = constant(1.0)
