"""cs231n.gradient_check: the blob and sparse variants with the course's arguments, printing and
semantics, on minidl's one numeric derivative; FullyConnectedNet's 2019 `dropout` keyword,
checked as the Dropout notebook checks it."""
import random
import re

import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl import gradcheck


class Blob:
    """The course's blob: values and their upstream gradient."""

    def __init__(self, vals, diffs=None):
        self.vals = vals
        self.diffs = np.zeros_like(vals) if diffs is None else diffs


def test_eval_numerical_gradient_blobs_differentiates_through_the_output_blob():
    rng = np.random.default_rng(0)
    x, w = Blob(rng.standard_normal((4, 3))), Blob(rng.standard_normal((3, 2)))
    out = Blob(np.zeros((4, 2)), rng.standard_normal((4, 2)))

    def affine(x_blob, w_blob, out_blob):
        out_blob.vals = x_blob.vals @ w_blob.vals

    x_before = x.vals.copy()
    dx, dw = cs.eval_numerical_gradient_blobs(affine, (x, w), out)
    # CS231n's bound for a correct gradient (rel_error, the notebooks' definition)
    assert cs.rel_error(dx, out.diffs @ w.vals.T) < 1e-7
    assert cs.rel_error(dw, x.vals.T @ out.diffs) < 1e-7
    np.testing.assert_array_equal(x.vals, x_before)  # perturbed in place, then restored


def test_eval_numerical_gradient_net_calls_the_nets_forward():
    rng = np.random.default_rng(1)
    x, out = Blob(rng.standard_normal(5)), Blob(np.zeros(5), rng.standard_normal(5))

    class Net:
        def forward(self):
            out.vals = np.tanh(x.vals)

    (dx,) = cs.eval_numerical_gradient_net(Net(), [x], out)
    np.testing.assert_allclose(dx, out.diffs * (1 - np.tanh(x.vals) ** 2), rtol=1e-8)


def test_grad_check_sparse_prints_the_courses_lines(capsys):
    rng = np.random.default_rng(2)
    W = rng.standard_normal((6, 4))
    f = lambda w: float(np.sum(w ** 3))  # noqa: E731
    random.seed(0)
    assert cs.grad_check_sparse(f, W, 3 * W ** 2, num_checks=5) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    pattern = re.compile(r"numerical: (-?\d+\.\d{6}) analytic: (-?\d+\.\d{6}), "
                         r"relative error: (\d\.\d{6}e[-+]\d\d)$")
    for line in lines:
        m = pattern.match(line)
        assert m, line
        assert float(m.group(3)) < 1e-7  # the course's bound for a correct gradient
    random.seed(0)                        # Python's random picks the elements, as the course
    cs.grad_check_sparse(f, W, 3 * W ** 2, num_checks=5)
    assert capsys.readouterr().out.splitlines() == lines
    cs.grad_check_sparse(f, W, 3 * W ** 2 + 1.0, num_checks=2)  # a wrong gradient shows
    errors = [float(line.rsplit(" ", 1)[1]) for line in capsys.readouterr().out.splitlines()]
    assert min(errors) > 1e-3


def test_eval_numerical_gradient_prints_each_index_when_verbose(capsys):
    x = np.array([[1.0, 2.0]])
    grad = cs.eval_numerical_gradient(lambda a: float(np.sum(a ** 2)), x)
    np.testing.assert_allclose(grad, [[2.0, 4.0]], rtol=1e-8)
    assert capsys.readouterr().out.splitlines()[0].startswith("(0, 0) 2.0")
    assert gradcheck.centered_difference(lambda a: a ** 2, x, (0, 1), None, 1e-5) == \
        pytest.approx(4.0)


# --------------------------------------------------------------------------- dropout keyword

def test_fully_connected_net_takes_2019s_dropout_keyword_as_keep_ratio():
    # The 2019 Dropout notebook: dropout in [1, 0.75, 0.5], seed 123, errors around e-6.
    rng = np.random.default_rng(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, N)
    for dropout in [1, 0.75, 0.5]:
        model = cs.FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2,
                                     dtype=np.float64, dropout=dropout, seed=123)
        assert model.use_dropout == (dropout != 1)
        same = cs.FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2,
                                    dtype=np.float64, dropout_keep_ratio=dropout, seed=123)
        loss, grads = model.loss(X, y)
        assert loss == same.loss(X, y)[0]
        if dropout != 1:
            assert model.dropout_param["p"] == dropout
        for name in sorted(grads):
            numeric = cs.eval_numerical_gradient(lambda _: model.loss(X, y)[0],
                                                 model.params[name], verbose=False, h=1e-5)
            bound = 1e-4 if (dropout == 1 and name == "W2") else 1e-5
            assert cs.rel_error(numeric, grads[name]) < bound, (dropout, name)


def test_dropout_keywords_that_disagree_or_mean_2017s_drop_are_errors():
    with pytest.raises(ValueError, match="disagree"):
        cs.FullyConnectedNet([5], input_dim=4, dropout=0.5, dropout_keep_ratio=0.75)
    with pytest.raises(ValueError, match=r"keep probability must be in \(0, 1\].*got 0"):
        cs.FullyConnectedNet([5], input_dim=4, dropout=0)
    net = cs.FullyConnectedNet([5], input_dim=4, dropout=0.5, dropout_keep_ratio=0.5)
    assert net.dropout_param["p"] == 0.5
    # positional: the fourth argument is the keep ratio in both editions
    assert cs.FullyConnectedNet([5], 4, 3, 0.6).dropout_param["p"] == 0.6
