"""The CS231n names follow NumPy's type promotion, as the course's NumPy code does: integer,
bool and mixed-precision arrays are accepted and computed in the dtype NumPy gives
(ints -> float64); minidl.layers (the EECS 498 names) stays strict."""
import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl.layers import Conv, SpatialBatchNorm

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _ints(*shape, seed=0):
    return np.random.default_rng(seed).integers(-5, 6, size=shape)


# name, forward, backward, integer arguments (None: not an array)
PAIRS = [
    ("affine", cs.affine_forward, cs.affine_backward, (_ints(3, 2, 2), _ints(4, 5), _ints(5))),
    ("relu", cs.relu_forward, cs.relu_backward, (_ints(3, 4),)),
    ("batchnorm", cs.batchnorm_forward, cs.batchnorm_backward,
     (_ints(6, 4), _ints(4), _ints(4), {"mode": "train"})),
    ("batchnorm_alt", cs.batchnorm_forward, cs.batchnorm_backward_alt,
     (_ints(6, 4), _ints(4), _ints(4), {"mode": "train"})),
    ("layernorm", cs.layernorm_forward, cs.layernorm_backward,
     (_ints(6, 4), _ints(4), _ints(4), {})),
    ("dropout", cs.dropout_forward, cs.dropout_backward,
     (_ints(6, 4), {"mode": "train", "p": 0.5, "seed": 1})),
    ("conv_naive", cs.conv_forward_naive, cs.conv_backward_naive,
     (_ints(2, 3, 4, 4), _ints(2, 3, 3, 3), _ints(2), CONV)),
    ("conv_fast", cs.conv_forward_fast, cs.conv_backward_fast,
     (_ints(2, 3, 4, 4), _ints(2, 3, 3, 3), _ints(2), CONV)),
    ("max_pool_naive", cs.max_pool_forward_naive, cs.max_pool_backward_naive,
     (_ints(2, 3, 4, 4), POOL)),
    ("max_pool_fast", cs.max_pool_forward_fast, cs.max_pool_backward_fast,
     (_ints(2, 3, 4, 4), POOL)),
    ("spatial_batchnorm", cs.spatial_batchnorm_forward, cs.spatial_batchnorm_backward,
     (_ints(2, 3, 4, 4), _ints(3), _ints(3), {"mode": "train"})),
    ("spatial_groupnorm", cs.spatial_groupnorm_forward, cs.spatial_groupnorm_backward,
     (_ints(2, 4, 3, 3), _ints(1, 4, 1, 1), _ints(1, 4, 1, 1), 2, {})),
    ("affine_relu", cs.affine_relu_forward, cs.affine_relu_backward,
     (_ints(3, 4), _ints(4, 5), _ints(5))),
    ("conv_relu", cs.conv_relu_forward, cs.conv_relu_backward,
     (_ints(2, 3, 4, 4), _ints(2, 3, 3, 3), _ints(2), CONV)),
    ("conv_relu_pool", cs.conv_relu_pool_forward, cs.conv_relu_pool_backward,
     (_ints(2, 3, 4, 4), _ints(2, 3, 3, 3), _ints(2), CONV, POOL)),
    ("conv_bn_relu", cs.conv_bn_relu_forward, cs.conv_bn_relu_backward,
     (_ints(2, 3, 4, 4), _ints(2, 3, 3, 3), _ints(2), _ints(2), _ints(2), CONV,
      {"mode": "train"})),
]


def _as_float64(args):
    return tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else
                 (dict(a) if isinstance(a, dict) else a) for a in args)


def _fresh(args):
    return tuple(dict(a) if isinstance(a, dict) else a for a in args)


def _grads(g):
    return g if isinstance(g, tuple) else (g,)


@pytest.mark.parametrize("name, fwd, bwd, args", PAIRS, ids=[p[0] for p in PAIRS])
def test_integer_arrays_compute_as_float64_like_numpy(name, fwd, bwd, args):
    out, cache = fwd(*_fresh(args))
    ref, ref_cache = fwd(*_as_float64(args))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    dout = _ints(*out.shape, seed=3)  # an integer upstream gradient as well
    grads, ref_grads = _grads(bwd(dout, cache)), _grads(bwd(dout.astype(np.float64), ref_cache))
    for g, r in zip(grads, ref_grads):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("name, fwd, bwd, args", PAIRS, ids=[p[0] for p in PAIRS])
def test_float64_dout_on_a_float32_forward_gives_float64_gradients(name, fwd, bwd, args):
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a
                   for a in _fresh(args))
    out, cache = fwd(*args32)
    assert out.dtype == np.float32  # one precision in, that precision out: no upcast
    dout = np.random.default_rng(4).standard_normal(out.shape)
    same = _grads(bwd(dout.astype(np.float32), cache))
    for g, s in zip(_grads(bwd(dout, cache)), same):
        assert g.dtype == np.float64  # np.result_type(float64 dout, float32 forward)
        np.testing.assert_allclose(g, s, rtol=1e-6, atol=1e-6)


def test_kitten_cell_pattern_integer_bias_offsets_the_edge_filter():
    # The notebook's image cell: float64 images and filters, bias np.array([0, 128]).
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 12, 12))
    w = np.zeros((2, 3, 3, 3))
    w[0, :, 1, 1] = [0.3, 0.6, 0.1]                        # greyscale
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]         # horizontal edges in blue
    b = np.array([0, 128])
    out, _ = cs.conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    ref, _ = cs.conv_forward_naive(x, w, b.astype(np.float64), {"stride": 1, "pad": 1})
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    grey = 0.3 * x[:, 0] + 0.6 * x[:, 1] + 0.1 * x[:, 2]
    np.testing.assert_allclose(out[:, 0], grey)
    fast, _ = cs.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    np.testing.assert_allclose(fast, out, rtol=1e-12, atol=1e-9)


