"""BatchNorm, SpatialBatchNorm, LayerNorm, SpatialGroupNorm: gradients, train/test behaviour,
running averages, cross-checks between the layers, dtypes and bad input."""
import numpy as np
import pytest

from minidl.gradcheck import check_layer
from minidl.layers.norm import BatchNorm, LayerNorm, SpatialBatchNorm, SpatialGroupNorm


def _data(shape, C, dtype=np.float64, seed=0):
    """Shifted, scaled inputs (normalisation must undo them) and random gamma, beta (C,)."""
    rng = np.random.default_rng(seed)
    x = (4 * rng.standard_normal(shape) + 10).astype(dtype)
    gamma = rng.standard_normal(C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    return x, gamma, beta


def _running(C, seed=1):
    rng = np.random.default_rng(seed)
    return {"running_mean": rng.standard_normal(C), "running_var": rng.random(C) + 0.5}


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("backward", ["backward", "backward_alt"])
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(4, 3), (7, 5), (2, 1)])
def test_batchnorm_gradients_match_numeric(shape, mode, backward):
    x, gamma, beta = _data(shape, shape[1])
    bn_param = {"mode": mode, **_running(shape[1])}
    check_layer(BatchNorm, x, gamma, beta, bn_param, backward=backward).assert_passed()


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 2, 3, 3), (1, 4, 2, 1)])
def test_spatial_batchnorm_gradients_match_numeric(shape, mode):
    x, gamma, beta = _data(shape, shape[1])
    bn_param = {"mode": mode, **_running(shape[1])}
    check_layer(SpatialBatchNorm, x, gamma, beta, bn_param).assert_passed()


@pytest.mark.parametrize("shape", [(4, 3), (2, 7), (5, 1 + 1)])
def test_layernorm_gradients_match_numeric(shape):
    x, gamma, beta = _data(shape, shape[1])
    check_layer(LayerNorm, x, gamma, beta, {}).assert_passed()


@pytest.mark.parametrize("gamma_shape", ["flat", "cs231n"])
@pytest.mark.parametrize("shape,G", [((2, 6, 3, 2), 2), ((2, 4, 2, 3), 1), ((1, 4, 3, 3), 4),
                                     ((3, 6, 2, 2), 3)])
def test_groupnorm_gradients_match_numeric(shape, G, gamma_shape):
    C = shape[1]
    x, gamma, beta = _data(shape, C)
    if gamma_shape == "cs231n":
        gamma, beta = gamma.reshape(1, C, 1, 1), beta.reshape(1, C, 1, 1)
    check_layer(SpatialGroupNorm, x, gamma, beta, G, {}).assert_passed()


def test_batchnorm_backward_equals_backward_alt():
    x, gamma, beta = _data((64, 10), 10)
    out, cache = BatchNorm.forward(x, gamma, beta, {"mode": "train"})
    dout = np.random.default_rng(3).standard_normal(out.shape)
    for g1, g2 in zip(BatchNorm.backward(dout, cache), BatchNorm.backward_alt(dout, cache)):
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- forward behaviour

def test_batchnorm_train_normalises_each_feature():
    x, gamma, beta = _data((200, 3), 3)
    out, _ = BatchNorm.forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-6)  # eps shrinks it slightly
    out, _ = BatchNorm.forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), np.abs(gamma), rtol=1e-6)


def test_batchnorm_running_averages_by_hand():
    # batch mean [2, 4], biased batch variance [1, 4]
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn_param = {"mode": "train"}
    BatchNorm.forward(x, np.ones(2), np.zeros(2), bn_param)
    # running stats start at zero; momentum 0.9 weighs the old value
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.4])
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.4])
    BatchNorm.forward(x + 1, np.ones(2), np.zeros(2), bn_param)  # mean [3, 5], var [1, 4]
    np.testing.assert_allclose(bn_param["running_mean"], [0.9 * 0.2 + 0.3, 0.9 * 0.4 + 0.5])
    np.testing.assert_allclose(bn_param["running_var"], [0.9 * 0.1 + 0.1, 0.9 * 0.4 + 0.4])


def test_batchnorm_test_mode_uses_running_stats_and_eps():
    bn_param = {"mode": "test", "running_mean": np.array([1.0, -2.0]),
                "running_var": np.array([4.0, 0.25]), "eps": 0.0001}
    x = np.array([[3.0, -1.0]])
    out, _ = BatchNorm.forward(x, np.array([2.0, 1.0]), np.array([0.5, 0.0]), bn_param)
    expected = [2.0 * (3 - 1) / np.sqrt(4.0001) + 0.5, (-1 + 2) / np.sqrt(0.2501)]
    np.testing.assert_allclose(out[0], expected, rtol=1e-14)
    # test mode leaves the running statistics alone
    np.testing.assert_array_equal(bn_param["running_mean"], [1.0, -2.0])


