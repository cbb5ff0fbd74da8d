"""Pooling and batch-norm kernels against the reference layers and the NumPy formulas.

Max pooling is compared with the naive MaxPool (ties included: the first maximum wins),
average pooling with its NumPy window-unfolding path, batch norm with the textbook formulas
(x - mean) / sqrt(var + eps) * gamma + beta and its closed-form gradient.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _kernels
from minidl.gradcheck import compute_numeric_gradient
from minidl.layers import AvgPool, FastMaxPool, GlobalAvgPool, MaxPool

from _conv_paths import forced_parallel


@pytest.fixture(autouse=True)
def _every_loop_parallel():
    """Small test shapes fall below the kernels' serial threshold; run their threaded code."""
    with forced_parallel():
        yield

pytestmark = pytest.mark.skipif(not _kernels.direct_available(),
                                reason="compiled kernels not built")
TOL = {np.float64: 1e-10, np.float32: 2e-5}


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 20))  # long interior runs of the row loop
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    param = {"pool_height": kh, "pool_width": kw, "stride": (sh, sw), "pad": (ph, pw),
             "floor_mode": True}
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    ties = draw(st.booleans())
    return shape, param, dtype, ties, draw(st.integers(0, 2**16))


def _close(ref, got, dtype):
    assert got.dtype == dtype and got.shape == ref.shape
    assert np.abs(ref - got).max() <= TOL[dtype] * max(1.0, np.abs(ref).max())


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_max_pool_kernel_matches_naive_including_ties(case):
    shape, param, dtype, ties, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x = (np.round(x) if ties else x).astype(dtype)  # rounding makes many equal maxima
    out_ref, cache_ref = MaxPool.forward(x, param)
    out, cache = FastMaxPool.forward(x, param)
    _close(out_ref, out, dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _close(MaxPool.backward(dout, cache_ref), FastMaxPool.backward(dout, cache), dtype)


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_avg_pool_kernel_matches_numpy_path(case):
    shape, param, dtype, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = AvgPool.forward(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = AvgPool.backward(dout, cache)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_kernels, "_force_numpy", True)
        out_ref, cache_ref = AvgPool.forward(x, param)
        dx_ref = AvgPool.backward(dout, cache_ref)
    _close(out_ref, out, dtype)
    _close(dx_ref, dx, dtype)


@pytest.mark.parametrize("k,s,p,hw", [(2, 2, 0, 4), (3, 2, 1, 5), (3, 2, 1, 6)])
def test_avg_pool_gradient_is_numeric_gradient(k, s, p, hw):
    rng = np.random.default_rng(k + p)
    x = rng.standard_normal((1, 2, hw, hw))
    param = {"pool_height": k, "pool_width": k, "stride": s, "pad": p, "floor_mode": True}
    out, cache = AvgPool.forward(x, param)
    dout = rng.standard_normal(out.shape)
    num = compute_numeric_gradient(lambda x_: AvgPool.forward(x_, param)[0], x, dout)
    np.testing.assert_allclose(AvgPool.backward(dout, cache), num, atol=1e-8)


def test_max_pool_handles_non_contiguous_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 12))[:, :, ::2, :]
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = FastMaxPool.forward(x, param)
    ref, _ = MaxPool.forward(np.ascontiguousarray(x), param)
    np.testing.assert_array_equal(out, ref)


def test_pool_kernel_rejects_out_of_bounds_arguments():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="maxpool_forward: output height 5"):
        _kernels.maxpool_forward(x, 2, 2, 1, 1, 0, 0, 5, 3)
    with pytest.raises(ValueError, match="entirely in the padding"):
        _kernels.maxpool_forward(x, 2, 2, 1, 1, 2, 0, 3, 3)
    out, idx = _kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="outside the input plane"):
        _kernels.maxpool_backward(np.zeros_like(out), idx + 100, x.shape)


def test_global_avg_pool_matches_mean_and_spreads_gradient():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    out, cache = GlobalAvgPool.forward(x)
    np.testing.assert_allclose(out[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-6)
    dx = GlobalAvgPool.backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 20, np.float32))


