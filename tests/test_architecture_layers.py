"""The stateless layers the architectures add to the coursework set (minidl.layers.activation,
join, shape, and pool's AdaptiveAvgPool)."""
import numpy as np
import pytest

from minidl.gradcheck import check_layer, check_pair
from minidl import layers as L


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


CASES = [
    (L.Flatten, (rand(2, 3, 2, 2),)),
    (L.Sigmoid, (rand(3, 4) * 3,)),
    (L.ReLU6, (rand(3, 5) * 4,)),
    (L.Add, (rand(2, 3), rand(2, 3, seed=1))),
    (L.ChannelSlice, (rand(2, 5, 2, 3), 1, 4)),
    (L.ChannelShuffle, (rand(2, 6, 2, 2), 3)),
    (L.ChannelScale, (rand(2, 3, 4, 4), rand(2, 3, 1, 1, seed=1))),
    (L.Pad, (rand(2, 2, 3, 3), (1, 2, 0, 1))),
    (L.Subsample, (rand(2, 2, 5, 4), 2)),
    (L.ChannelPad, (rand(2, 2, 3, 3), 1, 2)),
    (L.AdaptiveAvgPool, (rand(2, 2, 7, 5), (3, 2))),
]


@pytest.mark.parametrize("layer, args", CASES, ids=[c[0].__name__ for c in CASES])
def test_architecture_layer_gradients_match_numeric(layer, args):
    report = check_layer(layer, *args)
    assert report.passed, str(report)


def test_channel_concat_gradients_match_numeric():
    def forward(a, b, c):
        return L.ChannelConcat.forward([a, b, c])

    def backward(dout, cache):
        return tuple(L.ChannelConcat.backward(dout, cache))

    report = check_pair(forward, backward, (rand(2, 1, 3, 3), rand(2, 3, 3, 3, seed=1),
                                            rand(2, 2, 3, 3, seed=2)))
    assert report.passed, str(report)


@pytest.mark.parametrize("layer, args", CASES, ids=[c[0].__name__ for c in CASES])
def test_architecture_layers_keep_float32(layer, args):
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)
    out, cache = layer.forward(*args32)
    assert out.dtype == np.float32
    grads = layer.backward(np.ones_like(out), cache)
    for g in grads if isinstance(grads, tuple) else (grads,):
        assert g.dtype == np.float32


def test_channel_shuffle_interleaves_groups_and_backward_inverts_it():
    x = np.arange(6, dtype=np.float64).reshape(1, 6, 1, 1)
    out, cache = L.ChannelShuffle.forward(x, 2)
    assert out.ravel().tolist() == [0, 3, 1, 4, 2, 5]
    np.testing.assert_array_equal(L.ChannelShuffle.backward(out, cache), x)


def test_sigmoid_does_not_overflow():
    out, _ = L.Sigmoid.forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_pad_with_minus_infinity_for_max_pooling():
    out, _ = L.Pad.forward(np.zeros((1, 1, 1, 1)), (0, 1, 0, 1), value=-np.inf)
    assert out.shape == (1, 1, 2, 2) and np.isneginf(out).sum() == 3


@pytest.mark.parametrize("call, message", [
    (lambda: L.Add.forward(rand(2, 3), rand(3, 2)), r"same shape.*\(2, 3\).*\(3, 2\)"),
    (lambda: L.Add.forward(rand(2, 3), rand(2, 3, dtype=np.float32)), "dtype mismatch"),
    (lambda: L.ChannelConcat.forward([rand(1, 2, 3, 3), rand(1, 2, 4, 3)]), "only the channel"),
    (lambda: L.ChannelShuffle.forward(rand(1, 5, 2, 2), 2), "divide"),
    (lambda: L.ChannelSlice.forward(rand(1, 3, 2, 2), 2, 5), "stop"),
    (lambda: L.ChannelScale.forward(rand(1, 3, 2, 2), rand(1, 3)), r"s must have shape"),
    (lambda: L.Pad.forward(rand(1, 1, 2, 2), (1, 1)), "top, bottom"),
    (lambda: L.Flatten.backward(rand(2, 5), L.Flatten.forward(rand(2, 3))[1]),
     "dout must have shape"),
])
def test_architecture_layers_reject_bad_arguments_with_the_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
