"""minidl.compat.cs231n: CS231n names give the same numbers as minidl.layers, and follow
CS231n where the courses differ (dropout keeps, 0.5 * reg, rel_error, Solver's string rule)."""
import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl import gradcheck, optim
from minidl.layers import conv, linear, norm, pool, sandwich
from minidl.layers.dropout import Dropout
from minidl.models import FullyConnectedNet as EECSFullyConnectedNet
from minidl.models import TwoLayerNet as EECSTwoLayerNet


def _r(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape)


CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _bn(mode="train"):
    return {"mode": mode}


# (name, compat forward, compat backward, minidl layer, args builder)
LAYER_CASES = [
    ("affine", cs.affine_forward, cs.affine_backward, linear.Linear,
     lambda: (_r(3, 2, 2), _r(4, 5), _r(5))),
    ("relu", cs.relu_forward, cs.relu_backward, linear.ReLU, lambda: (_r(3, 4),)),
    ("affine_relu", cs.affine_relu_forward, cs.affine_relu_backward, linear.Linear_ReLU,
     lambda: (_r(3, 4), _r(4, 5), _r(5))),
    ("batchnorm", cs.batchnorm_forward, cs.batchnorm_backward, norm.BatchNorm,
     lambda: (_r(6, 4), _r(4), _r(4), _bn())),
    ("layernorm", cs.layernorm_forward, cs.layernorm_backward, norm.LayerNorm,
     lambda: (_r(6, 4), _r(4), _r(4), {})),
    ("spatial_batchnorm", cs.spatial_batchnorm_forward, cs.spatial_batchnorm_backward,
     norm.SpatialBatchNorm, lambda: (_r(2, 3, 4, 4), _r(3), _r(3), _bn())),
    ("spatial_groupnorm", lambda x, g, b, G, p: cs.spatial_groupnorm_forward(x, g, b, G, p),
     cs.spatial_groupnorm_backward, norm.SpatialGroupNorm,
     lambda: (_r(2, 4, 3, 3), _r(1, 4, 1, 1), _r(1, 4, 1, 1), 2, {})),
    ("conv_naive", cs.conv_forward_naive, cs.conv_backward_naive, conv.Conv,
     lambda: (_r(2, 3, 5, 5), _r(4, 3, 3, 3), _r(4), CONV)),
    ("conv_fast", cs.conv_forward_fast, cs.conv_backward_fast, conv.FastConv,
     lambda: (_r(2, 3, 5, 5), _r(4, 3, 3, 3), _r(4), {"stride": 2, "pad": 1})),
    ("max_pool_naive", cs.max_pool_forward_naive, cs.max_pool_backward_naive, pool.MaxPool,
     lambda: (_r(2, 3, 4, 4), POOL)),
    ("max_pool_fast", cs.max_pool_forward_fast, cs.max_pool_backward_fast, pool.FastMaxPool,
     lambda: (_r(2, 3, 4, 4), POOL)),
    ("conv_relu", cs.conv_relu_forward, cs.conv_relu_backward, sandwich.Conv_ReLU,
     lambda: (_r(2, 3, 4, 4), _r(2, 3, 3, 3), _r(2), CONV)),
    ("conv_relu_pool", cs.conv_relu_pool_forward, cs.conv_relu_pool_backward,
     sandwich.Conv_ReLU_Pool, lambda: (_r(2, 3, 4, 4), _r(2, 3, 3, 3), _r(2), CONV, POOL)),
    ("conv_bn_relu", cs.conv_bn_relu_forward, cs.conv_bn_relu_backward,
     sandwich.Conv_BatchNorm_ReLU,
     lambda: (_r(2, 3, 4, 4), _r(2, 3, 3, 3), _r(2), _r(2), _r(2), CONV, _bn())),
]


@pytest.mark.parametrize("name, fwd, bwd, layer, make_args", LAYER_CASES,
                         ids=[c[0] for c in LAYER_CASES])
def test_compat_layer_equals_the_minidl_layer(name, fwd, bwd, layer, make_args):
    out, cache = fwd(*make_args())
    ref_out, ref_cache = layer.forward(*make_args())
    np.testing.assert_array_equal(out, ref_out)
    dout = _r(*out.shape, seed=5)
    grads, ref_grads = bwd(dout, cache), layer.backward(dout, ref_cache)
    if isinstance(ref_grads, np.ndarray):
        grads, ref_grads = (grads,), (ref_grads,)
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_array_equal(g, r)


def test_batchnorm_backward_alt_is_the_closed_form():
    x, gamma, beta = _r(6, 4), _r(4), _r(4)
    _, cache = cs.batchnorm_forward(x, gamma, beta, _bn())
    dout = _r(6, 4, seed=3)
    ref = norm.BatchNorm.backward_alt(dout, cache)
    for g, r in zip(cs.batchnorm_backward_alt(dout, cache), ref):
        np.testing.assert_array_equal(g, r)