def test_batchnorm_custom_momentum_and_unbiased_running_var():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn_param = {"mode": "train", "momentum": 0.5, "unbiased_running_var": True,
                "running_mean": np.ones(2), "running_var": np.ones(2)}
    BatchNorm.forward(x, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], [0.5 + 1.0, 0.5 + 2.0])
    # unbiased variance over 2 samples: [2, 8]
    np.testing.assert_allclose(bn_param["running_var"], [0.5 + 1.0, 0.5 + 4.0])


def test_batchnorm_test_mode_after_training_normalises_new_data():
    rng = np.random.default_rng(0)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    for _ in range(60):
        BatchNorm.forward(4 * rng.standard_normal((100, 3)) + 10, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = BatchNorm.forward(4 * rng.standard_normal((2000, 3)) + 10, gamma, beta, bn_param)
    assert np.all(np.abs(out.mean(axis=0)) < 0.1)
    assert np.all(np.abs(out.std(axis=0) - 1) < 0.1)


def test_spatial_batchnorm_is_batchnorm_over_n_h_w():
    x, gamma, beta = _data((2, 3, 4, 5), 3)
    p1, p2 = {"mode": "train"}, {"mode": "train"}
    out, cache = SpatialBatchNorm.forward(x, gamma, beta, p1)
    x2 = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    out2, cache2 = BatchNorm.forward(x2, gamma, beta, p2)
    np.testing.assert_allclose(out, out2.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_allclose(p1["running_mean"], p2["running_mean"])
    np.testing.assert_allclose(p1["running_var"], p2["running_var"])
    assert p1["running_mean"].shape == (3,)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx, dg, db = SpatialBatchNorm.backward(dout, cache)
    dx2, dg2, db2 = BatchNorm.backward(dout.transpose(0, 2, 3, 1).reshape(-1, 3), cache2)
    np.testing.assert_allclose(dx, dx2.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_allclose(dg, dg2, atol=1e-12)
    np.testing.assert_allclose(db, db2, atol=1e-12)


def test_layernorm_normalises_each_sample_like_batchnorm_of_the_transpose():
    x, gamma, beta = _data((5, 8), 8)
    out, _ = LayerNorm.forward(x, np.ones(8), np.zeros(8), {})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    bn_out, _ = BatchNorm.forward(x.T.copy(), np.ones(5), np.zeros(5), {"mode": "train"})
    np.testing.assert_allclose(out, bn_out.T, atol=1e-12)
    out, _ = LayerNorm.forward(x, gamma, beta)  # ln_param is optional
    np.testing.assert_allclose(out, bn_out.T * gamma + beta, atol=1e-12)


def test_groupnorm_normalises_each_group():
    x, _, _ = _data((2, 6, 3, 4), 6)
    out, _ = SpatialGroupNorm.forward(x, np.ones(6), np.zeros(6), 3, {})
    groups = out.reshape(2 * 3, -1)
    np.testing.assert_allclose(groups.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(groups.std(axis=1), 1, atol=1e-5)


def test_groupnorm_with_one_group_is_layernorm_of_the_flattened_image():
    x, gamma, beta = _data((3, 4, 2, 2), 4)
    out, _ = SpatialGroupNorm.forward(x, gamma, beta, 1, {})
    ln, _ = LayerNorm.forward(x.reshape(3, 16), np.ones(16), np.zeros(16), {})
    np.testing.assert_allclose(out, ln.reshape(x.shape) * gamma.reshape(1, 4, 1, 1)
                               + beta.reshape(1, 4, 1, 1), atol=1e-12)


def test_groupnorm_returns_dgamma_dbeta_in_the_shape_given():
    x, gamma, beta = _data((2, 4, 3, 3), 4)
    for gshape, bshape in (((4,), (1, 4, 1, 1)), ((1, 4, 1, 1), (4,))):
        out, cache = SpatialGroupNorm.forward(x, gamma.reshape(gshape), beta.reshape(bshape), 2, {})
        _, dgamma, dbeta = SpatialGroupNorm.backward(np.ones_like(out), cache)
        assert dgamma.shape == gshape and dbeta.shape == bshape


@pytest.mark.parametrize("layer,shape,extra", [
    (BatchNorm, (6, 3), ({"mode": "train"},)),
    (BatchNorm, (6, 3), ({"mode": "test"},)),
    (SpatialBatchNorm, (2, 3, 2, 2), ({"mode": "train"},)),
    (LayerNorm, (6, 3), ({},)),
    (SpatialGroupNorm, (2, 3, 2, 2), (3, {})),
])
def test_norm_layers_float32_in_float32_out(layer, shape, extra):
    x, gamma, beta = _data(shape, 3, dtype=np.float32)
    out, cache = layer.forward(x, gamma, beta, *extra)
    assert out.dtype == np.float32
    grads = layer.backward(np.ones_like(out), cache)
    assert [g.dtype for g in grads] == [np.float32] * 3
    if "running_mean" in extra[-1]:
        assert extra[-1]["running_mean"].dtype == np.float32
        assert extra[-1]["running_var"].dtype == np.float32


# ----------------------------------------------------------------------------- bad input

def test_batchnorm_rejects_wrong_ndim():
    x, gamma, beta = _data((2, 3, 4), 3)
    with pytest.raises(ValueError, match=r"BatchNorm: x must be 2-D, got shape \(2, 3, 4\)"):
        BatchNorm.forward(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match=r"SpatialBatchNorm: x must be 4-D, got shape \(2, 3, 4\)"):
        SpatialBatchNorm.forward(x, gamma, beta, {"mode": "train"})


def test_batchnorm_rejects_gamma_of_wrong_shape_and_dtype():
    x, gamma, beta = _data((4, 3), 3)
    with pytest.raises(ValueError, match=r"BatchNorm: gamma must have shape \(3,\) for x \(4, 3\) "
                                         r"\(3 features\), got \(2,\)"):
        BatchNorm.forward(x, gamma[:2], beta, {"mode": "train"})
    with pytest.raises(TypeError, match=r"BatchNorm: dtype mismatch: x is float64 \(4, 3\) but "
                                        r"gamma is float32"):
        BatchNorm.forward(x, gamma.astype(np.float32), beta, {"mode": "train"})


def test_batchnorm_rejects_bad_params():
    x, gamma, beta = _data((4, 3), 3)
    with pytest.raises(ValueError, match=r"BatchNorm: bn_param\['mode'\] must be 'train' or "
                                         r"'test', got None"):
        BatchNorm.forward(x, gamma, beta, {})
    with pytest.raises(ValueError, match=r"BatchNorm: bn_param\['momentum'\] must be in \[0.0, 1.0\]"):
        BatchNorm.forward(x, gamma, beta, {"mode": "train", "momentum": 1.5})
    with pytest.raises(ValueError, match=r"BatchNorm: bn_param\['eps'\] must be in \(0.0, inf\]"):
        BatchNorm.forward(x, gamma, beta, {"mode": "train", "eps": 0})
    with pytest.raises(ValueError, match=r"BatchNorm: bn_param\['running_mean'\] must have shape "
                                         r"\(3,\), got \(4,\)"):
        BatchNorm.forward(x, gamma, beta, {"mode": "train", "running_mean": np.zeros(4)})
    with pytest.raises(ValueError, match=r"BatchNorm: training mode needs more than one value "
                                         r"per feature.*\(1, 3\)"):
        BatchNorm.forward(x[:1], gamma, beta, {"mode": "train"})


def test_norm_backward_rejects_mismatched_dout():
    x, gamma, beta = _data((4, 3), 3)
    _, cache = BatchNorm.forward(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match=r"BatchNorm: dout must have shape \(4, 3\), got \(3, 4\)"):
        BatchNorm.backward_alt(np.ones((3, 4)), cache)
    _, cache = LayerNorm.forward(x, gamma, beta, {})
    with pytest.raises(TypeError, match=r"LayerNorm: dtype mismatch: dout is float32 \(4, 3\) "
                                        r"but the forward ran in float64"):
        LayerNorm.backward(np.ones((4, 3), np.float32), cache)


def test_groupnorm_rejects_groups_that_do_not_divide_channels():
    x, gamma, beta = _data((2, 6, 2, 2), 6)
    with pytest.raises(ValueError, match=r"SpatialGroupNorm: G=4 groups must divide the 6 "
                                         r"channels of x \(2, 6, 2, 2\)"):
        SpatialGroupNorm.forward(x, gamma, beta, 4, {})
    with pytest.raises(ValueError, match=r"SpatialGroupNorm: gamma must have shape \(6,\) or "
                                         r"\(1, 6, 1, 1\)"):
        SpatialGroupNorm.forward(x, gamma[:3], beta, 2, {})
    with pytest.raises(ValueError, match=r"SpatialGroupNorm: x must be 4-D"):
        SpatialGroupNorm.forward(x[0], gamma, beta, 2, {})


def test_layernorm_rejects_wrong_shapes():
    x, gamma, beta = _data((4, 3), 3)
    with pytest.raises(ValueError, match=r"LayerNorm: beta must have shape \(3,\)"):
        LayerNorm.forward(x, gamma, beta[:2], {})
    with pytest.raises(ValueError, match=r"LayerNorm: x must be 2-D"):
        LayerNorm.forward(x[None], gamma, beta, {})


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_spatial_batchnorm_compiled_path_matches_numpy_path(dtype, tol):
    """SpatialBatchNorm's training mode runs the compiled kernel when built; same numbers."""
    from minidl import _kernels

    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 3, 5, 6)) * 3 + 7).astype(dtype)
    gamma = rng.standard_normal(3).astype(dtype)
    beta = rng.standard_normal(3).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    results = []
    try:
        for compiled in (True, False):
            _kernels.use_compiled(compiled)
            bn_param = {"mode": "train", "momentum": 0.8}
            out, cache = SpatialBatchNorm.forward(x, gamma, beta, bn_param)
            assert cache.values[0].fused == (compiled and _kernels.compiled_available())
            results.append((out,) + SpatialBatchNorm.backward(dout, cache)
                           + (bn_param["running_mean"], bn_param["running_var"]))
    finally:
        _kernels.use_compiled(True)
    for a, b in zip(*results):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
