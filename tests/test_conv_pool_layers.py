"""Conv / FastConv and the pooling layers: gradients, naive-vs-fast agreement, bad input."""
import numpy as np
import pytest

from minidl.gradcheck import compute_numeric_gradient, rel_error
from minidl.layers import AvgPool, Conv, FastConv, FastMaxPool, GlobalAvgPool, MaxPool

# (x shape, w shape, conv_param): stride 1/2, pad 0/1/2, non-square, groups, dilation
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), {"stride": 1, "pad": 1}),
    ((2, 3, 7, 5), (2, 3, 3, 3), {"stride": 2, "pad": 1}),
    ((1, 2, 6, 8), (3, 2, 4, 2), {"stride": 2, "pad": 2}),
    ((2, 4, 5, 6), (6, 2, 3, 3), {"stride": 1, "pad": 0, "groups": 2}),
    ((2, 2, 7, 7), (3, 2, 3, 3), {"stride": 1, "pad": 2, "dilation": 2}),
    ((1, 4, 5, 5), (4, 1, 3, 3), {"stride": 2, "pad": 1, "groups": 4}),
    ((2, 3, 4, 4), (5, 3, 1, 1), {"stride": 1, "pad": 0}),
    ((1, 2, 6, 8), (2, 2, 3, 2), {"stride": (1, 2), "pad": (1, 0), "dilation": (2, 1)}),
]


def _conv_case(case, dtype=np.float64, seed=0):
    xs, ws, cp = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b, cp


# The naive loops are slow under a numeric gradient: check them on a few cases, FastConv on
# all of them (and test_fast_conv_matches_naive ties the two together on every case).
@pytest.mark.parametrize("layer, case", [(Conv, c) for c in CONV_CASES[1:6:2]]
                         + [(FastConv, c) for c in CONV_CASES])
def test_conv_gradients_match_numeric(layer, case):
    x, w, b, cp = _conv_case(case)
    out, cache = layer.forward(x, w, b, cp)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dw, db = layer.backward(dout, cache)
    dx_num = compute_numeric_gradient(lambda x_: layer.forward(x_, w, b, cp)[0], x, dout)
    dw_num = compute_numeric_gradient(lambda w_: layer.forward(x, w_, b, cp)[0], w, dout)
    db_num = compute_numeric_gradient(lambda b_: layer.forward(x, w, b_, cp)[0], b, dout)
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dw, dw_num) < 1e-8
    assert rel_error(db, db_num) < 1e-8


@pytest.mark.parametrize("case", CONV_CASES)
def test_fast_conv_matches_naive(case):
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-5)):
        x, w, b, cp = _conv_case(case, dtype)
        out1, c1 = Conv.forward(x, w, b, cp)
        out2, c2 = FastConv.forward(x, w, b, cp)
        assert out2.dtype == dtype
        scale = np.abs(out1).max()
        assert np.abs(out1 - out2).max() <= tol * scale
        dout = np.random.default_rng(2).standard_normal(out1.shape).astype(dtype)
        for g1, g2 in zip(Conv.backward(dout, c1), FastConv.backward(dout, c2)):
            assert g2.dtype == dtype
            assert np.abs(g1 - g2).max() <= tol * max(1.0, np.abs(g1).max())


def test_conv_without_bias_returns_none_db():
    x, w, _, cp = _conv_case(CONV_CASES[0])
    out, cache = FastConv.forward(x, w, None, cp)
    ref, _ = Conv.forward(x, w, np.zeros(w.shape[0]), cp)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    assert FastConv.backward(np.ones_like(out), cache)[2] is None


def test_floor_mode_follows_pytorch_output_size():
    x = np.zeros((1, 1, 224, 224))
    w = np.zeros((1, 1, 7, 7))
    with pytest.raises(ValueError, match="does not tile"):
        FastConv.forward(x, w, None, {"stride": 2, "pad": 3})
    out, _ = FastConv.forward(x, w, None, {"stride": 2, "pad": 3, "floor_mode": True})
    assert out.shape == (1, 1, 112, 112)


POOL_CASES = [
    ((2, 3, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}),
    ((1, 3, 7, 9), {"pool_height": 3, "pool_width": 3, "stride": 2, "pad": 1}),
    ((2, 2, 6, 5), {"pool_height": 2, "pool_width": 3, "stride": (2, 1)}),
]


