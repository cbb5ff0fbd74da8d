"""minidl's fast layers against torch.nn.functional, forward and backward (skipped without torch).

CI installs torch==2.13.0 (.ci/install-ci-extras); the README's test command passes without it.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from minidl import _kernels  # noqa: E402
from minidl.layers import AvgPool, FastConv, FastMaxPool, SpatialBatchNorm  # noqa: E402


def _torch_grads(fn, dout, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _close(a, b, dtype):
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,stride,pad,dil,groups", [
    ((2, 3, 9, 8), (4, 3, 3, 3), 1, 1, 1, 1),        # plain 3x3
    ((2, 4, 11, 11), (6, 2, 3, 3), 2, 1, 1, 2),      # grouped, strided
    ((2, 4, 9, 10), (4, 4, 3, 2), 1, 2, 2, 1),       # dilated, non-square kernel
    ((2, 6, 8, 8), (12, 1, 3, 3), 1, 1, 1, 6),       # depthwise, multiplier 2
    ((1, 8, 10, 9), (8, 1, 5, 5), 2, 2, 1, 8),       # depthwise 5x5 stride 2
    ((2, 8, 7, 7), (8, 2, 3, 3), 1, 2, 2, 4),        # grouped + dilated
    ((2, 6, 5, 5), (4, 6, 1, 1), 1, 0, 1, 1),        # 1x1
])
def test_conv2d_matches_torch(x_shape, w_shape, stride, pad, dil, groups, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    param = {"stride": stride, "pad": pad, "dilation": dil, "groups": groups, "floor_mode": True}
    out, cache = FastConv.forward(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = FastConv.backward(dout, cache)
    t_out, (t_dx, t_dw, t_db) = _torch_grads(
        lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride, pad, dil, groups), dout, x, w, b)
    for got, ref in ((out, t_out), (dx, t_dx), (dw, t_dw), (db, t_db)):
        _close(got, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,s,p,hw", [(2, 2, 0, (8, 8)), (3, 2, 1, (11, 10)), (3, 1, 1, (5, 7)),
                                      (2, 1, 0, (4, 5))])
def test_max_pool2d_matches_torch(k, s, p, hw, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    param = {"pool_height": k, "pool_width": k, "stride": s, "pad": p, "floor_mode": True}
    out, cache = FastMaxPool.forward(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = FastMaxPool.backward(dout, cache)
    t_out, (t_dx,) = _torch_grads(lambda x_: F.max_pool2d(x_, k, s, p), dout, x)
    _close(out, t_out, dtype)
    _close(dx, t_dx, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,s,p,hw", [(2, 2, 0, (8, 8)), (3, 2, 1, (11, 10)), (3, 1, 1, (5, 7))])
def test_avg_pool2d_matches_torch(k, s, p, hw, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    param = {"pool_height": k, "pool_width": k, "stride": s, "pad": p, "floor_mode": True}
    out, cache = AvgPool.forward(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = AvgPool.backward(dout, cache)
    t_out, (t_dx,) = _torch_grads(lambda x_: F.avg_pool2d(x_, k, s, p), dout, x)
    _close(out, t_out, dtype)
    _close(dx, t_dx, dtype)


def _torch_bn(x, gamma, beta, dout, eps):
    return _torch_grads(lambda x_, g_, b_: F.batch_norm(x_, None, None, g_, b_, True, 0.0, eps),
                        dout, x, gamma, beta)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_kernels_match_torch(dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(dtype)
    gamma = rng.standard_normal(3).astype(dtype)
    beta = rng.standard_normal(3).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    t_out, (t_dx, t_dg, t_db) = _torch_bn(x, gamma, beta, dout, 1e-5)
    if _kernels.direct_available():
        out, mean, var = _kernels.batchnorm_forward_train(x, gamma, beta, 1e-5)
        dx, dg, db = _kernels.batchnorm_backward(dout, x, mean, var, gamma, 1e-5)
        for got, ref in ((out, t_out), (dx, t_dx), (dg, t_dg), (db, t_db)):
            _close(got, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spatial_batch_norm_layer_matches_torch(dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(dtype)
    gamma = rng.standard_normal(3).astype(dtype)
    beta = rng.standard_normal(3).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = SpatialBatchNorm.forward(x, gamma, beta, {"mode": "train", "eps": 1e-5})
    dx, dg, db = SpatialBatchNorm.backward(dout, cache)
    t_out, (t_dx, t_dg, t_db) = _torch_bn(x, gamma, beta, dout, 1e-5)
    for got, ref in ((out, t_out), (dx, t_dx), (dg, t_dg), (db, t_db)):
        _close(got, ref, dtype)
