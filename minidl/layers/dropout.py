"""Inverted dropout (EECS 498-007 A3 ``Dropout``: p is the probability of DROPPING a unit).

CS231n's dropout_forward keeps with probability p instead; minidl.compat.cs231n translates.
"""
import numpy as np

from ._checks import LayerCache, check_array, check_dout, check_param_keys, open_cache

_MODES = ("train", "test")
DROPOUT_PARAM_KEYS = ("p", "mode", "seed")


def dropout_probability(layer, name, p, keep=False, hint=""):
    """p as a float: a probability of dropping a unit, in [0, 1) (EECS 498, PyTorch), or
    with keep=True of keeping one, in (0, 1] (CS231n). Otherwise a ValueError naming layer
    and name (which says which probability it is; hint: more words). Dropout, nn.Dropout
    (at construction) and the CS231n names check here."""
    number = not isinstance(p, (bool, np.bool_)) and isinstance(p, (int, float, np.integer,
                                                                    np.floating))
    if not number or not (0 < p <= 1 if keep else 0 <= p < 1):
        raise ValueError(f"{layer}: {name} must be in {'(0, 1]' if keep else '[0, 1)'}, "
                         f"got {p!r}{hint}")
    return float(p)


def _dropout_settings(dropout_param):
    check_param_keys("Dropout", "dropout_param", dropout_param, DROPOUT_PARAM_KEYS)
    if "p" not in dropout_param:
        raise ValueError("Dropout: dropout_param needs 'p' (the probability of dropping a unit)")
    p = dropout_probability("Dropout", "dropout_param['p'] (the probability of dropping a unit)",
                            dropout_param["p"])
    mode = dropout_param.get("mode")
    if mode not in _MODES:
        raise ValueError(f"Dropout: dropout_param['mode'] must be 'train' or 'test', got {mode!r}")
    return p, mode, dropout_param.get("seed")


class Dropout:
    """Inverted dropout: in 'train' mode each unit is zeroed with probability p and the
    survivors are scaled by 1 / (1 - p), so the expected output equals x; 'test' mode is the
    identity.

    dropout_param: 'p' (drop probability, 0 <= p < 1), 'mode' ('train' or 'test', required,
    as for BatchNorm), 'seed' (optional: the same seed gives the same mask; without it the mask is
    drawn from NumPy's global generator, so np.random.seed makes runs repeatable).
    """

    @staticmethod
    def forward(x, dropout_param):
        """x (any shape) -> out (x's shape and dtype), cache (the mask in 'train' mode)."""
        check_array("Dropout", "x", x)
        p, mode, seed = _dropout_settings(dropout_param)
        if mode == "test":
            return x, LayerCache("Dropout", x.shape, x.dtype, None)
        if seed is not None:
            u = np.random.default_rng(seed).random(x.shape)
        else:
            u = np.random.random_sample(x.shape)
        mask = ((u >= p) / (1.0 - p)).astype(x.dtype)
        return x * mask, LayerCache("Dropout", x.shape, x.dtype, mask)

    @staticmethod
    def backward(dout, cache):
        """dout (x's shape) -> dx: dout * mask in 'train' mode, dout in 'test' mode."""
        shape, dtype, mask = open_cache("Dropout", cache)
        check_dout("Dropout", dout, shape, dtype)
        return dout if mask is None else dout * mask
