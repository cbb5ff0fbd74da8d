"""CS231n ``cs231n/optim.py``: the update rules, minidl.optim's with NumPy's type promotion.

    next_w, config = rule(w, dw, config=None)

Defaults and config keys are the course's (see minidl.optim). The new weights have the dtype
NumPy gives the course's update: np.result_type(w, dw, the config's state arrays), with
integer weights promoted to float64 (minidl.optim on its own keeps w's dtype).
"""
import numpy as _np

from ... import optim as _optim
from ._promote import compute_dtype as _compute_dtype

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]

_STATE_KEYS = ("velocity", "cache", "m", "v")


def _promoted(rule, w, dw, config):
    """Call minidl's rule with w and dw in the course's compute dtype."""
    state = {k: config[k] for k in _STATE_KEYS if isinstance(config, dict) and
             config.get(k) is not None}
    dtype = _compute_dtype(rule.__name__, w=w, dw=dw, **state)
    return rule(_as(w, dtype), _as(dw, dtype), config)


def _as(a, dtype):
    return _np.asarray(a).astype(dtype, copy=False)


def sgd(w, dw, config=None):
    """next_w = w - learning_rate * dw. config: 'learning_rate' (1e-2).
    w, dw: arrays of one shape -> next_w (that shape), config."""
    return _promoted(_optim.sgd, w, dw, config)


def sgd_momentum(w, dw, config=None):
    """v = momentum * v - learning_rate * dw; next_w = w + v. config: 'learning_rate' (1e-2),
    'momentum' (0.9), 'velocity' (zeros like w). w, dw -> next_w, config."""
    return _promoted(_optim.sgd_momentum, w, dw, config)


def rmsprop(w, dw, config=None):
    """RMSProp. config: 'learning_rate' (1e-2), 'decay_rate' (0.99), 'epsilon' (1e-8),
    'cache' (zeros like w). w, dw -> next_w, config."""
    return _promoted(_optim.rmsprop, w, dw, config)


def adam(w, dw, config=None):
    """Adam with bias correction. config: 'learning_rate' (1e-3), 'beta1' (0.9), 'beta2'
    (0.999), 'epsilon' (1e-8), 'm', 'v' (zeros like w), 't' (0). w, dw -> next_w, config."""
    return _promoted(_optim.adam, w, dw, config)


# Elementwise, as minidl.optim's: the Solver may apply them to the whole flat buffer at once.
for _rule in (sgd, sgd_momentum, rmsprop, adam):
    _rule.elementwise = True
del _rule
