"""The bad-input contract of every layer's backward: a cache from another layer is named, and
the upstream gradient is checked (type, dtype, shape) by the one check_dout; param dicts
reject keys they do not know."""
import numpy as np
import pytest

from minidl import layers as L


def r(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


BN = {"mode": "train"}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}
# name -> (forward call returning (out, cache), backward)
LAYERS = {
    "Linear": (lambda: L.Linear.forward(r(2, 3), r(3, 4), r(4)), L.Linear.backward),
    "ReLU": (lambda: L.ReLU.forward(r(2, 3)), L.ReLU.backward),
    "Linear_ReLU": (lambda: L.Linear_ReLU.forward(r(2, 3), r(3, 4), r(4)), L.Linear_ReLU.backward),
    "Dropout": (lambda: L.Dropout.forward(r(2, 3), {"p": 0.5, "mode": "train", "seed": 1}),
                L.Dropout.backward),
    "Dropout(test)": (lambda: L.Dropout.forward(r(2, 3), {"p": 0.5, "mode": "test"}),
                      L.Dropout.backward),
    "Conv": (lambda: L.Conv.forward(r(1, 2, 4, 4), r(3, 2, 3, 3), r(3), {"pad": 1}),
             L.Conv.backward),
    "FastConv": (lambda: L.FastConv.forward(r(1, 2, 4, 4), r(3, 2, 3, 3), r(3), {"pad": 1}),
                 L.FastConv.backward),
    "MaxPool": (lambda: L.MaxPool.forward(r(1, 2, 4, 4), POOL), L.MaxPool.backward),
    "FastMaxPool": (lambda: L.FastMaxPool.forward(r(1, 2, 4, 4), POOL), L.FastMaxPool.backward),
    "AvgPool": (lambda: L.AvgPool.forward(r(1, 2, 4, 4), POOL), L.AvgPool.backward),
    "GlobalAvgPool": (lambda: L.GlobalAvgPool.forward(r(1, 2, 4, 4)), L.GlobalAvgPool.backward),
    "BatchNorm": (lambda: L.BatchNorm.forward(r(4, 3), r(3), r(3), dict(BN)), L.BatchNorm.backward),
    "SpatialBatchNorm": (lambda: L.SpatialBatchNorm.forward(r(2, 3, 2, 2), r(3), r(3), dict(BN)),
                         L.SpatialBatchNorm.backward),
    "LayerNorm": (lambda: L.LayerNorm.forward(r(4, 3), r(3), r(3), {}), L.LayerNorm.backward),
    "SpatialGroupNorm": (lambda: L.SpatialGroupNorm.forward(r(2, 4, 2, 2), r(4), r(4), 2, {}),
                         L.SpatialGroupNorm.backward),
    "Flatten": (lambda: L.Flatten.forward(r(2, 3, 2)), L.Flatten.backward),
    "Sigmoid": (lambda: L.Sigmoid.forward(r(2, 3)), L.Sigmoid.backward),
    "ReLU6": (lambda: L.ReLU6.forward(r(2, 3)), L.ReLU6.backward),
    "Add": (lambda: L.Add.forward(r(2, 3), r(2, 3, seed=1)), L.Add.backward),
    "ChannelConcat": (lambda: L.ChannelConcat.forward([r(1, 2, 2, 2), r(1, 1, 2, 2)]),
                      L.ChannelConcat.backward),
    "ChannelSlice": (lambda: L.ChannelSlice.forward(r(1, 3, 2, 2), 1, 3), L.ChannelSlice.backward),
    "ChannelShuffle": (lambda: L.ChannelShuffle.forward(r(1, 4, 2, 2), 2),
                       L.ChannelShuffle.backward),
    "ChannelScale": (lambda: L.ChannelScale.forward(r(1, 3, 2, 2), r(1, 3, 1, 1)),
                     L.ChannelScale.backward),
    "Pad": (lambda: L.Pad.forward(r(1, 1, 2, 2), (1, 0, 0, 1)), L.Pad.backward),
    "Subsample": (lambda: L.Subsample.forward(r(1, 1, 3, 3), 2), L.Subsample.backward),
    "ChannelPad": (lambda: L.ChannelPad.forward(r(1, 1, 2, 2), 1, 1), L.ChannelPad.backward),
    "AdaptiveAvgPool": (lambda: L.AdaptiveAvgPool.forward(r(1, 1, 5, 5), 2),
                        L.AdaptiveAvgPool.backward),
    "SpatialBatchNormReLU": (lambda: L.SpatialBatchNormReLU.forward(r(2, 3, 2, 2), r(3), r(3),
                                                                    dict(BN)),
                             L.SpatialBatchNormReLU.backward),
    "AddReLU": (lambda: L.AddReLU.forward(r(2, 3), r(2, 3, seed=1)), L.AddReLU.backward),
}


