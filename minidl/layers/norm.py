"""Normalisation layers: BatchNorm, SpatialBatchNorm, LayerNorm, SpatialGroupNorm.

All four are "standardise over some axes, then scale and shift per feature/channel":

    xhat = (x - mean(x)) / sqrt(var(x) + eps)      mean/var over the normalised axes
    out  = gamma * xhat + beta                     gamma, beta per feature (axis 1)

so they share one forward (``_standardize``) and one gradient of the standardisation
(``_standardize_backward``), and differ only in which axes the statistics run over:

    BatchNorm         (N, D)          over N           running averages for 'test' mode
    SpatialBatchNorm  (N, C, H, W)    over N, H, W     running averages for 'test' mode
    LayerNorm         (N, D)          over D           no running averages
    SpatialGroupNorm  (N, C, H, W)    over C/G, H, W within each of G channel groups

Conventions follow the course (EECS 498-007 A3 and CS231n assignment 2): bn_param holds
'mode' ('train'/'test'), 'eps' (1e-5), 'momentum' (0.9: the weight of the OLD running value,
running = momentum * running + (1 - momentum) * batch), and 'running_mean' / 'running_var'
(zeros when absent, written back into the dict in 'train' mode). Variances are the biased
batch variances, as in the course; bn_param['unbiased_running_var'] = True makes the running
variance use the unbiased estimate, as PyTorch's BatchNorm does (the normalisation itself
always uses the biased one). 'test' mode normalises with the running statistics and eps.
"""
import numpy as np

from .. import _kernels
from ._checks import (LayerCache, check_array, check_dout, check_param_keys, check_same_dtype,
                      check_shape, open_cache, positive_int)


def _standardize(x, axes, eps):
    """xhat = (x - mean) / sqrt(var + eps), statistics over ``axes`` (kept as size-1 dims).

    Returns xhat, mean, var (biased) and istd = 1 / sqrt(var + eps).
    """
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    istd = 1.0 / np.sqrt(var + eps)
    return xc * istd, mean, var, istd


def _standardize_backward(dxhat, xhat, istd, axes):
    """Gradient of xhat = standardize(x) over ``axes``: the simplified closed form

        dx = istd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

    (means over ``axes``). Every normalisation layer's dx goes through here.
    """
    m1 = dxhat.mean(axis=axes, keepdims=True)
    m2 = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return istd * (dxhat - m1 - xhat * m2)


def _number_in(layer, name, value, low, high, low_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise ValueError(f"{layer}: {name} must be a number, got {value!r}")
    value = float(value)  # a Python float keeps float32 arithmetic in float32
    if not (low < value if low_open else low <= value) or value > high:
        interval = ("(" if low_open else "[") + f"{low}, {high}]"
        raise ValueError(f"{layer}: {name} must be in {interval}, got {value!r}")
    return value


# The keys each param dict may hold; another key (a typo such as 'momentun') is an error.
# Layer and group norm also accept 'mode', which the course's models set on every norm param
# dict; they behave the same in both modes.
BN_PARAM_KEYS = ("mode", "eps", "momentum", "running_mean", "running_var",
                 "unbiased_running_var")
LN_PARAM_KEYS = ("eps", "mode")


def check_eps(layer, name, eps):
    """A normalisation's eps (added to the variance) as a float > 0, else ValueError naming
    layer and name. The normalisation layers and nn.BatchNorm1d/2d (at construction) check
    here."""
    return _number_in(layer, name, eps, 0.0, np.inf, low_open=True)


def check_momentum(layer, name, momentum):
    """A running-average momentum as a float in [0, 1] (either convention: the course's
    weighs the old value, PyTorch's the new batch), else ValueError naming layer and name."""
    return _number_in(layer, name, momentum, 0.0, 1.0)


def _check_param_dict(layer, name, params, allowed):
    if params is None:
        return {}
    check_param_keys(layer, name, params, allowed)
    return params


def _check_affine(layer, x, gamma, beta, C, allowed_shapes):
    """gamma and beta: float arrays of one of ``allowed_shapes`` with x's dtype."""
    for name, a in (("gamma", gamma), ("beta", beta)):
        check_array(layer, name, a)
        if a.shape not in allowed_shapes:
            shapes = " or ".join(str(s) for s in allowed_shapes)
            raise ValueError(f"{layer}: {name} must have shape {shapes} for x {x.shape} "
                             f"({C} features), got {a.shape}")
    check_same_dtype(layer, x=x, gamma=gamma, beta=beta)


def _bn_settings(layer, params_name, x, gamma, beta, bn_param):
    """Check gamma, beta (C,) and bn_param for x (N, C, ...) and read the settings.

    Returns bn_param (a dict), mode, eps, momentum and running: {'running_mean',
    'running_var'} -> the given (C,) arrays, or zeros when absent (see the module docstring).
    """
    C = x.shape[1]
    _check_affine(layer, x, gamma, beta, C, [(C,)])
    bn_param = _check_param_dict(layer, params_name, bn_param, BN_PARAM_KEYS)
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"{layer}: {params_name}['mode'] must be 'train' or 'test', "
                         f"got {mode!r}")
    eps = check_eps(layer, f"{params_name}['eps']", bn_param.get("eps", 1e-5))
    momentum = check_momentum(layer, f"{params_name}['momentum']", bn_param.get("momentum", 0.9))
    running = {}
    for key in ("running_mean", "running_var"):
        r = bn_param.get(key)
        if r is None:
            r = np.zeros(C, dtype=x.dtype)
        else:
            check_array(layer, f"{params_name}['{key}']", r)
            check_shape(layer, f"{params_name}['{key}']", r, (C,))
        running[key] = r
    return bn_param, mode, eps, momentum, running


