"""softmax_loss and svm_loss: hand-computed values, gradients, stability, dtypes, bad labels."""
import math

import numpy as np
import pytest

from minidl.gradcheck import compute_numeric_gradient, rel_error
from minidl.losses import softmax_loss, svm_loss

LOSSES = [softmax_loss, svm_loss]


def test_softmax_loss_by_hand():
    loss, dx = softmax_loss(np.array([[0.0, 0.0]]), np.array([0]))
    assert loss == pytest.approx(math.log(2))
    np.testing.assert_allclose(dx, [[-0.5, 0.5]])
    # two samples: the loss and dx are averaged over N
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    loss, dx = softmax_loss(x, np.array([2, 1]))
    z = math.exp(1) + math.exp(2) + math.exp(3)
    assert loss == pytest.approx((-math.log(math.exp(3) / z) + math.log(3)) / 2)
    np.testing.assert_allclose(dx[0], [math.exp(1) / z / 2, math.exp(2) / z / 2,
                                       (math.exp(3) / z - 1) / 2])
    np.testing.assert_allclose(dx[1], [1 / 6, (1 / 3 - 1) / 2, 1 / 6])


def test_svm_loss_by_hand():
    # margins against the correct score 1: 2 - 1 + 1 = 2 and 3 - 1 + 1 = 3
    loss, dx = svm_loss(np.array([[1.0, 2.0, 3.0]]), np.array([0]))
    assert loss == pytest.approx(5.0)
    np.testing.assert_allclose(dx, [[-2.0, 1.0, 1.0]])
    # a correct class ahead by more than the margin costs nothing
    x = np.array([[1.0, 2.0, 3.0], [5.0, 0.0, 3.5]])
    loss, dx = svm_loss(x, np.array([0, 0]))
    assert loss == pytest.approx((5.0 + 0.0) / 2)
    np.testing.assert_allclose(dx, [[-1.0, 0.5, 0.5], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("N,C", [(1, 2), (5, 3), (7, 10)])
def test_loss_gradient_matches_numeric(loss_fn, N, C):
    rng = np.random.default_rng(N * C)
    x = rng.standard_normal((N, C))
    y = rng.integers(0, C, size=N)
    _, dx = loss_fn(x, y)
    dx_num = compute_numeric_gradient(lambda x_: np.array(loss_fn(x_, y)[0]), x.copy())
    assert rel_error(dx, dx_num) < 1e-7


def test_initial_losses_for_small_random_scores():
    rng = np.random.default_rng(0)
    C = 10
    x = 1e-3 * rng.standard_normal((500, C))
    y = rng.integers(0, C, size=500)
    assert softmax_loss(x, y)[0] == pytest.approx(math.log(C), abs=1e-2)
    # each of the C - 1 wrong classes sits about one margin away
    assert svm_loss(x, y)[0] == pytest.approx(C - 1, abs=1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_loss_is_stable_for_large_scores(dtype):
    x = np.array([[1000.0, 0.0], [-1000.0, 1000.0]], dtype=dtype)
    loss, dx = softmax_loss(x, np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(2000.0 / 2, rel=1e-6)
    np.testing.assert_allclose(dx, [[0, 0], [-0.5, 0.5]], atol=1e-6)


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_return_the_dtype_of_x(loss_fn, dtype):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
    loss, dx = loss_fn(x, np.array([0, 1, 2, 0]))
    assert np.asarray(loss).dtype == dtype
    assert dx.dtype == dtype


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_accept_labels_as_lists_and_any_integer_dtype(loss_fn):
    x = np.random.default_rng(0).standard_normal((3, 4))
    ref = loss_fn(x, np.array([0, 3, 1]))[0]
    assert loss_fn(x, [0, 3, 1])[0] == ref
    assert loss_fn(x, np.array([0, 3, 1], dtype=np.uint8))[0] == ref


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_reject_labels_out_of_range(loss_fn):
    x = np.zeros((2, 3))
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: label y\[1\] = 3 is out of range for x "
                                         r"\(2, 3\): labels must be in \[0, 2\]"):
        loss_fn(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=rf"{name}: label y\[0\] = -1 is out of range"):
        loss_fn(x, np.array([-1, 0]))


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_reject_non_integer_labels(loss_fn):
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: labels y must be integers, got dtype float64 "
                                         r"\(shape \(2,\)\)"):
        loss_fn(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=rf"{name}: labels y must be integers, got dtype bool"):
        loss_fn(np.zeros((2, 3)), np.array([True, False]))


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_reject_label_length_mismatch(loss_fn):
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: labels y must have shape \(2,\) to match "
                                         r"scores x \(2, 3\), got \(3,\)"):
        loss_fn(np.zeros((2, 3)), np.array([0, 1, 2]))


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_reject_scores_that_are_not_2d_float(loss_fn):
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: x must be 2-D, got shape \(3,\)"):
        loss_fn(np.zeros(3), np.array([0]))
    with pytest.raises(TypeError, match=rf"{name}: x must be float32 or float64, got int64"):
        loss_fn(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))
