"""Linear, ReLU, Linear_ReLU and Dropout: gradients, hand-computed values, statistics, errors."""
import numpy as np
import pytest

from minidl.gradcheck import check_layer
from minidl.layers.dropout import Dropout
from minidl.layers.linear import Linear, Linear_ReLU, ReLU

# (x shape, M): 2-D input, and inputs that Linear flattens to (N, D)
LINEAR_CASES = [((2, 3), 4), ((3, 2, 4), 5), ((4, 2, 2, 3), 2)]


def _linear_args(x_shape, M, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    D = int(np.prod(x_shape[1:]))
    return (rng.standard_normal(x_shape).astype(dtype),
            rng.standard_normal((D, M)).astype(dtype),
            rng.standard_normal(M).astype(dtype))


@pytest.mark.parametrize("layer", [Linear, Linear_ReLU])
@pytest.mark.parametrize("x_shape,M", LINEAR_CASES)
def test_linear_gradients_match_numeric(layer, x_shape, M):
    check_layer(layer, *_linear_args(x_shape, M)).assert_passed()


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2, 2)])
def test_relu_gradient_matches_numeric(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    check_layer(ReLU, x).assert_passed()


def test_linear_forward_by_hand():
    x = np.array([[[1.0], [2.0]]])             # (1, 2, 1) flattens to [[1, 2]]
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, 0.0, 0.0])
    out, cache = Linear.forward(x, w, b)
    np.testing.assert_array_equal(out, [[5.5, 2.0, -1.0]])
    dx, dw, db = Linear.backward(np.array([[1.0, 0.0, 2.0]]), cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx.reshape(1, 2), [[1 - 2, 2 + 0]])
    np.testing.assert_array_equal(dw, [[1, 0, 2], [2, 0, 4]])
    np.testing.assert_array_equal(db, [1, 0, 2])


def test_relu_forward_and_backward_by_hand():
    x = np.array([-1.0, 0.0, 2.0])
    out, cache = ReLU.forward(x)
    np.testing.assert_array_equal(out, [0, 0, 2])
    np.testing.assert_array_equal(ReLU.backward(np.array([3.0, 4.0, 5.0]), cache), [0, 0, 5])


def test_linear_relu_is_linear_then_relu():
    x, w, b = _linear_args((3, 2, 2), 4)
    out, _ = Linear_ReLU.forward(x, w, b)
    np.testing.assert_array_equal(out, np.maximum(x.reshape(3, 4) @ w + b, 0))


@pytest.mark.parametrize("layer", [Linear, Linear_ReLU])
def test_linear_float32_in_float32_out(layer):
    x, w, b = _linear_args((3, 2, 2), 4, dtype=np.float32)
    out, cache = layer.forward(x, w, b)
    assert out.dtype == np.float32
    grads = layer.backward(np.ones_like(out), cache)
    assert [g.dtype for g in grads] == [np.float32] * 3


def test_relu_and_dropout_float32_in_float32_out():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    for layer, extra in ((ReLU, ()), (Dropout, ({"p": 0.5, "mode": "train", "seed": 1},))):
        out, cache = layer.forward(x, *extra)
        assert out.dtype == np.float32
        assert layer.backward(np.ones_like(out), cache).dtype == np.float32


# ----------------------------------------------------------------------------- bad input

def test_linear_rejects_wrong_ndim():
    x, w, b = _linear_args((2, 3), 4)
    with pytest.raises(ValueError, match=r"Linear: w must be 2-D, got shape \(12,\)"):
        Linear.forward(x, w.ravel(), b)
    with pytest.raises(ValueError, match=r"Linear: x must have at least 2 dimensions, got shape \(3,\)"):
        Linear.forward(x[0], w, b)


def test_linear_rejects_dtype_mix():
    x, w, b = _linear_args((2, 3), 4)
    with pytest.raises(TypeError, match=r"Linear: dtype mismatch: x is float32 \(2, 3\) but w is float64"):
        Linear.forward(x.astype(np.float32), w, b)


def test_linear_rejects_shape_mismatch():
    x, w, b = _linear_args((2, 3, 2), 4)
    with pytest.raises(ValueError, match=r"Linear: x \(2, 3, 2\) flattens to 6 features per sample "
                                         r"but w \(5, 4\) expects 5"):
        Linear.forward(x, w[:5], b)
    with pytest.raises(ValueError, match=r"Linear: b must have shape \(4,\), got \(3,\)"):
        Linear.forward(x, w, b[:3])