def test_spatial_groupnorm_gradients_keep_cs231n_gamma_shape():
    x, gamma, beta = _r(2, 4, 3, 3), _r(1, 4, 1, 1), _r(1, 4, 1, 1)
    out, cache = cs.spatial_groupnorm_forward(x, gamma, beta, 2, {"eps": 1e-5})
    _, dgamma, dbeta = cs.spatial_groupnorm_backward(_r(*out.shape), cache)
    assert dgamma.shape == dbeta.shape == (1, 4, 1, 1)


def test_fast_conv_and_pool_aliases_are_the_fast_layers():
    assert cs.conv_forward_im2col is cs.conv_forward_strides is cs.conv_forward_fast
    assert cs.conv_backward_im2col is cs.conv_backward_strides is cs.conv_backward_fast
    assert cs.max_pool_forward_reshape is cs.max_pool_forward_fast
    assert cs.max_pool_backward_im2col is cs.max_pool_backward_fast


def test_losses_optimizers_and_numeric_gradients_are_minidls():
    from minidl import losses

    x, y = _r(5, 4), np.array([0, 3, 1, 2, 0])
    for name in ("softmax_loss", "svm_loss"):
        loss, dx = getattr(cs, name)(x, y)
        ref_loss, ref_dx = getattr(losses, name)(x, y)
        assert loss == ref_loss
        np.testing.assert_array_equal(dx, ref_dx)
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        w, dw = _r(3, 4), _r(3, 4, seed=1)
        next_w, config = getattr(cs, name)(w, dw, {"learning_rate": 1e-2})
        ref_w, ref_config = getattr(optim, name)(w, dw, {"learning_rate": 1e-2})
        np.testing.assert_array_equal(next_w, ref_w)
        assert sorted(config) == sorted(ref_config)
    assert cs.eval_numerical_gradient is gradcheck.eval_numerical_gradient
    assert cs.eval_numerical_gradient_array is gradcheck.eval_numerical_gradient_array


def test_rel_error_is_cs231ns_elementwise_definition():
    x, y = np.array([1.0, 1e-3]), np.array([1.0, 2e-3])
    # CS231n: max_i |x_i - y_i| / (|x_i| + |y_i|) = 1e-3 / 3e-3; EECS 498 scales by the
    # largest entries instead: 1e-3 / max_i(|x_i| + |y_i|) = 1e-3 / 2.
    assert cs.rel_error(x, y) == pytest.approx(1 / 3)
    assert gradcheck.rel_error(x, y) == pytest.approx(1e-3 / 2.0)


# --------------------------------------------------------------------------- dropout


def test_dropout_p_keeps_in_cs231n_and_drops_in_minidl():
    x = _r(50, 40) + 3
    param = {"mode": "train", "p": 0.8, "seed": 4}
    out, cache = cs.dropout_forward(x, param)
    ref, ref_cache = Dropout.forward(x, {"mode": "train", "p": 1 - 0.8, "seed": 4})
    np.testing.assert_array_equal(out, ref)
    assert abs(np.mean(out == 0) - 0.2) < 0.03  # 20% dropped when 80% are kept
    np.testing.assert_allclose(out[out != 0], x[out != 0] / 0.8)
    dout = _r(50, 40, seed=1)
    np.testing.assert_array_equal(cs.dropout_backward(dout, cache),
                                  Dropout.backward(dout, ref_cache))
    assert param["p"] == 0.8  # the caller's dict keeps CS231n's meaning


def test_dropout_test_mode_is_the_identity_and_keep_one_keeps_everything():
    x = _r(5, 6)
    out, cache = cs.dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(cs.dropout_backward(x, cache), x)
    out, _ = cs.dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("p", [0, 0.0, 1.5, -0.1, "0.5", True])
def test_dropout_keep_probability_outside_0_1_is_an_error(p):
    with pytest.raises(ValueError, match="probability of keeping"):
        cs.dropout_forward(_r(2, 3), {"mode": "train", "p": p})


# --------------------------------------------------------------------------- models


def _penalty(model):
    return sum(np.sum(w ** 2) for k, w in model.params.items() if k.startswith("W"))