def test_spatial_batchnorm_cell_pattern_integer_gamma_and_beta():
    # The notebook's check: with gamma, beta = [3, 4, 5], [6, 7, 8] the per-channel means are
    # close to beta and the stds close to gamma.
    x = 4 * np.random.default_rng(231).standard_normal((2, 3, 4, 5)) + 10
    gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
    out, _ = cs.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-4)


def test_mixed_precision_promotes_as_numpy_does():
    rng = np.random.default_rng(1)
    x32, w64, b32 = (rng.standard_normal((3, 4)).astype(np.float32),
                     rng.standard_normal((4, 2)), np.zeros(2, np.float32))
    out, _ = cs.affine_forward(x32, w64, b32)
    assert out.dtype == np.result_type(x32, w64) == np.float64
    np.testing.assert_allclose(out, x32.astype(np.float64) @ w64)
    # int8 and uint8 with float32 stay float32, as in NumPy
    x8 = rng.integers(0, 255, (3, 4)).astype(np.uint8)
    out, _ = cs.affine_forward(x8, w64.astype(np.float32), b32)
    assert out.dtype == np.float32
    # bools and float16: float64 and float32 (minidl computes in float32 or float64)
    out, _ = cs.relu_forward(np.array([[True, False]]))
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 0.0]]
    out, _ = cs.relu_forward(np.array([-1.5, 2.0], dtype=np.float16))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 2.0]


def test_losses_take_integer_scores():
    x, y = np.array([[1, 2, 3], [3, 2, 1]]), np.array([2, 0])
    loss, dx = cs.softmax_loss(x, y)
    ref_loss, ref_dx = cs.softmax_loss(x.astype(np.float64), y)
    assert loss == ref_loss and dx.dtype == np.float64
    np.testing.assert_array_equal(dx, ref_dx)
    loss, dx = cs.svm_loss(x, y)
    assert dx.dtype == np.float64


def test_optimizers_promote_weights_and_state_as_numpy():
    w, dw = np.arange(6).reshape(2, 3), np.ones((2, 3))
    next_w, _ = cs.sgd(w, dw, {"learning_rate": 0.5})
    assert next_w.dtype == np.float64
    np.testing.assert_array_equal(next_w, w - 0.5)
    w32 = np.ones((2, 3), np.float32)
    config = {"learning_rate": 1e-3, "velocity": np.full((2, 3), 0.5)}  # float64 state
    next_w, config = cs.sgd_momentum(w32, w32, config)
    assert next_w.dtype == np.float64  # float32 w + float64 velocity, as in the course
    np.testing.assert_allclose(next_w, 1 + 0.9 * 0.5 - 1e-3)
    next_w, _ = cs.adam(w32, w32)
    assert next_w.dtype == np.float32  # nothing wider: no upcast


def test_non_numeric_arrays_are_an_error_that_names_the_argument():
    with pytest.raises(TypeError, match="affine_forward: w must be an integer, bool or float "
                                        r"array, got dtype complex128 \(shape \(3, 2\)\)"):
        cs.affine_forward(np.ones((2, 3)), np.ones((3, 2), complex), np.ones(2))
    with pytest.raises(TypeError, match="relu_forward: x must be an integer, bool or float"):
        cs.relu_forward(np.array(["a", "b"]))
    if np.dtype(np.longdouble).itemsize > 8:  # (on some platforms long double is float64)
        with pytest.raises(TypeError, match="minidl computes in float32 or float64"):
            cs.relu_forward(np.ones(3, np.longdouble))


def test_the_eecs498_layers_stay_strict():
    x, w = np.ones((1, 3, 4, 4)), np.ones((2, 3, 3, 3))
    with pytest.raises(TypeError, match="Conv: b must be float32 or float64, got int64"):
        Conv.forward(x, w, np.array([0, 128]), {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match="SpatialBatchNorm: gamma must be float32 or float64"):
        SpatialBatchNorm.forward(x, np.asarray([3, 4, 5]), np.zeros(3), {"mode": "train"})
    with pytest.raises(TypeError, match="dtype mismatch"):
        Conv.forward(x.astype(np.float32), w, None, {"stride": 1, "pad": 1})


@pytest.mark.parametrize("call,message", [
    (lambda: cs.conv_forward_naive(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), np.zeros(1),
                                   {"stride": 1, "pad": 1, "groups": 1}),
     r"conv_forward_naive: conv_param key\(s\) 'groups' are minidl's"),
    (lambda: cs.conv_forward_fast(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), np.zeros(1),
                                  {"stride": 1, "pad": 1, "dilation": 2}),
     r"conv_forward_fast: conv_param key\(s\) 'dilation' are minidl's"),
    (lambda: cs.max_pool_forward_fast(np.zeros((1, 1, 4, 4)),
                                      {"pool_height": 2, "pool_width": 2, "stride": 2, "pad": 1}),
     r"max_pool_forward_fast: pool_param key\(s\) 'pad' are minidl's"),
    (lambda: cs.batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3),
                                  {"mode": "train", "momentun": 0.5}),
     r"batchnorm_forward: unknown bn_param key\(s\) 'momentun'"),
    (lambda: cs.dropout_forward(np.zeros((4, 3)), {"p": 0.5, "mode": "train", "drop": 1}),
     r"dropout_forward: unknown dropout_param key\(s\) 'drop'"),
])
def test_course_names_reject_keys_the_course_does_not_have(call, message):
    with pytest.raises(ValueError, match=message):
        call()
