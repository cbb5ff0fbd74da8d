"""Convolution plans: validated once, cached, the single source of sizes, MACs and algorithm."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl import _kernels
from minidl._kernels import convolution
from minidl.layers import Conv, FastConv, MaxPool

from _conv_paths import forced_conv_path


def _arrays(x_shape=(2, 4, 6, 6), w_shape=(3, 4, 3, 3), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


def test_a_geometry_is_planned_once_and_its_plan_reused(monkeypatch):
    x, w, b = _arrays()
    param = {"stride": 1, "pad": 1}
    _, cache = FastConv.forward(x, w, b, param)
    calls = []
    real = convolution.conv_geometry
    monkeypatch.setattr(convolution, "conv_geometry", lambda *a: calls.append(a) or real(*a))
    for _ in range(3):
        out, cache2 = FastConv.forward(x, w, b, dict(param))
        FastConv.backward(out, cache2)
    assert calls == []  # no re-validation: the cached plan served every call
    assert cache2.values[0] is cache.values[0]
    # a new geometry is validated (once)
    FastConv.forward(x[:1], w, b, param)
    assert len(calls) == 1


def test_plan_holds_sizes_macs_and_algorithm():
    x, w, b = _arrays((2, 4, 7, 9), (6, 2, 3, 3))
    plan = _kernels.plan_conv("FastConv", x, w, b,
                              {"stride": (2, 1), "pad": 1, "groups": 2, "floor_mode": True})
    assert plan.out_shape == (2, 6, 4, 9)
    assert plan.macs_per_image == 6 * 4 * 9 * 2 * 3 * 3
    assert plan.macs == 2 * plan.macs_per_image
    assert plan.algorithm in convolution.runnable(plan)
    assert plan.family in ("gemm", "direct", "winograd")
    assert "FastConv" in plan.describe() and plan.algorithm in plan.describe()


def test_values_of_another_type_do_not_hit_a_cached_plan():
    x, w, b = _arrays()
    FastConv.forward(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="FastConv: pad must be a non-negative integer, got 1.0"):
        FastConv.forward(x, w, b, {"stride": 1, "pad": 1.0})
    with pytest.raises(ValueError, match="FastConv: stride must be a positive integer, got True"):
        FastConv.forward(x, w, b, {"stride": True, "pad": 1})


@pytest.mark.parametrize("layer", [Conv, FastConv])
def test_unknown_conv_param_keys_are_errors(layer):
    x, w, b = _arrays()
    with pytest.raises(ValueError, match=rf"{layer.__name__}: unknown conv_param key\(s\) "
                                         r"'strides'; the keys are 'stride', 'pad'"):
        layer.forward(x, w, b, {"strides": 2, "pad": 1})


@pytest.mark.parametrize("layer", [Conv, FastConv])
@pytest.mark.parametrize("x_shape,w_shape,what", [
    ((2, 0, 5, 5), (3, 0, 3, 3), r"x \(2, 0, 5, 5\) has no input channels"),
    ((2, 2, 0, 5), (3, 2, 1, 1), r"x \(2, 2, 0, 5\) has height 0"),
    ((2, 2, 5, 5), (0, 2, 3, 3), r"w \(0, 2, 3, 3\) has no filters"),
])
def test_empty_channels_and_planes_are_named(layer, x_shape, w_shape, what):
    with pytest.raises(ValueError, match=rf"{layer.__name__}: {what}"):
        layer.forward(np.zeros(x_shape), np.zeros(w_shape), None, {"pad": 1})


@pytest.mark.parametrize("layer", [Conv, FastConv])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(layer):
    x, w, b = _arrays((0, 2, 5, 5), (3, 2, 3, 3))
    out, cache = layer.forward(x, w, b, {"pad": 1})
    assert out.shape == (0, 3, 5, 5)
    dx, dw, db = layer.backward(out, cache)
    assert dx.shape == x.shape and not dw.any() and not db.any()


@pytest.mark.parametrize("param,name", [
    ({"pad": 2**40}, "pad"), ({"stride": 2**40}, "stride"), ({"dilation": 2**31}, "dilation"),
    ({"pad": (0, 2**30)}, "pad"),
])
def test_sizes_whose_index_math_overflows_are_value_errors_naming_the_argument(param, name):
    x, w, _ = _arrays((1, 1, 4, 4), (1, 1, 3, 3))
    for layer in (Conv, FastConv):
        with pytest.raises(ValueError, match=rf"{layer.__name__}: .*{name}"):
            layer.forward(x, w, None, dict(param, floor_mode=True))


def test_large_padding_runs_without_a_padded_buffer_or_memory_error():
    """Padding far beyond the kernel's reach: the direct kernels would copy the input into a
    huge padded buffer, so the plan sends such layers to im2col (workspace ~ output)."""
    x, w, _ = _arrays((1, 2, 1, 1), (2, 1, 1, 1))
    param = {"pad": (0, 100000), "stride": (1, 50000), "groups": 2, "floor_mode": True}
    out, cache = FastConv.forward(x, w, None, param)
    assert cache.values[0].algorithm != "direct_grouped"
    ref, _ = Conv.forward(x, w, None, param)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_a_cache_from_another_layer_is_named():
    x, w, b = _arrays()
    out, conv_cache = FastConv.forward(x, w, b, {"pad": 1})
    _, pool_cache = MaxPool.forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(TypeError, match="FastConv.backward: cache must be the cache "
                                        "FastConv.forward returned, got a tuple of 2"):
        FastConv.backward(out, (x, w))
    with pytest.raises(TypeError, match="FastConv.backward: this cache was made by "
                                        "MaxPool.forward, not FastConv.forward"):
        FastConv.backward(out, pool_cache)
    _, naive_cache = Conv.forward(x, w, b, {"pad": 1})
    with pytest.raises(TypeError, match="FastConv.backward: this cache was made by "
                                        "Conv.forward, not FastConv.forward"):
        FastConv.backward(out, naive_cache)
    with pytest.raises(TypeError, match="Conv.backward: this cache was made by FastConv"):
        Conv.backward(out, conv_cache)


@pytest.mark.parametrize("layer", [Conv, FastConv])
def test_backward_checks_the_upstream_gradient(layer):
    x, w, b = _arrays()
    out, cache = layer.forward(x, w, b, {"pad": 1})
    with pytest.raises(TypeError, match=rf"{layer.__name__}: dtype mismatch: dout is float32"):
        layer.backward(out.astype(np.float32), cache)
    with pytest.raises(TypeError, match=rf"{layer.__name__}: dout must be float32 or float64, "
                                        "got int64"):
        layer.backward(out.astype(np.int64), cache)
    with pytest.raises(TypeError, match=rf"{layer.__name__}: dout must be a NumPy array, got list"):
        layer.backward(out.tolist(), cache)
    with pytest.raises(ValueError, match=rf"{layer.__name__}: dout must have shape"):
        layer.backward(out[:1], cache)


def test_set_conv_algorithm_forces_a_family_where_it_can_run():
    x, w, b = _arrays((2, 4, 6, 6), (4, 1, 3, 3))  # depthwise-shaped with groups=4
    param = {"pad": 1, "groups": 4}
    assert minidl.get_conv_algorithm() == "auto"
    auto = _kernels.plan_conv("FastConv", x, w, b, param).algorithm
    old = minidl.set_conv_algorithm("gemm")
    try:
        assert old == "auto"
        plan = _kernels.plan_conv("FastConv", x, w, b, param)
        assert plan.family == "gemm" and plan.algorithm != auto
        out, cache = FastConv.forward(x, w, b, param)
        ref, ref_cache = Conv.forward(x, w, b, param)
        np.testing.assert_allclose(out, ref, atol=1e-12)
        # a family that cannot run a geometry leaves it to the automatic choice
        minidl.set_conv_algorithm("direct")
        dense = _kernels.plan_conv("FastConv", *_arrays(), {"pad": 1})
        assert dense.algorithm in convolution.runnable(dense)
    finally:
        minidl.set_conv_algorithm("auto")
    with pytest.raises(ValueError, match="set_conv_algorithm: name must be one of 'auto'"):
        minidl.set_conv_algorithm("fft")


def test_autotune_times_the_candidates_once_and_keeps_the_fastest():
    x, w, b = _arrays((4, 4, 10, 10), (4, 4, 3, 3), np.float32)
    old = minidl.set_conv_autotune(True)
    try:
        plan = _kernels.plan_conv("FastConv", x, w, b, {"pad": 1})
        assert plan.tuned and plan.algorithm in convolution.candidates(plan)
        assert _kernels.plan_conv("FastConv", x, w, b, {"pad": 1}) is plan
        out, cache = FastConv.forward(x, w, b, {"pad": 1})
        ref, _ = Conv.forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              {"pad": 1})
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    finally:
        minidl.set_conv_autotune(old)
    assert not _kernels.plan_conv("FastConv", x, w, b, {"pad": 1}).tuned


def test_kernels_info_reports_the_setting_and_the_plans():
    x, w, b = _arrays()
    FastConv.forward(x, w, b, {"pad": 1})
    info = minidl.kernels_info()
    assert info["conv_algorithm"] == "auto" and info["conv_autotune"] is False
    assert any("FastConv" in line and "(2, 4, 6, 6)" in line for line in info["conv_plans"])


def test_environment_variables_choose_the_algorithm_and_autotune():
    code = ("import minidl; print(minidl.get_conv_algorithm(), minidl.get_conv_autotune())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MINIDL_CONV_ALGO": "gemm",
                              "MINIDL_CONV_AUTOTUNE": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["gemm", "True"]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MINIDL_CONV_ALGO": "fast"})
    assert res.returncode != 0 and "MINIDL_CONV_ALGO must be one of" in res.stderr


def test_a_forced_algorithm_that_cannot_run_is_an_error():
    x, w, b = _arrays()
    with forced_conv_path("direct"):
        with pytest.raises(ValueError, match="algorithm 'direct_grouped' cannot run"):
            FastConv.forward(x, w, b, {"pad": 1})


def test_a_conv_module_plans_once_per_input_shape_and_reads_sizes_from_the_plan(monkeypatch):
    from minidl import nn

    m = nn.Conv2d(2, 3, 3, padding=1, stride=2).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 7))
    calls = []
    real = convolution.plan_conv
    monkeypatch.setattr(_kernels, "plan_conv", lambda *a, **k: calls.append(a) or real(*a, **k))
    for _ in range(3):
        out = m.forward(x)
        m.backward(np.ones_like(out))
    assert len(calls) == 1 and out.shape == (2, 3, 4, 4)
    m.forward(x[:1])                       # another batch size: another plan
    assert len(calls) == 2
    assert m.output_shape((2, 7, 7)) == (3, 4, 4)
    plan = real("Conv2d", x, m.params["weight"], m.params["bias"], m._conv_param())
    row = [r for r in minidl.summary(m, (2, 7, 7)).rows if r.kind == "conv"][0]
    assert row.flops == plan.macs_per_image