def _layer(name):
    return name.split("(")[0]


# a sandwich's backward hands dout to its last part first, whose check names that part
FIRST_BACKWARD = {"Linear_ReLU": "ReLU"}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_cache_from_another_layer_is_named_not_unpacked(name):
    make, backward = LAYERS[name]
    out, _ = make()
    other_name = "Flatten" if _layer(name) != "Flatten" else "ReLU"
    _, other_cache = LAYERS[other_name][0]()
    with pytest.raises(TypeError, match=rf"{_layer(name)}.backward: this cache was made by "
                                        rf"{other_name}.forward"):
        backward(out, other_cache)
    with pytest.raises(TypeError, match=rf"{_layer(name)}.backward: cache must be the cache"):
        backward(out, (1, 2, 3))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_backward_checks_the_upstream_gradient(name):
    make, backward = LAYERS[name]
    out, cache = make()
    layer = FIRST_BACKWARD.get(name, _layer(name))
    with pytest.raises(TypeError, match=rf"{layer}: dtype mismatch: dout is float32"):
        backward(out.astype(np.float32), cache)
    with pytest.raises(TypeError, match=rf"{layer}: dout must be float32 or float64, got int64"):
        backward(out.astype(np.int64), cache)
    with pytest.raises(TypeError, match=rf"{layer}: dout must be a NumPy array, got list"):
        backward(out.tolist(), cache)
    with pytest.raises(ValueError, match=rf"{layer}: dout must have shape"):
        backward(np.zeros(out.shape + (1,)), cache)
    backward(out.copy(), cache)  # and the right one still works


@pytest.mark.parametrize("call,message", [
    (lambda: L.FastConv.forward(r(1, 1, 3, 3), r(1, 1, 3, 3), None, {"pad": 1, "padding": 1}),
     r"FastConv: unknown conv_param key\(s\) 'padding'"),
    (lambda: L.MaxPool.forward(r(1, 1, 4, 4), dict(POOL, pad_h=1)),
     r"MaxPool: unknown pool_param key\(s\) 'pad_h'; the keys are 'pool_height'"),
    (lambda: L.FastMaxPool.forward(r(1, 1, 4, 4), dict(POOL, strides=2)),
     r"FastMaxPool: unknown pool_param key\(s\) 'strides'"),
    (lambda: L.BatchNorm.forward(r(4, 3), r(3), r(3), {"mode": "train", "momentun": 0.5}),
     r"BatchNorm: unknown bn_param key\(s\) 'momentun'; the keys are 'mode', 'eps'"),
    (lambda: L.SpatialBatchNorm.forward(r(2, 3, 2, 2), r(3), r(3), {"mode": "train", "esp": 1}),
     r"SpatialBatchNorm: unknown bn_param key\(s\) 'esp'"),
    (lambda: L.Dropout.forward(r(2, 3), {"p": 0.5, "mode": "train", "keep": 0.5}),
     r"Dropout: unknown dropout_param key\(s\) 'keep'; the keys are 'p', 'mode', 'seed'"),
    (lambda: L.LayerNorm.forward(r(4, 3), r(3), r(3), {"epsilon": 1e-5}),
     r"LayerNorm: unknown ln_param key\(s\) 'epsilon'"),
    (lambda: L.SpatialGroupNorm.forward(r(2, 4, 2, 2), r(4), r(4), 2, {"G": 2}),
     r"SpatialGroupNorm: unknown gn_param key\(s\) 'G'"),
])
def test_param_dicts_reject_unknown_keys(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_layer_and_group_norm_accept_the_mode_the_course_models_set():
    L.LayerNorm.forward(r(4, 3), r(3), r(3), {"mode": "train", "eps": 1e-5})
    L.SpatialGroupNorm.forward(r(2, 4, 2, 2), r(4), r(4), 2, {"mode": "test"})
