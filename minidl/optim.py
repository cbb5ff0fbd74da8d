"""First-order update rules with the course's interface (CS231n / EECS 498-007):

    next_w, config = rule(w, dw, config=None)

w and dw are arrays of one shape; config is a dict of hyperparameters and state that the
rule fills with its defaults on the first call and updates (state: 'velocity', 'cache',
'm', 'v', 't'); pass the returned config back on the next call. w is not modified: the
new weights are returned, with w's dtype.

Defaults (the course's): sgd learning_rate 1e-2; sgd_momentum learning_rate 1e-2,
momentum 0.9; rmsprop learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8; adam
learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8.
"""
import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]


def _setup(rule, w, dw, config):
    for name, a in (("w", w), ("dw", dw)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{rule}: {name} must be a NumPy array, got {type(a).__name__}")
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


def _hyper(config, key):
    # Python floats keep float32 weights in float32 (NumPy's weak scalar promotion).
    return float(config[key])


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: next_w = w - learning_rate * dw.

    config: 'learning_rate' (1e-2).
    """
    config = _setup("sgd", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    next_w = w - _hyper(config, "learning_rate") * dw
    return next_w.astype(w.dtype, copy=False), config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum:
        v = momentum * v - learning_rate * dw;   next_w = w + v

    config: 'learning_rate' (1e-2), 'momentum' (0.9), 'velocity' (zeros like w).
    """
    config = _setup("sgd_momentum", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = _state("sgd_momentum", config, "velocity", w)
    v = _hyper(config, "momentum") * v - _hyper(config, "learning_rate") * dw
    config["velocity"] = v
    return (w + v).astype(w.dtype, copy=False), config


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
    decay = _hyper(config, "decay_rate")
    cache = decay * _state("rmsprop", config, "cache", w) + (1 - decay) * dw * dw
    config["cache"] = cache
    step = _hyper(config, "learning_rate") * dw / (np.sqrt(cache) + _hyper(config, "epsilon"))
    return (w - step).astype(w.dtype, copy=False), config


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
    b1, b2 = _hyper(config, "beta1"), _hyper(config, "beta2")
    t = int(config["t"]) + 1
    m = b1 * _state("adam", config, "m", w) + (1 - b1) * dw
    v = b2 * _state("adam", config, "v", w) + (1 - b2) * dw * dw
    config["t"], config["m"], config["v"] = t, m, v
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    step = _hyper(config, "learning_rate") * m_hat / (np.sqrt(v_hat) + _hyper(config, "epsilon"))
    return (w - step).astype(w.dtype, copy=False), config