def test_linear_rejects_integer_input_and_bad_dout():
    x, w, b = _linear_args((2, 3), 4)
    with pytest.raises(TypeError, match=r"Linear: x must be float32 or float64, got int64"):
        Linear.forward(x.astype(np.int64), w, b)
    _, cache = Linear.forward(x, w, b)
    with pytest.raises(ValueError, match=r"Linear: dout must have shape \(2, 4\), got \(2, 3\)"):
        Linear.backward(np.ones((2, 3)), cache)


def test_relu_rejects_mismatched_dout():
    _, cache = ReLU.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ReLU: dout must have shape \(2, 3\), got \(3, 2\)"):
        ReLU.backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match=r"ReLU: dtype mismatch"):
        ReLU.backward(np.ones((2, 3), np.float32), cache)


# ----------------------------------------------------------------------------- dropout

def test_dropout_gradient_matches_numeric():
    x = np.random.default_rng(2).standard_normal((4, 3, 2))
    check_layer(Dropout, x, {"p": 0.4, "mode": "train", "seed": 7}).assert_passed()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_fraction_p_and_preserves_the_mean(p):
    x = np.ones((500, 400))
    out, _ = Dropout.forward(x, {"p": p, "mode": "train", "seed": 0})
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 0.01
    # survivors are scaled by 1/(1-p) (inverted dropout) so the mean stays 1
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p))
    assert abs(out.mean() - 1) < 0.02


def test_dropout_test_mode_is_identity():
    x = np.random.default_rng(0).standard_normal((3, 4))
    out, cache = Dropout.forward(x, {"p": 0.7, "mode": "test"})
    np.testing.assert_array_equal(out, x)
    dout = np.random.default_rng(1).standard_normal((3, 4))
    np.testing.assert_array_equal(Dropout.backward(dout, cache), dout)


def test_dropout_backward_uses_the_forward_mask():
    x = np.random.default_rng(0).standard_normal((20, 30)) + 3  # no exact zeros
    out, cache = Dropout.forward(x, {"p": 0.5, "mode": "train", "seed": 3})
    dx = Dropout.backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx == 0, out == 0)
    np.testing.assert_allclose(dx[dx != 0], 2.0)


def test_dropout_seed_makes_the_mask_repeatable():
    x = np.ones((10, 10))
    a, _ = Dropout.forward(x, {"p": 0.5, "mode": "train", "seed": 1})
    b, _ = Dropout.forward(x, {"p": 0.5, "mode": "train", "seed": 1})
    c, _ = Dropout.forward(x, {"p": 0.5, "mode": "train", "seed": 2})
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # without a seed the global generator is used, so np.random.seed repeats the mask
    np.random.seed(5)
    d, _ = Dropout.forward(x, {"p": 0.5, "mode": "train"})
    np.random.seed(5)
    e, _ = Dropout.forward(x, {"p": 0.5, "mode": "train"})
    np.testing.assert_array_equal(d, e)


def test_dropout_p_zero_keeps_everything():
    x = np.random.default_rng(0).standard_normal((4, 4))
    out, _ = Dropout.forward(x, {"p": 0.0, "mode": "train"})
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1])
def test_dropout_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"Dropout: dropout_param\['p'\] .* must be in \[0, 1\), "
                                         rf"got {p}"):
        Dropout.forward(np.ones((2, 2)), {"p": p, "mode": "train"})


def test_dropout_rejects_bad_mode_and_missing_p():
    with pytest.raises(ValueError, match=r"Dropout: dropout_param\['mode'\] must be 'train' or "
                                         r"'test', got 'eval'"):
        Dropout.forward(np.ones((2, 2)), {"p": 0.5, "mode": "eval"})
    with pytest.raises(ValueError, match=r"Dropout: dropout_param needs 'p'"):
        Dropout.forward(np.ones((2, 2)), {"mode": "train"})
    with pytest.raises(ValueError, match=r"Dropout: dropout_param\['mode'\] must be 'train' or "
                                         r"'test', got None"):
        Dropout.forward(np.ones((2, 2)), {"p": 0.5})
