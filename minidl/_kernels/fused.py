"""Fused kernels: spatial batch norm + ReLU, and add + ReLU (the wrappers; C loops in
``_norm_impl.h`` and ``_eltwise.pyx``).

Each is the same math as the unfused chain, in fewer passes over memory and with fewer
arrays allocated:

* ``batchnorm_relu_forward_train`` / ``batchnorm_relu_backward``: out = max(bn(x), 0) in
  batch norm's two passes (statistics, then normalise + ReLU written once); the gradient
  from dout of that output in batch norm's two gradient passes, the ReLU mask recomputed
  from x and the statistics by the forward's own expression (bit for bit its out > 0).
  Recomputing reads nothing that the passes do not read already; reading the saved output
  instead adds a stream to each pass (measured slower: see docs/decisions.md).
* ``batchnorm_relu_forward_eval`` / ``batchnorm_relu_backward_eval``: the same with given
  (running) statistics, an affine map + ReLU in one pass each way.
* ``add_relu_forward``: max(a + b, 0) in one pass; its gradient, given once to both inputs,
  is ``relu_backward(dout, out)`` (out > 0 exactly where a + b > 0).

Like the other kernel wrappers they check what the C code needs (dtypes, shapes,
contiguity) and raise before entering it; the layers (``minidl.layers.fused``) check the
rest and fall back to the unfused layers when the kernels are not built.
"""
import numpy as np

from . import _bn_param, _bn_view, _check_dtypes, _float_array, _require_direct
from . import _eltwise, _norm

__all__ = ["batchnorm_relu_forward_train", "batchnorm_relu_backward",
           "batchnorm_relu_forward_eval", "batchnorm_relu_backward_eval", "add_relu_forward"]


def _bn_inputs(fn, x, gamma, beta):
    x, x3 = _bn_view(fn, "x", x)
    c = x.shape[1]
    return x, x3, _bn_param(fn, "gamma", gamma, c, x.dtype), _bn_param(fn, "beta", beta, c, x.dtype)


def _stats(fn, mean, var, c):
    return _bn_param(fn, "mean", mean, c, np.float64), _bn_param(fn, "var", var, c, np.float64)


def _bn_backward(fn, kernel, dout, x, mean, var, gamma, beta, eps):
    """Check the arguments of a batch norm + ReLU backward and run its kernel."""
    _require_direct(fn)
    x, x3, gamma, beta = _bn_inputs(fn, x, gamma, beta)
    dout, d3 = _bn_view(fn, "dout", dout)
    _check_dtypes(fn, x=x, dout=dout)
    if dout.shape != x.shape:
        raise ValueError(f"{fn}: dout {dout.shape} must have x's shape {x.shape}")
    mean, var = _stats(fn, mean, var, x.shape[1])
    dx = np.empty_like(x)
    dgamma, dbeta = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    if x.size:
        kernel(x3, d3, mean, var, float(eps), gamma, beta, dx.reshape(x3.shape), dgamma, dbeta)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)


def batchnorm_relu_forward_train(x, gamma, beta, eps):
    """max(batch_norm(x), 0) in training mode, over every axis but 1.

    x (N, C) or (N, C, H, W), gamma (C,), beta (C,) -> out (x's shape and dtype), mean (C,)
    and var (C,) (biased batch statistics, float64). Two passes per channel (the statistics,
    then out written once), in parallel over channels.
    """
    fn = "batchnorm_relu_forward_train"
    _require_direct(fn)
    x, x3, gamma, beta = _bn_inputs(fn, x, gamma, beta)
    if x3.shape[0] * x3.shape[2] == 0:
        raise ValueError(f"{fn}: x {x.shape} has no values to normalise")
    out = np.empty_like(x)
    mean, var = np.empty(x.shape[1]), np.empty(x.shape[1])
    _norm.batchnorm_forward_train(x3, gamma, beta, float(eps), out.reshape(x3.shape), mean, var,
                                  True)
    return out, mean, var


def batchnorm_relu_backward(dout, x, mean, var, gamma, beta, eps):
    """Gradient of batchnorm_relu_forward_train from dout (the gradient of its output).

    dout, x (N, C) or (N, C, H, W); mean, var (C,) as that forward returned them; gamma,
    beta (C,); eps as given to it -> dx (x's shape), dgamma (C,), dbeta (C,) in x's dtype.
    The mask bn(x) > 0 is recomputed inside batch norm's two gradient passes.
    """
    return _bn_backward("batchnorm_relu_backward", _norm.batchnorm_relu_backward, dout, x,
                        mean, var, gamma, beta, eps)


def batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps):
    """max((x - mean) / sqrt(var + eps) * gamma + beta, 0) with given statistics (batch norm's
    evaluation mode) in one pass.

    x (N, C) or (N, C, H, W), gamma, beta, mean, var (C,) -> out (x's shape and dtype).
    """
    fn = "batchnorm_relu_forward_eval"
    _require_direct(fn)
    x, x3, gamma, beta = _bn_inputs(fn, x, gamma, beta)
    mean, var = _stats(fn, mean, var, x.shape[1])
    out = np.empty_like(x)
    if x.size:
        _norm.batchnorm_relu_forward_eval(x3, gamma, beta, mean, var, float(eps),
                                          out.reshape(x3.shape))
    return out


def batchnorm_relu_backward_eval(dout, x, mean, var, gamma, beta, eps):
    """Gradient of batchnorm_relu_forward_eval (the statistics are constants) in one pass.

    dout, x (N, C) or (N, C, H, W); mean, var, gamma, beta (C,) -> dx (x's shape),
    dgamma (C,), dbeta (C,) in x's dtype.
    """
    return _bn_backward("batchnorm_relu_backward_eval", _norm.batchnorm_relu_backward_eval,
                        dout, x, mean, var, gamma, beta, eps)


def add_relu_forward(a, b):
    """max(a + b, 0) for float arrays a, b of one shape and dtype (any shape), in one pass:
    np.maximum(a + b, 0) bit for bit. Its gradient is relu_backward(dout, out)."""
    fn = "add_relu_forward"
    _require_direct(fn)
    a = _float_array(fn, "a", a, np.ndim(a))
    b = _float_array(fn, "b", b, np.ndim(b))
    _check_dtypes(fn, a=a, b=b)
    if a.shape != b.shape:
        raise ValueError(f"{fn}: a {a.shape} and b {b.shape} must have the same shape")
    out = np.empty_like(a)
    _eltwise.add_relu_forward(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out
