"""Helpers that the modules, the coursework models and the layers share, each written once:
the float-dtype rule, L2 regularisation, Kaiming initialisation, the .npz model-file layout,
and the argument checks that a module makes at construction and its layer makes per call."""
import numpy as np
import pytest

import minidl
from minidl import nn
from minidl._config import float_dtype, get_default_dtype
from minidl._io import NPZ_FORMAT, NPZ_META_KEY, load_npz, save_npz
from minidl.compat import cs231n
from minidl.gradcheck import compute_numeric_gradient
from minidl.layers.dropout import Dropout
from minidl.layers.norm import BatchNorm, LayerNorm
from minidl.layers.pool import AvgPool, MaxPool
from minidl.layers.shape import ChannelSlice, Subsample
from minidl.losses import add_l2_regularization
from minidl.models import TwoLayerNet, kaiming_initializer
from minidl.nn import ShapeError, StateDictError
from minidl.nn.init import kaiming_normal


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- dtypes

def test_one_float_dtype_rule_for_modules_models_and_the_default():
    assert float_dtype("f", None) is get_default_dtype()
    assert float_dtype("f", "float64") is np.float64 and float_dtype("f", np.float32) is np.float32
    with pytest.raises(TypeError, match=r"Sequential: dtype must be float32 or float64, got int32"):
        nn.Sequential(nn.Linear(2, 2)).astype(np.int32)
    with pytest.raises(TypeError, match=r"TwoLayerNet: dtype must be float32 or float64, "
                                        r"got float16"):
        TwoLayerNet(dtype=np.float16)
    with pytest.raises(TypeError, match=r"kaiming_initializer: dtype must be float32"):
        kaiming_initializer(3, 4, dtype=np.int64)
    with pytest.raises(TypeError, match=r"set_default_dtype: dtype must be float32 or float64"):
        minidl.set_default_dtype(np.int64)
    assert minidl.get_default_dtype() is np.float32


# ----------------------------------------------------------------------------- L2

def test_l2_regularization_adds_the_penalty_and_its_gradient():
    w, v = rand(3, 4), rand(5, seed=1)
    grads = {"w": np.ones((3, 4)), "v": np.zeros(5), "b": np.ones(2)}
    loss = add_l2_regularization(1.5, grads, {"w": w, "v": v}, 0.25)
    assert loss == pytest.approx(1.5 + 0.25 * (np.sum(w ** 2) + np.sum(v ** 2)))
    np.testing.assert_allclose(grads["w"], 1.0 + compute_numeric_gradient(
        lambda a: 0.25 * np.sum(a ** 2), w.copy()), rtol=1e-6)
    np.testing.assert_allclose(grads["v"], 0.5 * v)
    np.testing.assert_array_equal(grads["b"], np.ones(2))   # not a regularised weight
    untouched = {"w": np.ones((3, 4))}
    assert add_l2_regularization(2.0, untouched, {"w": w}, 0.0) == 2.0
    np.testing.assert_array_equal(untouched["w"], np.ones((3, 4)))


@pytest.mark.parametrize("model, factor", [
    (lambda: TwoLayerNet(4, 3, 2, reg=0.3, dtype=np.float64, seed=0), 0.3),          # EECS 498
    (lambda: cs231n.TwoLayerNet(4, 3, 2, reg=0.3, seed=0), 0.15),                     # CS231n
    (lambda: nn.ClassifierModel(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
                                .astype(np.float64), reg=0.3), 0.3),
])
def test_each_course_passes_its_own_l2_factor(model, factor):
    m = model()
    X, y = rand(5, 4, seed=2), np.array([0, 1, 1, 0, 1])
    weights = [k for k in m.params if k in ("W1", "W2", "0.weight", "2.weight")]
    reg = m.reg
    loss, _ = m.loss(X, y)
    m.reg = 0.0
    plain, _ = m.loss(X, y)
    m.reg = reg
    assert loss - plain == pytest.approx(factor * sum(np.sum(m.params[k] ** 2) for k in weights))


# ----------------------------------------------------------------------------- Kaiming

@pytest.mark.parametrize("K", [None, 3])
def test_kaiming_initializer_and_kaiming_normal_draw_the_same_values(K):
    w = kaiming_initializer(4, 6, K=K, dtype=np.float64, rng=np.random.default_rng(5))
    shape = (4, 6) if K is None else (6, 4, 3, 3)
    # kaiming_normal's fan_in is shape[1] * k * k: for a linear (Din, Dout) layout that is
    # Dout, so compare with the (Dout, Din) shape there
    same = kaiming_normal("fan_in")(np.random.default_rng(5), shape if K else (6, 4), np.float64)
    np.testing.assert_array_equal(w, same.reshape(shape))


# ----------------------------------------------------------------------------- files

