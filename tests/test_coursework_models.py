"""Coursework models (EECS 498-007 A3): initial loss, gradient checks in float64, L2
regularisation, dtypes, dropout / batch norm modes, kaiming_initializer, save/load, and
to_module (the same network as minidl.nn modules)."""
import numpy as np
import pytest

from minidl.gradcheck import compute_numeric_gradient, rel_error
from minidl.models import (DeepConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet,
                           kaiming_initializer)

C = 5  # classes in the small models


def _fc_data(seed=0, N=6, D=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, C, N)


def _img_data(seed=0, N=3, shape=(2, 6, 6)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N,) + shape), rng.integers(0, C, N)


# name -> (constructor(**overrides) in float64, data builder)
MODELS = {
    "two_layer": (lambda **kw: TwoLayerNet(input_dim=7, hidden_dim=6, num_classes=C,
                                           dtype=np.float64, **kw), _fc_data),
    "fc": (lambda **kw: FullyConnectedNet([6, 5], input_dim=7, num_classes=C,
                                          dtype=np.float64, **kw), _fc_data),
    "fc_batchnorm": (lambda **kw: FullyConnectedNet([6, 5], input_dim=7, num_classes=C,
                                                    normalization="batchnorm", dtype=np.float64,
                                                    **kw), _fc_data),
    "fc_layernorm": (lambda **kw: FullyConnectedNet([6, 5], input_dim=7, num_classes=C,
                                                    normalization="layernorm", dtype=np.float64,
                                                    **kw), _fc_data),
    "fc_dropout": (lambda **kw: FullyConnectedNet([6, 5], input_dim=7, num_classes=C,
                                                  dropout=0.3, dtype=np.float64, **kw), _fc_data),
    "three_layer_conv": (lambda **kw: ThreeLayerConvNet(input_dims=(2, 6, 6), num_filters=3,
                                                        filter_size=3, hidden_dim=6,
                                                        num_classes=C, dtype=np.float64, **kw),
                         _img_data),
    "deep_conv": (lambda **kw: DeepConvNet(input_dims=(2, 6, 6), num_filters=[3, 4],
                                           max_pools=[1], num_classes=C, dtype=np.float64, **kw),
                  _img_data),
    "deep_conv_batchnorm": (lambda **kw: DeepConvNet(input_dims=(2, 6, 6), num_filters=[3, 4],
                                                     max_pools=[0], batchnorm=True,
                                                     num_classes=C, dtype=np.float64, **kw),
                            _img_data),
}


@pytest.mark.parametrize("name", MODELS)
def test_initial_loss_is_about_log_num_classes(name):
    build, data = MODELS[name]
    model = build(weight_scale=1e-4, reg=0.0, seed=0)
    X, y = data(N=40)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(C)) < 0.02


def _check_gradients(model, X, y, tol=1e-6):
    # Biases start at zero, which puts a ReLU input exactly on its kink whenever a whole
    # hidden vector is zero (e.g. all dropped): the numeric gradient is then half a slope.
    rng = np.random.default_rng(10)
    for k in model.params:
        if k.startswith("b"):
            model.params[k] = 0.1 * rng.standard_normal(model.params[k].shape)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for k, w in model.params.items():
        assert grads[k].shape == w.shape and grads[k].dtype == w.dtype, k
        numeric = compute_numeric_gradient(lambda _: model.loss(X, y)[0], w, h=1e-6)
        if np.max(np.abs(grads[k])) < 1e-12:
            # A bias right before batch norm: its true gradient is exactly zero, where a
            # relative error is meaningless; the numeric one must be zero up to noise.
            assert np.max(np.abs(numeric)) < 1e-7, k
        else:
            assert rel_error(numeric, grads[k]) < tol, (k, rel_error(numeric, grads[k]))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_loss_gradients_match_numeric_gradients_in_float64(name, reg):
    build, data = MODELS[name]
    # seed also fixes the dropout mask, so the loss is a deterministic function of params.
    model = build(weight_scale=0.5 if "conv" not in name else 0.3, reg=reg, seed=1)
    X, y = data(seed=2)
    _check_gradients(model, X, y)


def test_deep_conv_net_with_kaiming_weights_passes_gradient_check():
    model = DeepConvNet(input_dims=(2, 4, 4), num_filters=[3, 3, 4], max_pools=[0, 2],
                        batchnorm=True, num_classes=C, weight_scale="kaiming", reg=0.1,
                        dtype=np.float64, seed=0)
    X, y = _img_data(seed=3, N=4, shape=(2, 4, 4))
    _check_gradients(model, X, y)


