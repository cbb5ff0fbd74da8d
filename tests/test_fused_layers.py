"""Fused layers (SpatialBatchNormReLU, AddReLU) against the unfused chains of layers they
replace: forward values, batch and running statistics and every gradient, in float64 and
float32, compiled and NumPy paths, with every kernel loop forced parallel; plus numeric
gradient checks with the course's thresholds and the errors they raise."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _kernels
from minidl.gradcheck import check_layer
from minidl.layers import Add, AddReLU, ReLU, SpatialBatchNorm, SpatialBatchNormReLU

from _conv_paths import forced_parallel

compiled = pytest.mark.skipif(not _kernels.direct_available(), reason="compiled kernels not built")


@pytest.fixture(autouse=True)
def _every_loop_parallel():
    """Small test shapes fall below the kernels' serial threshold; run their threaded code."""
    with forced_parallel():
        yield


@pytest.fixture
def numpy_path(monkeypatch):
    """Run the layers as if the compiled kernels were not built."""
    monkeypatch.setattr(_kernels, "_force_numpy", True)


# N=1, 1x1 spatial, C=1, odd sizes, and a shape whose channels span several planes
SHAPES = [(4, 3, 5, 6), (1, 2, 3, 3), (6, 4, 1, 1), (5, 1, 4, 4), (8, 16, 7, 9)]
# relative tolerance of fused vs unfused gradients (float32: the unfused layer keeps its batch
# mean in float32, the fused one in float64, and sums run in different orders)
GRAD_RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def _bn_inputs(shape, dtype, seed=0, offset=3.0):
    """x shifted and scaled per channel, gamma of both signs, beta spread so that some
    channels are mostly negative and some mostly positive after the ReLU."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.standard_normal(C).astype(dtype)
    beta = np.linspace(-1.5, 1.5, C).astype(dtype) if C > 1 else np.array([0.3], dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def _bn_param(mode, C, seed=1, **extra):
    rng = np.random.default_rng(seed)
    return {"mode": mode, "running_mean": rng.standard_normal(C) + 3,
            "running_var": rng.random(C) + 2, **extra}


def _unfused_bn_relu(x, gamma, beta, bn_param, dout):
    an, bn_cache = SpatialBatchNorm.forward(x, gamma, beta, bn_param)
    out, relu_cache = ReLU.forward(an)
    return out, SpatialBatchNorm.backward(ReLU.backward(dout, relu_cache), bn_cache)


def _fused_bn_relu(x, gamma, beta, bn_param, dout):
    out, cache = SpatialBatchNormReLU.forward(x, gamma, beta, bn_param)
    return out, SpatialBatchNormReLU.backward(dout, cache)


def _assert_grads_close(got, ref, dtype):
    for g, r in zip(got, ref):
        assert g.dtype == dtype and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=GRAD_RTOL[dtype],
                                   atol=GRAD_RTOL[dtype] * max(1.0, np.abs(r).max()))


# --------------------------------------------------------------- SpatialBatchNormReLU vs unfused

@compiled
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_bn_relu_train_equals_batchnorm_then_relu(shape, dtype):
    x, gamma, beta, dout = _bn_inputs(shape, dtype)
    p_fused = _bn_param("train", shape[1], momentum=0.8, unbiased_running_var=True)
    p_ref = dict(p_fused)
    out, grads = _fused_bn_relu(x, gamma, beta, p_fused, dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, p_ref, dout)
    # the same expression as the unfused kernel, then the same ReLU: bit for bit
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)
    assert 0 < (out > 0).mean() < 1
    for key in ("running_mean", "running_var"):
        assert p_fused[key].dtype == p_ref[key].dtype
        np.testing.assert_array_equal(p_fused[key], p_ref[key])
    _assert_grads_close(grads, ref_grads, dtype)


@compiled
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_bn_relu_test_mode_equals_batchnorm_then_relu(shape, dtype):
    x, gamma, beta, dout = _bn_inputs(shape, dtype, seed=2)
    p_fused = _bn_param("test", shape[1])
    p_ref = dict(p_fused)
    out, grads = _fused_bn_relu(x, gamma, beta, p_fused, dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, p_ref, dout)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, rtol=GRAD_RTOL[dtype], atol=GRAD_RTOL[dtype])
    np.testing.assert_array_equal(out > 0, ref > 0)  # the same mask (no value near 0 here)
    assert p_fused["running_mean"] is p_ref["running_mean"]  # test mode writes nothing
    _assert_grads_close(grads, ref_grads, dtype)


@compiled
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bn_relu_ties_at_zero_get_zero_gradient_like_relu(mode, dtype):
    # each channel holds -2, -1, 0, 1, 2 in equal numbers: mean exactly 0, and with beta 0
    # (and running mean 0 in test mode) the normalised value is exactly 0 at every x == 0
    x = np.tile(np.arange(-2, 3, dtype=dtype), (4, 3, 2, 1))
    C = x.shape[1]
    gamma = np.array([1.5, -0.5, 2.0], dtype)
    beta = np.zeros(C, dtype)
    dout = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    params = {"mode": mode, "running_mean": np.zeros(C), "running_var": np.full(C, 2.0)}
    out, grads = _fused_bn_relu(x, gamma, beta, dict(params), dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, dict(params), dout)
    zero = x == 0
    assert (out[zero] == 0).all() and not np.signbit(out).any()
    np.testing.assert_array_equal(out > 0, ref > 0)
    np.testing.assert_allclose(out, ref, rtol=GRAD_RTOL[dtype])
    _assert_grads_close(grads, ref_grads, dtype)
    # at the ties the ReLU passes nothing back: dbeta sums dout over out > 0 only
    np.testing.assert_allclose(grads[2], np.where(out > 0, dout, 0).sum(axis=(0, 2, 3)),
                               rtol=GRAD_RTOL[dtype])


@compiled
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bn_relu_all_negative_and_all_positive_channels(dtype):
    # channel 0 entirely clamped (no gradient reaches x, gamma or beta), channel 1 never
    x, gamma, beta, dout = _bn_inputs((4, 2, 3, 5), dtype, seed=6)
    gamma = np.array([0.5, 0.5], dtype)
    beta = np.array([-10.0, 10.0], dtype)
    out, (dx, dgamma, dbeta) = _fused_bn_relu(x, gamma, beta, {"mode": "train"}, dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, {"mode": "train"}, dout)
    assert (out[:, 0] == 0).all() and (out[:, 1] > 0).all()
    assert (dx[:, 0] == 0).all() and dgamma[0] == 0 and dbeta[0] == 0
    _assert_grads_close((dx, dgamma, dbeta), ref_grads, dtype)


@compiled
def test_bn_relu_large_offset_float32_keeps_the_float64_result():
    # |mean| >> std: the centred float32 kernel stays close to the float64 answer
    x, gamma, beta, dout = _bn_inputs((8, 3, 6, 6), np.float64, seed=8, offset=1000.0)
    out64, grads64 = _fused_bn_relu(x, gamma, beta, {"mode": "train"}, dout)
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, dout)]
    out32, grads32 = _fused_bn_relu(*f32[:3], {"mode": "train"}, f32[3])
    np.testing.assert_allclose(out32, out64, atol=2e-3)
    for g32, g64 in zip(grads32, grads64):
        np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3 * np.abs(g64).max())


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), c=st.integers(1, 6), h=st.integers(1, 6), w=st.integers(1, 6),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
@compiled
def test_bn_relu_matches_unfused_on_random_shapes(n, c, h, w, dtype, seed):
    if n * h * w < 2:
        n = 2
    x, gamma, beta, dout = _bn_inputs((n, c, h, w), dtype, seed=seed)
    out, grads = _fused_bn_relu(x, gamma, beta, {"mode": "train"}, dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, {"mode": "train"}, dout)
    np.testing.assert_array_equal(out, ref)
    _assert_grads_close(grads, ref_grads, dtype)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bn_relu_numpy_path_is_the_unfused_chain(numpy_path, mode, dtype):
    x, gamma, beta, dout = _bn_inputs((3, 4, 5, 2), dtype, seed=9)
    p_fused, p_ref = _bn_param(mode, 4), _bn_param(mode, 4)
    out, grads = _fused_bn_relu(x, gamma, beta, p_fused, dout)
    ref, ref_grads = _unfused_bn_relu(x, gamma, beta, p_ref, dout)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(p_fused["running_var"], p_ref["running_var"])
    for g, r in zip(grads, ref_grads):
        np.testing.assert_array_equal(g, r)


@compiled
@pytest.mark.parametrize("mode", ["train", "test"])
def test_bn_relu_compiled_and_numpy_paths_agree(mode):
    x, gamma, beta, dout = _bn_inputs((3, 4, 5, 2), np.float64, seed=10)
    p1, p2 = _bn_param(mode, 4), _bn_param(mode, 4)
    out, grads = _fused_bn_relu(x, gamma, beta, p1, dout)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_kernels, "_force_numpy", True)
        ref, ref_grads = _fused_bn_relu(x, gamma, beta, p2, dout)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p1["running_mean"], p2["running_mean"], rtol=1e-12)
    np.testing.assert_allclose(p1["running_var"], p2["running_var"], rtol=1e-12)
    _assert_grads_close(grads, ref_grads, np.float64)


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 3, 3), (5, 2, 1, 1), (3, 1, 2, 3)])
def test_bn_relu_gradients_match_numeric(shape, mode, path, monkeypatch):
    if path == "compiled" and not _kernels.direct_available():
        pytest.skip("compiled kernels not built")
    if path == "numpy":
        monkeypatch.setattr(_kernels, "_force_numpy", True)
    x, gamma, beta, _ = _bn_inputs(shape, np.float64, seed=11)
    check_layer(SpatialBatchNormReLU, x, gamma, beta, _bn_param(mode, shape[1])).assert_passed()


# ------------------------------------------------------------------------------ AddReLU

def _add_relu_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a, b, dout = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    a.flat[:3] = -b.flat[:3]  # exact ties: a + b == 0
    return a, b, dout


def _unfused_add_relu(a, b, dout):
    s, add_cache = Add.forward(a, b)
    out, relu_cache = ReLU.forward(s)
    return out, Add.backward(ReLU.backward(dout, relu_cache), add_cache)


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 1, 1, 1), (2, 7), (100003,)])
def test_add_relu_equals_add_then_relu_bit_for_bit(shape, dtype, path, monkeypatch):
    if path == "compiled" and not _kernels.direct_available():
        pytest.skip("compiled kernels not built")
    if path == "numpy":
        monkeypatch.setattr(_kernels, "_force_numpy", True)
    a, b, dout = _add_relu_inputs(shape, dtype)
    out, cache = AddReLU.forward(a, b)
    da, db = AddReLU.backward(dout, cache)
    ref, (rda, rdb) = _unfused_add_relu(a, b, dout)
    assert out.dtype == da.dtype == db.dtype == dtype
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(ref))
    np.testing.assert_array_equal(da, rda)
    np.testing.assert_array_equal(db, rdb)
    assert (out.flat[:3] == 0).all() and (da.flat[:3] == 0).all()  # ties: no gradient


@compiled
def test_add_relu_nan_and_infinities_as_numpy():
    a = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0], np.float32)
    b = np.array([1.0, 1.0, 1.0, -0.0, -0.0, -1.0], np.float32)
    dout = np.array([1.0, np.inf, 2.0, 3.0, 4.0, np.nan], np.float32)
    out, cache = AddReLU.forward(a, b)
    ref, ref_grads = _unfused_add_relu(a, b, dout)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(ref))
    for g, r in zip(AddReLU.backward(dout, cache), ref_grads):
        np.testing.assert_array_equal(g, r)


@compiled
def test_add_relu_takes_non_contiguous_inputs():
    a, b, dout = _add_relu_inputs((3, 4, 6, 5), np.float64, seed=3)
    a_t, b_t = a.transpose(0, 1, 3, 2), b.transpose(0, 1, 3, 2)[:, :, :, ::-1]
    out, cache = AddReLU.forward(a_t, b_t)
    np.testing.assert_array_equal(out, np.maximum(a_t + b_t, 0))
    assert out.flags.c_contiguous


@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_add_relu_gradients_match_numeric(path, monkeypatch):
    if path == "compiled" and not _kernels.direct_available():
        pytest.skip("compiled kernels not built")
    if path == "numpy":
        monkeypatch.setattr(_kernels, "_force_numpy", True)
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    check_layer(AddReLU, a, b).assert_passed()


# ------------------------------------------------------------------------------ bad input

def test_fused_layers_name_themselves_in_errors():
    x = np.zeros((2, 3, 4, 4))
    g, b = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: x must be 4-D, got shape "
                                         r"\(2, 3\)"):
        SpatialBatchNormReLU.forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: gamma must have shape \(3,\)"):
        SpatialBatchNormReLU.forward(x, np.ones(2), b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: bn_param\['mode'\]"):
        SpatialBatchNormReLU.forward(x, g, b, {})
    with pytest.raises(TypeError, match="SpatialBatchNormReLU: dtype mismatch"):
        SpatialBatchNormReLU.forward(x.astype(np.float32), g, b, {"mode": "train"})
    with pytest.raises(ValueError, match="SpatialBatchNormReLU: training mode needs more than one"):
        SpatialBatchNormReLU.forward(np.zeros((1, 3, 1, 1)), g, b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: bn_param\['running_var'\] must "
                                         r"have shape \(3,\)"):
        SpatialBatchNormReLU.forward(x, g, b, {"mode": "test", "running_var": np.ones(4)})
    _, cache = SpatialBatchNormReLU.forward(x + np.arange(4.0), g, b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"SpatialBatchNormReLU: dout must have shape "
                                         r"\(2, 3, 4, 4\)"):
        SpatialBatchNormReLU.backward(np.zeros((2, 3, 4, 5)), cache)
    with pytest.raises(ValueError, match=r"AddReLU: a and b must have the same shape, got a "
                                         r"\(2, 3, 4, 4\) and b \(2, 3, 4, 1\)"):
        AddReLU.forward(x, x[..., :1])
    with pytest.raises(TypeError, match="AddReLU: dtype mismatch"):
        AddReLU.forward(x, x.astype(np.float32))
    with pytest.raises(TypeError, match="AddReLU: b must be float32 or float64"):
        AddReLU.forward(x, x.astype(np.int64))
    _, cache = AddReLU.forward(x, x)
    with pytest.raises(TypeError, match="AddReLU: dtype mismatch: dout is float32"):
        AddReLU.backward(x.astype(np.float32), cache)


@compiled
def test_fused_kernels_reject_arguments_the_c_loops_cannot_take():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="batchnorm_relu_forward_train: gamma must have 3 values"):
        _kernels.batchnorm_relu_forward_train(x, np.ones(2), np.zeros(3), 1e-5)
    with pytest.raises(ValueError, match="batchnorm_relu_forward_eval: var must have 3 values"):
        _kernels.batchnorm_relu_forward_eval(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(2),
                                             1e-5)
    with pytest.raises(ValueError, match=r"batchnorm_relu_backward: dout \(2, 3, 4, 2\) must have"):
        _kernels.batchnorm_relu_backward(x[..., :2], x, np.zeros(3), np.ones(3), np.ones(3),
                                         np.zeros(3), 1e-5)
    with pytest.raises(TypeError, match="batchnorm_relu_backward_eval: dtype mismatch"):
        _kernels.batchnorm_relu_backward_eval(x.astype(np.float32), x, np.zeros(3), np.ones(3),
                                              np.ones(3), np.zeros(3), 1e-5)
    with pytest.raises(ValueError, match=r"add_relu_forward: a \(2, 3, 4, 4\) and b \(3,\)"):
        _kernels.add_relu_forward(x, np.zeros(3))