# ------------------------------------------------------------------------- batch norm

def _bn_reference(x, gamma, beta, eps, dout):
    """The textbook formulas, in float64, over every axis but 1."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    x = x.astype(np.float64)
    dout = dout.astype(np.float64)
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    istd = 1 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * istd.reshape(shape)
    out = xhat * gamma.reshape(shape) + beta.reshape(shape)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma.reshape(shape)
    m = x.size / x.shape[1]
    dx = istd.reshape(shape) / m * (m * dxhat - dxhat.sum(axis=axes, keepdims=True)
                                    - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))
    return out, mean, var, dx, dgamma, dbeta


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 5), hw=st.sampled_from([(), (1, 1), (3, 5), (8, 7)]),
       dtype=st.sampled_from([np.float64, np.float32]), offset=st.sampled_from([0.0, 100.0]),
       seed=st.integers(0, 2**16))
def test_batchnorm_kernels_match_formulas(n, c, hw, dtype, offset, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) + hw
    if n * int(np.prod(hw)) < 2:
        shape = (n + 1, c) + hw
    x = (rng.standard_normal(shape) * 3 + offset).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    eps = 1e-5
    out, mean, var = _kernels.batchnorm_forward_train(x, gamma, beta, eps)
    dx, dgamma, dbeta = _kernels.batchnorm_backward(dout, x, mean, var, gamma, eps)
    r_out, r_mean, r_var, r_dx, r_dgamma, r_dbeta = _bn_reference(x, gamma, beta, eps, dout)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert out.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    np.testing.assert_allclose(mean, r_mean, rtol=tol, atol=tol * (1 + offset))
    np.testing.assert_allclose(var, r_var, rtol=tol * (1 + offset), atol=tol)
    for got, ref in ((out, r_out), (dx, r_dx), (dgamma, r_dgamma), (dbeta, r_dbeta)):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max()))


def test_batchnorm_kernel_gradient_is_numeric_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 4, 3))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    dout = rng.standard_normal(x.shape)
    out, mean, var = _kernels.batchnorm_forward_train(x, gamma, beta, 1e-5)
    dx, dgamma, dbeta = _kernels.batchnorm_backward(dout, x, mean, var, gamma, 1e-5)
    f = lambda x_: _kernels.batchnorm_forward_train(x_, gamma, beta, 1e-5)[0]  # noqa: E731
    np.testing.assert_allclose(dx, compute_numeric_gradient(f, x, dout), atol=1e-7)
    g = lambda g_: _kernels.batchnorm_forward_train(x, g_, beta, 1e-5)[0]  # noqa: E731
    np.testing.assert_allclose(dgamma, compute_numeric_gradient(g, gamma, dout), atol=1e-7)


def test_batchnorm_kernel_rejects_bad_shapes():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="gamma must have 3 values"):
        _kernels.batchnorm_forward_train(x, np.ones(2), np.zeros(3), 1e-5)
    with pytest.raises(ValueError, match="must be \\(N, C\\) or \\(N, C, H, W\\)"):
        _kernels.batchnorm_forward_train(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), 1e-5)
    with pytest.raises(TypeError, match="dtype mismatch"):
        _kernels.batchnorm_backward(x.astype(np.float32), x, np.zeros(3), np.ones(3), np.ones(3), 1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_equals_the_numpy_formulas_bit_for_bit(dtype):
    """The ReLU kernels give exactly np.maximum(x, 0) and dout * (x > 0), NaN and -0.0 included."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 7, 11)).astype(dtype)
    x.flat[:4] = [np.nan, -0.0, 0.0, np.inf]
    dout = rng.standard_normal(x.shape).astype(dtype)
    out = _kernels.relu_forward(x)
    dx = _kernels.relu_backward(dout, x)
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(np.signbit(out), np.signbit(np.maximum(x, 0)))
    np.testing.assert_array_equal(dx, dout * (x > 0))
    # non-contiguous input: the NumPy formulas, same results
    xt = x.transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(_kernels.relu_forward(xt), np.maximum(xt, 0))