@pytest.mark.parametrize("name", ["two_layer", "fc", "three_layer_conv", "deep_conv_batchnorm"])
def test_l2_regularisation_is_reg_times_sum_of_squared_weights(name):
    build, data = MODELS[name]
    X, y = data()
    plain, reg = build(weight_scale=0.3, reg=0.0, seed=4), build(weight_scale=0.3, reg=0.25, seed=4)
    loss0, grads0 = plain.loss(X, y)
    loss1, grads1 = reg.loss(X, y)
    weights = [k for k in reg.params if k.startswith("W")]
    penalty = sum(np.sum(reg.params[k] ** 2) for k in weights)
    assert loss1 - loss0 == pytest.approx(0.25 * penalty, rel=1e-10)
    for k in reg.params:
        expected = grads0[k] + (2 * 0.25 * reg.params[k] if k in weights else 0)
        np.testing.assert_allclose(grads1[k], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, args, X", [
    (TwoLayerNet, dict(input_dim=7, hidden_dim=4, num_classes=C), np.zeros((2, 7))),
    (FullyConnectedNet, dict(hidden_dims=[4], input_dim=7, num_classes=C, dropout=0.2,
                             normalization="batchnorm"), np.zeros((2, 7))),
    (ThreeLayerConvNet, dict(input_dims=(1, 4, 4), num_filters=2, filter_size=3, hidden_dim=4,
                             num_classes=C), np.zeros((2, 1, 4, 4))),
    (DeepConvNet, dict(input_dims=(1, 4, 4), num_filters=[2], max_pools=[0], batchnorm=True,
                       num_classes=C, weight_scale="kaiming"), np.zeros((2, 1, 4, 4))),
])
def test_float32_by_default_and_float64_on_request(cls, args, X):
    model = cls(**args)
    assert all(p.dtype == np.float32 for p in model.params.values())
    # A float64 input is cast to the model's dtype, as the course's X.to(self.dtype).
    scores = model.loss(X)
    assert scores.shape == (2, C) and scores.dtype == np.float32
    loss, grads = model.loss(X, np.array([0, 1]))
    assert np.asarray(loss).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    model64 = cls(dtype=np.float64, **args)
    assert all(p.dtype == np.float64 for p in model64.params.values())
    assert model64.loss(X.astype(np.float32)).dtype == np.float64


def test_seed_makes_initialisation_reproducible():
    a = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=7)
    b = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=7)
    c = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=8)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_dropout_is_the_probability_of_dropping_and_is_off_at_test_time():
    model = FullyConnectedNet([400], input_dim=7, num_classes=C, dropout=0.3,
                              dtype=np.float64, seed=0)
    assert model.use_dropout and model.dropout_param["p"] == 0.3
    plain = FullyConnectedNet([400], input_dim=7, num_classes=C, dtype=np.float64, seed=0)
    X, y = _fc_data(N=50)
    np.testing.assert_allclose(model.loss(X), plain.loss(X))  # test mode: identity
    # In training mode about 30% of the active hidden units are zeroed. With one sample,
    # row j of W2's gradient is zero exactly when hidden unit j outputs zero.
    _, grads = model.loss(X[:1], y[:1])
    hidden_alive = np.any(grads["W2"] != 0, axis=1)
    relu_alive = (X[:1].reshape(1, -1) @ model.params["W1"] + model.params["b1"] > 0)[0]
    dropped = relu_alive & ~hidden_alive
    assert 0.2 < dropped.sum() / relu_alive.sum() < 0.4
    assert not FullyConnectedNet([4], input_dim=7, dropout=0.0).use_dropout


def test_batchnorm_running_statistics_are_updated_in_training_and_used_at_test():
    model = FullyConnectedNet([6], input_dim=7, num_classes=C, normalization="batchnorm",
                              dtype=np.float64, seed=0)
    X, y = _fc_data(N=20)
    model.loss(X, y)
    bn = model.bn_params[0]
    assert bn["mode"] == "train" and np.any(bn["running_mean"] != 0)
    running = bn["running_mean"].copy()
    s1 = model.loss(X[:3])
    assert bn["mode"] == "test"
    np.testing.assert_array_equal(bn["running_mean"], running)  # test mode: not updated
    # Test mode normalises each sample on its own: a batch of one gives the same scores.
    np.testing.assert_allclose(model.loss(X[:1]), s1[:1])


def test_deep_conv_net_parameter_names_and_shapes():
    model = DeepConvNet(input_dims=(3, 8, 8), num_filters=[4, 6, 5], max_pools=[0, 2],
                        batchnorm=True, num_classes=7)
    assert model.params["W1"].shape == (4, 3, 3, 3)
    assert model.params["W3"].shape == (5, 6, 3, 3)
    assert model.params["gamma2"].shape == model.params["beta2"].shape == (6,)
    assert model.params["W4"].shape == (5 * 2 * 2, 7)
    assert len(model.params) == 4 * 3 + 2
    assert len(DeepConvNet(num_filters=[4, 6], max_pools=[]).params) == 2 * 2 + 2