def test_modules_and_coursework_models_write_one_npz_layout(tmp_path):
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).astype(np.float64)
    model = cs231n.FullyConnectedNet([3], input_dim=4, num_classes=2, normalization="batchnorm")
    model.loss(rand(5, 4), np.array([0, 1, 1, 0, 1]))
    net_path, model_path = tmp_path / "net.npz", tmp_path / "model.npz"
    net.save(net_path)
    model.save(model_path)
    for path, cls in ((net_path, "Sequential"), (model_path, "FullyConnectedNet")):
        with np.load(path, allow_pickle=False) as f:    # nothing pickled
            assert NPZ_META_KEY in f.files
        arrays, meta = load_npz(path, "test")
        assert meta["format"] == NPZ_FORMAT and meta["class"] == cls
    arrays, _ = load_npz(model_path, "test")
    assert {"W1", "gamma1", "bn_params.0.running_mean"} <= set(arrays)
    with pytest.raises(ValueError, match="holds a Sequential, not a FullyConnectedNet"):
        model.load(net_path)
    with pytest.raises(StateDictError, match="'0.weight': missing"):
        net.load(model_path)
    with pytest.raises(TypeError, match="'x' holds Python objects"):
        save_npz(tmp_path / "bad.npz", {"x": np.array([{}], dtype=object)}, {})
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"reader: cannot read .*junk.npz"):
        load_npz(tmp_path / "junk.npz", "reader")


# ----------------------------------------------------------------------------- argument checks
# A module checks its arguments when it is built (where the mistake is made), with the same
# function its layer uses on every call.

@pytest.mark.parametrize("p", [1.0, -0.1, True, "0.5"])
def test_dropout_probability_is_one_check(p):
    with pytest.raises(ValueError, match=r"Dropout: p \(the probability of dropping a unit\) "
                                         r"must be in \[0, 1\)"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match=r"Dropout: dropout_param\['p'\] \(the probability of "
                                         r"dropping a unit\) must be in \[0, 1\)"):
        Dropout.forward(rand(2, 2), {"p": p, "mode": "train"})
    if p != 1.0:   # keep probability 1 is CS231n's "no dropout"
        with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['p'\] \(the "
                                             r"probability of keeping a unit, CS231n\) must be "
                                             r"in \(0, 1\]"):
            cs231n.dropout_forward(rand(2, 2), {"p": p, "mode": "train"})


@pytest.mark.parametrize("module, layer", [(nn.MaxPool2d, MaxPool), (nn.AvgPool2d, AvgPool)])
def test_pool_padding_of_at_most_half_the_window_is_one_check(module, layer):
    with pytest.raises(ValueError, match=rf"{module.__name__}: padding \(2, 2\) must be at most "
                                         r"half the pool size \(3, 3\)"):
        module(3, padding=2)
    module(3, padding=1)
    with pytest.raises(ValueError, match=rf"{layer.__name__}: pad \(2, 2\) must be at most half "
                                         r"the pool size \(3, 3\)"):
        layer.forward(rand(1, 1, 6, 6), {"pool_height": 3, "pool_width": 3, "stride": 1,
                                         "pad": 2})


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.0}, r"BatchNorm2d: eps must be in \(0.0, inf\], got 0.0"),
    ({"eps": "1e-5"}, r"BatchNorm2d: eps must be a number"),
    ({"momentum": 1.5}, r"BatchNorm2d: momentum \(PyTorch's: the weight of the new batch\) "
                        r"must be in \[0.0, 1.0\], got 1.5"),
    ({"momentum": True}, r"BatchNorm2d: momentum .* must be a number"),
])
def test_batchnorm_eps_and_momentum_are_one_check_each(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.BatchNorm2d(3, **kwargs)
    key, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=rf"BatchNorm: bn_param\['{key}'\] must be"):
        BatchNorm.forward(rand(4, 3), np.ones(3), np.zeros(3), {"mode": "train", key: value})
    if key == "eps":
        with pytest.raises(ValueError, match=r"LayerNorm: ln_param\['eps'\] must be"):
            LayerNorm.forward(rand(4, 3), np.ones(3), np.zeros(3), {"eps": value})


def test_channel_slice_bounds_are_one_check():
    with pytest.raises(ValueError, match="ChannelSlice: start 2 must be below stop 2"):
        nn.ChannelSlice(2, 2)
    with pytest.raises(ValueError, match="ChannelSlice: start 2 must be below stop 2"):
        ChannelSlice.forward(rand(1, 3, 2, 2), 2, 2)
    with pytest.raises(ShapeError, match=r"stop 5 must be at most the number of channels, 3"):
        nn.ChannelSlice(1, 5).output_shape((3, 2, 2))
    with pytest.raises(ValueError, match=r"stop 5 must be at most the number of channels, 3 "
                                         r"\(x \(1, 3, 2, 2\)\)"):
        ChannelSlice.forward(rand(1, 3, 2, 2), 1, 5)


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("hw", [(5, 4), (6, 7), (1, 1)])
def test_subsample_output_size_is_one_formula(stride, hw):
    x = rand(1, 2, *hw)
    out, cache = Subsample.forward(x, stride)
    assert nn.Subsample(stride).output_shape((2,) + hw) == out.shape[1:]
    assert Subsample.backward(out, cache).shape == x.shape
