"""First-order update rules with the course's interface (CS231n / EECS 498-007):

    next_w, config = rule(w, dw, config=None)

w and dw are arrays of one shape; config is a dict of hyperparameters and state that the
rule fills with its defaults on the first call and updates (state: 'velocity', 'cache',
'm', 'v', 't'); pass the returned config back on the next call. w is not modified: the
new weights are returned, with w's dtype.

Defaults (the course's): sgd learning_rate 1e-2; sgd_momentum learning_rate 1e-2,
momentum 0.9; rmsprop learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8; adam
learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8.

Checked on every call (a ValueError or TypeError that names the rule, the key and the value):
w and dw are float32 or float64 arrays of one shape and one dtype; learning_rate >= 0;
momentum, beta1 and beta2 in [0, 1) (at 1 the moving average never forgets, and Adam's bias
correction divides by zero); decay_rate in [0, 1]; epsilon > 0.

Every rule here is elementwise (``rule.elementwise`` is True): applied to the concatenation
of several parameters it gives exactly, bit for bit, what it gives applied to each one with
its own config. minidl.nn.Optimizer (and so the Solver) uses this to update a model's whole
flat parameter buffer in one call.
"""
import math
import numbers

import numpy as np

UPDATE_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")
__all__ = list(UPDATE_RULES) + ["UPDATE_RULES"]


def _elementwise(rule):
    rule.elementwise = True
    return rule


def _setup(rule, w, dw, config):
    for name, a in (("w", w), ("dw", dw)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{rule}: {name} must be a NumPy array, got {type(a).__name__}")
    if w.dtype not in (np.float32, np.float64):
        raise TypeError(f"{rule}: w must be a float32 or float64 array, got {w.dtype} {w.shape}; "
                        "cast the parameter, e.g. w.astype(np.float32)")
    if dw.dtype != w.dtype:
        raise TypeError(f"{rule}: w is {w.dtype} but dw is {dw.dtype} (shape {dw.shape}); give "
                        "the gradient the parameter's dtype")
    if w.shape != dw.shape:
        raise ValueError(f"{rule}: w and dw must have the same shape, got w {w.shape} and "
                         f"dw {dw.shape}")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"{rule}: config must be a dict or None, got {type(config).__name__}")
    return config


def _state(rule, config, key, w):
    """The state array ``key`` (zeros like w on the first call)."""
    s = config.get(key)
    if s is None:
        s = np.zeros_like(w)
    elif np.shape(s) != w.shape:
        raise ValueError(f"{rule}: config['{key}'] has shape {s.shape} but w has shape {w.shape}; "
                         "use one config dict per parameter")
    return s


# key -> (lowest, highest, whether highest itself is allowed); None: no bound.
_RANGES = {
    "learning_rate": (0.0, None, False),
    "momentum": (0.0, 1.0, False),
    "decay_rate": (0.0, 1.0, True),
    "beta1": (0.0, 1.0, False),
    "beta2": (0.0, 1.0, False),
    "epsilon": (None, None, False),  # > 0, checked below
}


def _hyper(rule, config, key):
    """config[key] as a Python float (which keeps float32 weights in float32, by NumPy's weak
    scalar promotion), checked against its range."""
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{rule}: config['{key}'] must be a number, got "
                        f"{type(value).__name__} {value!r}")
    v = float(value)
    low, high, high_ok = _RANGES[key]
    if key == "epsilon":
        ok, want = math.isfinite(v) and v > 0, "a finite number > 0"
    elif high is None:
        ok, want = math.isfinite(v) and v >= low, f"a finite number >= {low:g}"
    else:
        ok = low <= v <= high if high_ok else low <= v < high
        want = f"in [{low:g}, {high:g}{']' if high_ok else ')'}"
    if not ok:
        raise ValueError(f"{rule}: config['{key}'] must be {want}, got {value!r}")
    return v


@_elementwise
def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: next_w = w - learning_rate * dw.

    config: 'learning_rate' (1e-2).
    """
    config = _setup("sgd", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    lr = _hyper("sgd", config, "learning_rate")
    next_w = w - lr * dw
    return next_w.astype(w.dtype, copy=False), config


@_elementwise
def sgd_momentum(w, dw, config=None):
    """SGD with momentum:
        v = momentum * v - learning_rate * dw;   next_w = w + v

    config: 'learning_rate' (1e-2), 'momentum' (0.9), 'velocity' (zeros like w).
    """
    config = _setup("sgd_momentum", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    lr, mu = (_hyper("sgd_momentum", config, k) for k in ("learning_rate", "momentum"))
    v = mu * _state("sgd_momentum", config, "velocity", w) - lr * dw
    config["velocity"] = v
    return (w + v).astype(w.dtype, copy=False), config


@_elementwise
def rmsprop(w, dw, config=None):
    """RMSProp: a moving average of squared gradients sets a per-parameter step size.
        cache = decay_rate * cache + (1 - decay_rate) * dw**2
        next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: 'learning_rate' (1e-2), 'decay_rate' (0.99), 'epsilon' (1e-8),
    'cache' (zeros like w).
    """
    config = _setup("rmsprop", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    lr, decay, eps = (_hyper("rmsprop", config, k)
                      for k in ("learning_rate", "decay_rate", "epsilon"))
    cache = decay * _state("rmsprop", config, "cache", w) + (1 - decay) * dw * dw
    config["cache"] = cache
    step = lr * dw / (np.sqrt(cache) + eps)
    return (w - step).astype(w.dtype, copy=False), config


@_elementwise
def adam(w, dw, config=None):
    """Adam: moving averages of the gradient and its square, with bias correction.
        t += 1   (first, so the first step uses t = 1)
        m = beta1 * m + (1 - beta1) * dw;      v = beta2 * v + (1 - beta2) * dw**2
        m_hat = m / (1 - beta1**t);            v_hat = v / (1 - beta2**t)
        next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config: 'learning_rate' (1e-3), 'beta1' (0.9), 'beta2' (0.999), 'epsilon' (1e-8),
    'm', 'v' (zeros like w), 't' (0).
    """
    config = _setup("adam", w, dw, config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    lr, b1, b2, eps = (_hyper("adam", config, k)
                       for k in ("learning_rate", "beta1", "beta2", "epsilon"))
    t = config["t"]
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
        raise ValueError(f"adam: config['t'] (the number of steps taken) must be an integer "
                         f">= 0, got {t!r}")
    t = int(t) + 1
    m = b1 * _state("adam", config, "m", w) + (1 - b1) * dw
    v = b2 * _state("adam", config, "v", w) + (1 - b2) * dw * dw
    config["t"], config["m"], config["v"] = t, m, v
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    step = lr * m_hat / (np.sqrt(v_hat) + eps)
    return (w - step).astype(w.dtype, copy=False), config