@pytest.mark.parametrize("make, X", [
    (lambda reg: cs.TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=3, weight_scale=0.3,
                                reg=reg, seed=0), _r(4, 6)),
    (lambda reg: cs.FullyConnectedNet([5, 4], input_dim=6, num_classes=3, reg=reg,
                                      weight_scale=0.3, normalization="batchnorm",
                                      dtype=np.float64, seed=0), _r(4, 6)),
    (lambda reg: cs.ThreeLayerConvNet(input_dim=(2, 4, 4), num_filters=2, filter_size=3,
                                      hidden_dim=5, num_classes=3, weight_scale=0.3, reg=reg,
                                      dtype=np.float64, seed=0), _r(4, 2, 4, 4)),
])
def test_cs231n_models_regularise_with_half_reg(make, X):
    y = np.array([0, 1, 2, 1])
    plain, reg = make(0.0), make(0.4)
    loss0, grads0 = plain.loss(X, y)
    loss1, grads1 = reg.loss(X, y)
    assert loss1 - loss0 == pytest.approx(0.5 * 0.4 * _penalty(reg), rel=1e-10)
    np.testing.assert_allclose(grads1["W1"], grads0["W1"] + 0.4 * reg.params["W1"], rtol=1e-10)
    np.testing.assert_array_equal(grads1["b1"], grads0["b1"])


def test_cs231n_and_eecs_models_share_the_implementation():
    a = cs.TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=3, weight_scale=0.3, seed=2)
    b = EECSTwoLayerNet(input_dim=6, hidden_dim=5, num_classes=3, weight_scale=0.3,
                        dtype=np.float64, seed=2)
    assert isinstance(a, EECSTwoLayerNet) and a.params["W1"].dtype == np.float64
    X = _r(4, 6)
    np.testing.assert_array_equal(a.loss(X), b.loss(X))


def test_fully_connected_net_dropout_keep_ratio():
    net = cs.FullyConnectedNet([5], input_dim=6, num_classes=3, dropout_keep_ratio=0.75, seed=3)
    assert net.use_dropout and net.dropout_param["p"] == 0.75
    assert not cs.FullyConnectedNet([5], input_dim=6, num_classes=3).use_dropout
    # Same seed: CS231n's keep 0.75 drops exactly what minidl's drop 0.25 drops.
    eecs = EECSFullyConnectedNet([5], input_dim=6, num_classes=3, dropout=0.25, seed=3)
    X, y = _r(4, 6).astype(np.float32), np.array([0, 1, 2, 1])
    assert net.loss(X, y)[0] == eecs.loss(X, y)[0]


def test_fully_connected_net_with_dropout_passes_gradient_check():
    net = cs.FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dropout_keep_ratio=0.6,
                               normalization="layernorm", reg=0.3, weight_scale=0.5,
                               dtype=np.float64, seed=1)
    for k in net.params:
        if k.startswith("b"):
            net.params[k] = 0.1 * _r(*net.params[k].shape, seed=7)
    X, y = _r(5, 4), np.array([0, 1, 2, 1, 0])
    _, grads = net.loss(X, y)
    for k, w in net.params.items():
        numeric = cs.eval_numerical_gradient(lambda _: net.loss(X, y)[0], w, verbose=False,
                                             h=1e-6)
        assert gradcheck.rel_error(numeric, grads[k]) < 1e-6, k


def test_three_layer_conv_net_takes_input_dim():
    net = cs.ThreeLayerConvNet(input_dim=(1, 6, 6), num_filters=3, filter_size=3, hidden_dim=4)
    assert net.params["W1"].shape == (3, 1, 3, 3) and net.params["W2"].shape == (3 * 3 * 3, 4)
    assert net.params["W1"].dtype == np.float32


# --------------------------------------------------------------------------- Solver


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return {"X_train": rng.standard_normal((30, 6)), "y_train": rng.integers(0, 3, 30),
            "X_val": rng.standard_normal((10, 6)), "y_val": rng.integers(0, 3, 10)}


def test_solver_takes_update_rule_names_and_trains(capsys):
    model = cs.TwoLayerNet(input_dim=6, hidden_dim=20, num_classes=3, weight_scale=0.1, seed=0)
    solver = cs.Solver(model, _data(), update_rule="adam", optim_config={"learning_rate": 1e-2},
                       num_epochs=30, batch_size=10, print_every=1000, seed=0)
    solver.train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 90) loss: " in out and "(Time" not in out
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_solver_samples_minibatches_with_replacement_as_cs231n():
    solver = cs.Solver(cs.TwoLayerNet(input_dim=6, num_classes=3), _data(), verbose=False, seed=0)
    draws = np.concatenate([solver._sample(5, 5) for _ in range(50)])
    assert any(len(np.unique(solver._sample(5, 5))) < 5 for _ in range(50))
    assert set(draws) <= set(range(5))


def test_solver_rejects_unknown_update_rule_names():
    with pytest.raises(ValueError, match='invalid update_rule "adagrad"'):
        cs.Solver(cs.TwoLayerNet(input_dim=6, num_classes=3), _data(), update_rule="adagrad")


def test_every_exported_name_exists():
    for name in cs.__all__:
        assert callable(getattr(cs, name)), name
