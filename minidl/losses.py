"""Classification losses: softmax (cross-entropy) and multiclass SVM (hinge), averaged over N,
and the L2 regularisation term the models add to them.

Both take scores x (N, C) and integer labels y (N,) with 0 <= y[i] < C, and return
(loss, dx): loss a scalar of x's dtype, dx (N, C) of x's dtype. log_softmax(x) gives the
log-probabilities softmax_loss uses (np.exp of it: the class probabilities).
"""
import numpy as np

from .layers._checks import check_array


def _check_scores_labels(loss, x, y):
    check_array(loss, "x", x, ndim=2)
    y = np.asarray(y)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{loss}: labels y must be integers, got dtype {y.dtype} "
                         f"(shape {y.shape})")
    N, C = x.shape
    if y.shape != (N,):
        raise ValueError(f"{loss}: labels y must have shape ({N},) to match scores x {x.shape}, "
                         f"got {y.shape}")
    if N == 0:
        raise ValueError(f"{loss}: scores x {x.shape} hold no samples")
    bad = (y < 0) | (y >= C)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{loss}: label y[{i}] = {int(y[i])} is out of range for x {x.shape}: "
                         f"labels must be in [0, {C - 1}]")
    return y


def log_softmax(x):
    """x (N, C) scores -> log softmax(x) (N, C), row by row, of x's dtype. Computed from
    shifted scores (x - max per row), so large scores do not overflow."""
    check_array("log_softmax", "x", x, ndim=2)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_loss(x, y):
    """Softmax cross-entropy: loss = -mean_i log softmax(x_i)[y_i].

    x (N, C) scores, y (N,) labels in [0, C) -> loss (scalar), dx (N, C).
    Computed from shifted scores (x - max per row), so large scores do not overflow.
    """
    y = _check_scores_labels("softmax_loss", x, y)
    N = x.shape[0]
    log_probs = log_softmax(x)
    rows = np.arange(N)
    loss = -log_probs[rows, y].mean()
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= N
    return x.dtype.type(loss), dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1:
    loss = mean_i sum_{j != y_i} max(0, x_ij - x_iy_i + 1).

    x (N, C) scores, y (N,) labels in [0, C) -> loss (scalar), dx (N, C).
    The subgradient at a margin of exactly 0 is taken as 0.
    """
    y = _check_scores_labels("svm_loss", x, y)
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] -= dx.sum(axis=1)
    dx /= N
    return x.dtype.type(loss), dx


def add_l2_regularization(loss, grads, weights, factor):
    """L2 regularisation: loss + factor * sum over W of sum(W ** 2), with the gradient
    2 * factor * W added to grads[name] for every weight (a new array in the dict).

    weights: dict name -> array, the regularised weights (never biases, gamma, beta);
    grads: dict name -> gradient, holding every name of weights; factor: reg for EECS 498's
    reg * sum(W^2) (minidl.models, nn.ClassifierModel), 0.5 * reg for CS231n's
    0.5 * reg * sum(W^2). Returns the new loss (loss itself when factor is 0).
    """
    if factor == 0:
        return loss
    for name, w in weights.items():
        loss = loss + factor * np.sum(w * w)
        grads[name] = grads[name] + (2.0 * factor) * w
    return loss