def _check_batch_statistics(layer, x):
    if x.size // x.shape[1] < 2:
        raise ValueError(f"{layer}: training mode needs more than one value per feature "
                         f"to compute batch statistics, got x {x.shape}")


def _update_running(bn_param, running, momentum, mean, var, x):
    """Write the new running statistics into bn_param: running = momentum * running +
    (1 - momentum) * batch, in each running array's dtype; mean, var (C,) are the batch's
    (biased) statistics in x's dtype, var made unbiased first when
    bn_param['unbiased_running_var'] is set."""
    if bn_param.get("unbiased_running_var", False):
        M = x.size // x.shape[1]
        var = var * (M / (M - 1))
    rm, rv = running["running_mean"], running["running_var"]
    bn_param["running_mean"] = (momentum * rm + (1 - momentum) * mean).astype(rm.dtype, copy=False)
    bn_param["running_var"] = (momentum * rv + (1 - momentum) * var).astype(rv.dtype, copy=False)


def _fused_backward(dout, c):
    """The compiled training-mode gradient (the closed form of _standardize_backward, in two
    passes over memory) for a cache made by the compiled forward."""
    return _kernels.batchnorm_backward(np.ascontiguousarray(dout), c.x, c.mean.reshape(-1),
                                       c.var.reshape(-1), c.gamma, c.eps)


