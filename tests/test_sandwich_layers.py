"""Sandwich layers: gradient checks, and each equals the chain of its parts."""
import numpy as np
import pytest

from minidl.gradcheck import check_layer
from minidl.layers.conv import FastConv
from minidl.layers.linear import Linear, ReLU
from minidl.layers.norm import BatchNorm, SpatialBatchNorm
from minidl.layers.pool import FastMaxPool
from minidl.layers.sandwich import (Conv_BatchNorm_ReLU, Conv_BatchNorm_ReLU_Pool, Conv_ReLU,
                                    Conv_ReLU_Pool, Linear_BatchNorm_ReLU)

POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}
# (x shape, w shape, conv_param)
CONV_CASES = [
    ((2, 3, 4, 4), (3, 3, 3, 3), {"stride": 1, "pad": 1}),
    ((1, 2, 6, 8), (4, 2, 3, 3), {"stride": 1, "pad": 1}),
    ((2, 4, 6, 6), (2, 2, 3, 3), {"stride": 1, "pad": 1, "groups": 2}),
]


def _conv_args(case, dtype=np.float64, seed=0):
    xs, ws, cp = case
    rng = np.random.default_rng(seed)
    F = ws[0]
    return dict(x=rng.standard_normal(xs).astype(dtype), w=rng.standard_normal(ws).astype(dtype),
                b=rng.standard_normal(F).astype(dtype), gamma=rng.standard_normal(F).astype(dtype),
                beta=rng.standard_normal(F).astype(dtype), conv_param=cp)


def _args(layer, a, mode="train"):
    bn = {"mode": mode, "running_mean": np.full(a["w"].shape[0], 0.5),
          "running_var": np.full(a["w"].shape[0], 2.0)}
    return {
        Conv_ReLU: (a["x"], a["w"], a["b"], a["conv_param"]),
        Conv_ReLU_Pool: (a["x"], a["w"], a["b"], a["conv_param"], POOL),
        Conv_BatchNorm_ReLU: (a["x"], a["w"], a["b"], a["gamma"], a["beta"], a["conv_param"], bn),
        Conv_BatchNorm_ReLU_Pool: (a["x"], a["w"], a["b"], a["gamma"], a["beta"],
                                   a["conv_param"], bn, POOL),
    }[layer]


CONV_SANDWICHES = [Conv_ReLU, Conv_ReLU_Pool, Conv_BatchNorm_ReLU, Conv_BatchNorm_ReLU_Pool]


@pytest.mark.parametrize("layer", CONV_SANDWICHES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_sandwich_gradients_match_numeric(layer, case):
    check_layer(layer, *_args(layer, _conv_args(case))).assert_passed()


@pytest.mark.parametrize("layer", [Conv_BatchNorm_ReLU, Conv_BatchNorm_ReLU_Pool])
def test_conv_batchnorm_sandwich_gradients_in_test_mode(layer):
    check_layer(layer, *_args(layer, _conv_args(CONV_CASES[0]), mode="test")).assert_passed()


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("x_shape,M", [((4, 3), 5), ((3, 2, 2), 4)])
def test_linear_batchnorm_relu_gradients_match_numeric(x_shape, M, mode):
    rng = np.random.default_rng(0)
    D = int(np.prod(x_shape[1:]))
    args = (rng.standard_normal(x_shape), rng.standard_normal((D, M)), rng.standard_normal(M),
            rng.standard_normal(M), rng.standard_normal(M),
            {"mode": mode, "running_mean": np.zeros(M), "running_var": np.ones(M)})
    check_layer(Linear_BatchNorm_ReLU, *args).assert_passed()


def test_conv_batchnorm_relu_pool_is_the_chain_of_its_parts():
    a = _conv_args(CONV_CASES[1])
    p1, p2 = {"mode": "train"}, {"mode": "train"}
    out, cache = Conv_BatchNorm_ReLU_Pool.forward(a["x"], a["w"], a["b"], a["gamma"], a["beta"],
                                                  a["conv_param"], p1, POOL)
    c, cc = FastConv.forward(a["x"], a["w"], a["b"], a["conv_param"])
    n, nc = SpatialBatchNorm.forward(c, a["gamma"], a["beta"], p2)
    r, rc = ReLU.forward(n)
    ref, pc = FastMaxPool.forward(r, POOL)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(p1["running_mean"], p2["running_mean"])  # bn_param updated
    dout = np.random.default_rng(5).standard_normal(out.shape)
    dn, dgamma, dbeta = SpatialBatchNorm.backward(ReLU.backward(FastMaxPool.backward(dout, pc), rc), nc)
    expected = FastConv.backward(dn, cc) + (dgamma, dbeta)
    for got, exp in zip(Conv_BatchNorm_ReLU_Pool.backward(dout, cache), expected):
        np.testing.assert_array_equal(got, exp)


def test_linear_batchnorm_relu_is_the_chain_of_its_parts():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    out, _ = Linear_BatchNorm_ReLU.forward(x, w, b, gamma, beta, {"mode": "train"})
    a, _ = Linear.forward(x, w, b)
    ref = np.maximum(BatchNorm.forward(a, gamma, beta, {"mode": "train"})[0], 0)
    np.testing.assert_array_equal(out, ref)


def test_conv_relu_without_bias_passes_none_through():
    a = _conv_args(CONV_CASES[0])
    report = check_layer(Conv_ReLU, a["x"], a["w"], None, a["conv_param"])
    report.assert_passed()
    assert [r.name for r in report] == ["x", "w"]


@pytest.mark.parametrize("layer", CONV_SANDWICHES)
def test_conv_sandwiches_float32_in_float32_out(layer):
    args = _args(layer, _conv_args(CONV_CASES[0], dtype=np.float32))
    out, cache = layer.forward(*args)
    assert out.dtype == np.float32
    grads = layer.backward(np.ones_like(out), cache)
    assert all(g.dtype == np.float32 for g in grads)


def test_sandwiches_report_errors_of_their_parts():
    a = _conv_args(CONV_CASES[0])
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: gamma must have shape \(3,\)"):
        Conv_BatchNorm_ReLU.forward(a["x"], a["w"], a["b"], a["gamma"][:2], a["beta"],
                                    a["conv_param"], {"mode": "train"})
    with pytest.raises(ValueError, match=r"FastConv: x must be 4-D"):
        Conv_ReLU.forward(a["x"][0], a["w"], a["b"], a["conv_param"])