def test_deep_conv_net_uses_a_given_weight_initializer():
    calls = []

    def init(Din, Dout, K=None, relu=True, dtype=None):
        calls.append((Din, Dout, K, relu))
        shape = (Din, Dout) if K is None else (Dout, Din, K, K)
        return np.full(shape, 0.5)

    model = DeepConvNet(input_dims=(1, 4, 4), num_filters=[2], max_pools=[0],
                        weight_initializer=init, dtype=np.float64)
    assert calls == [(1, 2, 3, True), (2 * 2 * 2, 10, None, False)]
    assert np.all(model.params["W1"] == 0.5) and model.params["W2"].dtype == np.float64


@pytest.mark.parametrize("K, shape, fan_in", [(None, (400, 300), 400), (3, (200, 50, 3, 3), 450)])
@pytest.mark.parametrize("relu, gain", [(True, 2.0), (False, 1.0)])
def test_kaiming_initializer_shape_and_scale(K, shape, fan_in, relu, gain):
    Din, Dout = (shape[0], shape[1]) if K is None else (shape[1], shape[0])
    w = kaiming_initializer(Din, Dout, K=K, relu=relu, dtype=np.float64,
                            rng=np.random.default_rng(0))
    assert w.shape == shape and w.dtype == np.float64
    assert w.std() == pytest.approx(np.sqrt(gain / fan_in), rel=0.03)
    assert abs(w.mean()) < 0.01
    assert kaiming_initializer(3, 4).dtype == np.float32


@pytest.mark.parametrize("name", ["two_layer", "fc_dropout", "three_layer_conv",
                                  "deep_conv_batchnorm", "fc_batchnorm"])
def test_save_and_load_round_trip(tmp_path, name):
    build, data = MODELS[name]
    model = build(weight_scale=0.3, reg=0.125, seed=0)
    X, y = data(N=8)
    model.loss(X, y)  # updates batch norm running statistics, where there are any
    path = str(tmp_path / "model.npz")
    model.save(path)
    fresh = build(weight_scale=0.3, seed=99)
    fresh.load(path)
    assert fresh.reg == 0.125
    np.testing.assert_array_equal(fresh.loss(X), model.loss(X))
    for a, b in zip(getattr(model, "bn_params", []), getattr(fresh, "bn_params", [])):
        np.testing.assert_array_equal(a["running_var"], b["running_var"])
    as32 = build(seed=5)
    as32.load(path, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in as32.params.values())


def test_loading_another_models_file_is_an_error(tmp_path):
    path = str(tmp_path / "two.npz")
    TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2).save(path)
    with pytest.raises(ValueError, match="holds a TwoLayerNet, not a ThreeLayerConvNet"):
        ThreeLayerConvNet().load(path)


@pytest.mark.parametrize("make, match", [
    (lambda: TwoLayerNet(device="cuda"), "CPU only"),
    (lambda: FullyConnectedNet([3], normalization="groupnorm"), "normalization must be"),
    (lambda: DeepConvNet(weight_scale="xavier"), "weight_scale must be"),
])
def test_bad_options_raise_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_integer_dtype_is_rejected():
    with pytest.raises(TypeError, match="TwoLayerNet: dtype must be float32 or float64"):
        TwoLayerNet(dtype=np.int64)


def test_wrong_input_shape_is_reported_by_the_layer():
    model = ThreeLayerConvNet(input_dims=(3, 8, 8), num_filters=2, filter_size=3, hidden_dim=4)
    with pytest.raises(ValueError, match="Linear"):
        model.loss(np.zeros((2, 3, 10, 10)))


@pytest.mark.parametrize("name", MODELS)
def test_to_module_computes_the_test_time_scores(name):
    build, data = MODELS[name]
    model = build(weight_scale=0.3, seed=0)
    X, y = data(N=5)
    model.loss(X, y)                   # a training pass: batch norm's running statistics
    module = model.to_module()
    assert not module.training and module.dtype == np.float64
    np.testing.assert_allclose(module.forward(X), model.loss(X), rtol=1e-12, atol=1e-12)
    assert len(module.params) == len(model.params)   # every parameter, once


def test_to_module_of_the_cs231n_models():
    from minidl.compat.cs231n.classifiers.cnn import ThreeLayerConvNet as CS231nConvNet
    from minidl.compat.cs231n.classifiers.fc_net import FullyConnectedNet as CS231nFC

    X, y = _img_data(N=4)
    for model in (CS231nConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3,
                                hidden_dim=6, num_classes=C, weight_scale=0.3,
                                dtype=np.float64, seed=0),
                  CS231nFC([6], input_dim=72, num_classes=C, dropout_keep_ratio=0.5,
                           normalization="batchnorm", dtype=np.float64, seed=0)):
        model.loss(X, y)
        np.testing.assert_allclose(model.to_module().forward(X), model.loss(X), rtol=1e-12)