@pytest.mark.parametrize("layer", [MaxPool, FastMaxPool, AvgPool])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_gradients_match_numeric(layer, case):
    xs, pp = case
    # distinct values, well separated, so max pooling is differentiable at x
    size = int(np.prod(xs))
    x = np.random.default_rng(0).permutation(size).reshape(xs) * (2.0 / size) - 1.0
    out, cache = layer.forward(x, pp)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx = layer.backward(dout, cache)
    dx_num = compute_numeric_gradient(lambda x_: layer.forward(x_, pp)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-8


@pytest.mark.parametrize("case", POOL_CASES)
def test_fast_max_pool_matches_naive(case):
    xs, pp = case
    for dtype in (np.float64, np.float32):
        x = np.random.default_rng(3).standard_normal(xs).astype(dtype)
        o1, c1 = MaxPool.forward(x, pp)
        o2, c2 = FastMaxPool.forward(x, pp)
        assert o2.dtype == dtype and np.array_equal(o1, o2)
        dout = np.random.default_rng(4).standard_normal(o1.shape).astype(dtype)
        np.testing.assert_allclose(MaxPool.backward(dout, c1), FastMaxPool.backward(dout, c2),
                                   rtol=1e-6, atol=1e-12)


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 1, 3, 3))
    out, _ = FastMaxPool.forward(x, {"pool_height": 3, "pool_width": 3, "stride": 1, "pad": 1})
    assert np.all(out == -1)


def test_avg_pool_counts_padding_like_pytorch():
    x = np.ones((1, 1, 2, 2))
    out, _ = AvgPool.forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2, "pad": 1,
                                 "floor_mode": True})
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), 0.25))


def test_global_avg_pool_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out, cache = GlobalAvgPool.forward(x)
    assert out.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(out[..., 0, 0], x.mean(axis=(2, 3)))
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx_num = compute_numeric_gradient(lambda x_: GlobalAvgPool.forward(x_)[0], x, dout)
    assert rel_error(GlobalAvgPool.backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("layer", [Conv, FastConv])
def test_conv_bad_input_errors_name_layer_argument_and_shapes(layer):
    name = layer.__name__
    x = np.zeros((1, 3, 5, 5))
    w = np.zeros((4, 3, 7, 7))
    b = np.zeros(4)
    with pytest.raises(ValueError, match=f"{name}: input width 5 with pad 0 is smaller than kernel width 7"):
        layer.forward(np.zeros((1, 3, 9, 5)), w, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=rf"{name}: x must be 4-D .* got shape \(3, 5, 5\)"):
        layer.forward(x[0], w, b, {"stride": 1, "pad": 0})
    with pytest.raises(TypeError, match=f"{name}: dtype mismatch: x is float32"):
        layer.forward(x.astype(np.float32), w, b, {"stride": 1, "pad": 3})
    with pytest.raises(ValueError, match=f"{name}: groups=2 must divide both input channels 3"):
        layer.forward(x, np.zeros((4, 1, 3, 3)), b, {"stride": 1, "pad": 1, "groups": 2})
    with pytest.raises(ValueError, match=f"{name}: stride 2 does not tile the input height"):
        layer.forward(np.zeros((1, 3, 6, 6)), np.zeros((4, 3, 3, 3)), b, {"stride": 2, "pad": 0})
    with pytest.raises(ValueError, match=rf"{name}: b must have shape \(4,\), got \(3,\)"):
        layer.forward(x, np.zeros((4, 3, 3, 3)), np.zeros(3), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=f"{name}: stride must be a positive integer"):
        layer.forward(x, np.zeros((4, 3, 3, 3)), b, {"stride": 0, "pad": 1})
    with pytest.raises(TypeError, match=f"{name}: x must be float32 or float64"):
        layer.forward(x.astype(np.int64), w, b, {"stride": 1, "pad": 3})


@pytest.mark.parametrize("layer", [MaxPool, FastMaxPool, AvgPool])
def test_pool_bad_input_errors(layer):
    name = layer.__name__
    pp = {"pool_height": 3, "pool_width": 3, "stride": 1}
    with pytest.raises(ValueError, match=f"{name}: input height 2 with pad 0 is smaller than kernel height 3"):
        layer.forward(np.zeros((1, 1, 2, 5)), pp)
    with pytest.raises(ValueError, match=f"{name}: x must be 4-D"):
        layer.forward(np.zeros((5, 5)), pp)
    with pytest.raises(ValueError, match=f"{name}: pool_param needs 'pool_width'"):
        layer.forward(np.zeros((1, 1, 5, 5)), {"pool_height": 2, "stride": 2})