class _BNCache:
    """What batch norm's backward needs (statistics kept with size-1 dims for broadcasting)."""

    __slots__ = ("layer", "mode", "x", "xhat", "mean", "var", "istd", "gamma", "axes", "pshape",
                 "eps", "fused")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class BatchNorm:
    """Batch normalisation over the batch axis of (N, D) inputs.

    Shape: x (N, D), gamma (D,), beta (D,) -> out (N, D).
    bn_param: 'mode' ('train' or 'test', required), 'eps' (1e-5), 'momentum' (0.9),
    'running_mean', 'running_var' (D,) (created as zeros and updated in the dict in 'train'
    mode), 'unbiased_running_var' (False). See the module docstring.
    """

    @staticmethod
    def forward(x, gamma, beta, bn_param):
        """x (N, D), gamma (D,), beta (D,), bn_param -> out (N, D), cache."""
        check_array("BatchNorm", "x", x, ndim=2)
        return BatchNorm._forward("BatchNorm", "bn_param", x, gamma, beta, bn_param)

    @staticmethod
    def _forward(layer, params_name, x, gamma, beta, bn_param, fused=False):
        """Batch norm of x (N, C, ...) with features on axis 1: statistics over every other axis.

        fused=True runs training mode through the compiled kernel when it is built (the same
        formulas in two passes over memory, without keeping xhat); backward then goes through
        its compiled gradient (see SpatialBatchNorm.backward)."""
        C = x.shape[1]
        bn_param, mode, eps, momentum, running = _bn_settings(layer, params_name, x, gamma, beta,
                                                              bn_param)
        axes = (0,) + tuple(range(2, x.ndim))
        pshape = (1, C) + (1,) * (x.ndim - 2)
        if mode == "train":
            _check_batch_statistics(layer, x)
            fused = fused and _kernels.direct_available()
            if fused:
                out, mean64, var64 = _kernels.batchnorm_forward_train(x, gamma, beta, eps)
                mean = mean64.astype(x.dtype).reshape(pshape)
                var = var64.astype(x.dtype).reshape(pshape)
                xhat, istd = None, None
            else:
                xhat, mean, var, istd = _standardize(x, axes, eps)
            _update_running(bn_param, running, momentum, mean.reshape(C), var.reshape(C), x)
        else:
            fused = False
            mean = running["running_mean"].astype(x.dtype, copy=False).reshape(pshape)
            var = running["running_var"].astype(x.dtype, copy=False).reshape(pshape)
            istd = 1.0 / np.sqrt(var + eps)
            xhat = (x - mean) * istd
        if not fused:
            out = xhat * gamma.reshape(pshape) + beta.reshape(pshape)
        cache = _BNCache(layer=layer, mode=mode, x=x, xhat=xhat, mean=mean, var=var, istd=istd,
                         gamma=gamma, axes=axes, pshape=pshape, eps=eps, fused=fused)
        return out, LayerCache(layer, cache)

    @staticmethod
    def backward(dout, cache):
        """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,), by backpropagating step by
        step through the computational graph mean -> centre -> var -> 1/std -> xhat."""
        c, = open_cache("BatchNorm", cache)
        check_dout(c.layer, dout, c.x.shape, c.x.dtype)
        if c.fused:
            return _fused_backward(dout, c)
        dgamma, dbeta = (dout * c.xhat).sum(axis=c.axes), dout.sum(axis=c.axes)
        dxhat = dout * c.gamma.reshape(c.pshape)
        if c.mode == "test":  # running statistics are constants
            return dxhat * c.istd, dgamma, dbeta
        M = c.x.size // c.x.shape[1]
        xc = c.x - c.mean                                          # centre
        dxc = dxhat * c.istd                                       # xhat = xc * istd
        distd = (dxhat * xc).sum(axis=c.axes, keepdims=True)
        dvar = distd * -0.5 * c.istd ** 3                          # istd = (var + eps)^-1/2
        dxc = dxc + dvar * (2.0 / M) * xc                          # var = mean(xc^2)
        dmean = -dxc.sum(axis=c.axes, keepdims=True)               # xc = x - mean
        dx = dxc + dmean / M                                       # mean = mean(x)
        return dx, dgamma, dbeta

    @staticmethod
    def backward_alt(dout, cache):
        """dout (N, D) -> dx, dgamma, dbeta with the simplified closed form of dx
        (same result as backward, fewer passes over memory)."""
        c, = open_cache("BatchNorm", cache)
        return _backward_closed_form(dout, c)


def _backward_closed_form(dout, c):
    """BatchNorm.backward_alt's gradient for a batch-norm cache c of either layer."""
    check_dout(c.layer, dout, c.x.shape, c.x.dtype)
    if c.fused:
        return _fused_backward(dout, c)
    dgamma, dbeta = (dout * c.xhat).sum(axis=c.axes), dout.sum(axis=c.axes)
    dxhat = dout * c.gamma.reshape(c.pshape)
    if c.mode == "test":
        return dxhat * c.istd, dgamma, dbeta
    return _standardize_backward(dxhat, c.xhat, c.istd, c.axes), dgamma, dbeta


class SpatialBatchNorm:
    """Batch normalisation of (N, C, H, W) inputs: per channel, over N, H and W.

    Shape: x (N, C, H, W), gamma (C,), beta (C,) -> out (N, C, H, W).
    bn_param as BatchNorm's, with running statistics of shape (C,). Runs BatchNorm's code
    (features on axis 1), so there is one implementation of the math; in training mode the
    compiled kernels run that same math in two passes over memory when they are built.
    """

    @staticmethod
    def forward(x, gamma, beta, bn_param):
        """x (N, C, H, W), gamma (C,), beta (C,), bn_param -> out (N, C, H, W), cache."""
        check_array("SpatialBatchNorm", "x", x, ndim=4)
        return BatchNorm._forward("SpatialBatchNorm", "bn_param", x, gamma, beta, bn_param,
                                  fused=True)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
        c, = open_cache("SpatialBatchNorm", cache)
        return _backward_closed_form(dout, c)


class LayerNorm:
    """Layer normalisation (CS231n layernorm_forward): each sample normalised over its
    features, then scaled and shifted per feature. Same in training and at test time.

    Shape: x (N, D), gamma (D,), beta (D,) -> out (N, D). ln_param: 'eps' (1e-5).
    """

    @staticmethod
    def forward(x, gamma, beta, ln_param=None):
        """x (N, D), gamma (D,), beta (D,), ln_param -> out (N, D), cache."""
        check_array("LayerNorm", "x", x, ndim=2)
        _check_affine("LayerNorm", x, gamma, beta, x.shape[1], [(x.shape[1],)])
        ln_param = _check_param_dict("LayerNorm", "ln_param", ln_param, LN_PARAM_KEYS)
        eps = check_eps("LayerNorm", "ln_param['eps']", ln_param.get("eps", 1e-5))
        xhat, _, _, istd = _standardize(x, (1,), eps)
        out = xhat * gamma + beta
        return out, LayerCache("LayerNorm", x.shape, x.dtype, xhat, istd, gamma)

    @staticmethod
    def backward(dout, cache):
        """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
        x_shape, dtype, xhat, istd, gamma = open_cache("LayerNorm", cache)
        check_dout("LayerNorm", dout, x_shape, dtype)
        dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
        dx = _standardize_backward(dout * gamma, xhat, istd, (1,))
        return dx, dgamma, dbeta


class SpatialGroupNorm:
    """Group normalisation (CS231n spatial_groupnorm_forward): the C channels of each sample
    are split into G contiguous groups, each normalised over its C/G channels and all H x W
    positions, then scaled and shifted per channel.

    Shape: x (N, C, H, W), gamma and beta (C,) or CS231n's (1, C, 1, 1) -> out (N, C, H, W);
    backward returns dgamma and dbeta in the shape gamma and beta were given.
    G: number of groups, a divisor of C. gn_param: 'eps' (1e-5).
    """

    @staticmethod
    def forward(x, gamma, beta, G, gn_param=None):
        """x (N, C, H, W), gamma, beta (C,) or (1, C, 1, 1), G, gn_param -> out, cache."""
        layer = "SpatialGroupNorm"
        check_array(layer, "x", x, ndim=4)
        N, C, H, W = x.shape
        _check_affine(layer, x, gamma, beta, C, [(C,), (1, C, 1, 1)])
        G = positive_int(layer, "G", G)
        if C % G:
            raise ValueError(f"{layer}: G={G} groups must divide the {C} channels of x {x.shape}")
        gn_param = _check_param_dict(layer, "gn_param", gn_param, LN_PARAM_KEYS)
        eps = check_eps(layer, "gn_param['eps']", gn_param.get("eps", 1e-5))
        axes = (2, 3, 4)
        xhat_g, _, _, istd = _standardize(x.reshape(N, G, C // G, H, W), axes, eps)
        xhat = xhat_g.reshape(x.shape)
        out = xhat * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1)
        return out, LayerCache("SpatialGroupNorm", x.dtype, xhat, istd, gamma, beta.shape, G)

    @staticmethod
    def backward(dout, cache):
        """dout (N, C, H, W) -> dx (N, C, H, W), dgamma, dbeta (shaped as gamma, beta were)."""
        dtype, xhat, istd, gamma, beta_shape, G = open_cache("SpatialGroupNorm", cache)
        check_dout("SpatialGroupNorm", dout, xhat.shape, dtype)
        N, C, H, W = xhat.shape
        dgamma = (dout * xhat).sum(axis=(0, 2, 3)).reshape(gamma.shape)
        dbeta = dout.sum(axis=(0, 2, 3)).reshape(beta_shape)
        dxhat = (dout * gamma.reshape(1, C, 1, 1)).reshape(N, G, C // G, H, W)
        dx = _standardize_backward(dxhat, xhat.reshape(dxhat.shape), istd, (2, 3, 4))
        return dx.reshape(N, C, H, W), dgamma, dbeta
