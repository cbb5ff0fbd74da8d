"""FastConv's kernels (im2col + GEMM, 1x1, direct grouped/depthwise) against the naive Conv.

Shapes are drawn by hypothesis: batch, channels, groups (incl. depthwise with a channel
multiplier), odd sizes, 1x1 and kernel = input size, stride, pad, dilation, float32/float64.
Every path is forced in turn, so each kernel is compared on every draw.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import _kernels
from minidl.layers import Conv, FastConv
from minidl._kernels import convolution

from _conv_paths import PATHS, forced_conv_path, forced_parallel


@pytest.fixture(autouse=True)
def _every_loop_parallel():
    """Small test shapes fall below the kernels' serial threshold; run their threaded code."""
    with forced_parallel():
        yield

TOL = {np.float64: 1e-10, np.float32: 2e-5}
PATH_CHOICES = ["auto", "im2col", "images", "direct", "numpy"]


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 3))
    fg = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # the input must cover the dilated kernel once padded
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 9))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**16))
    return dict(x_shape=(n, groups * cg, h, w), w_shape=(groups * fg, cg, kh, kw),
                param={"stride": (sh, sw), "pad": (ph, pw), "dilation": (dh, dw),
                       "groups": groups, "floor_mode": True},
                dtype=dtype, seed=seed)


def _arrays(case, bias=True):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal(case["x_shape"]).astype(dt)
    w = rng.standard_normal(case["w_shape"]).astype(dt)
    b = rng.standard_normal(case["w_shape"][0]).astype(dt) if bias else None
    return x, w, b


def _run_fast(x, w, b, param, dout, path):
    """FastConv forward + backward with one algorithm forced (the automatic choice for
    'auto'; geometries a forced path cannot run take the automatic choice too)."""
    if path != "auto":
        plan = _kernels.plan_conv("t", x, w, b, param)
        runnable = convolution.runnable(plan)
        if PATHS[path] is not None and PATHS[path] not in runnable:
            path = "auto"
    ctx = forced_conv_path(path) if path != "auto" else contextlib.nullcontext()
    with ctx:
        out, cache = FastConv.forward(x, w, b, param)
        return (out,) + tuple(FastConv.backward(dout, cache))


def _assert_close(ref, got, dtype, what):
    assert got.dtype == dtype, what
    assert got.shape == ref.shape, what
    tol = TOL[dtype] * max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(ref - got).max()) <= tol, what


@settings(max_examples=50, deadline=None)
@given(case=conv_cases(), path=st.sampled_from(PATH_CHOICES))
def test_fast_conv_matches_naive_forward_and_every_gradient(case, path):
    x, w, b = _arrays(case)
    ref_out, cache = Conv.forward(x, w, b, case["param"])
    dout = np.random.default_rng(case["seed"] + 1).standard_normal(ref_out.shape).astype(case["dtype"])
    ref = (ref_out,) + tuple(Conv.backward(dout, cache))
    got = _run_fast(x, w, b, case["param"], dout, path)
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        _assert_close(r, g, case["dtype"], f"{name} via {path} for {case}")


@pytest.mark.skipif(not _kernels.direct_available(), reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,stride,mult", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (5, 2, 1), (3, 1, 3)])
def test_depthwise_mobilenet_cases_match_naive(k, stride, mult, dtype):
    rng = np.random.default_rng(k * 10 + stride)
    C = 4
    x = rng.standard_normal((2, C, 9, 8)).astype(dtype)
    w = rng.standard_normal((C * mult, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C * mult).astype(dtype)
    param = {"stride": stride, "pad": k // 2, "groups": C, "floor_mode": True}
    assert _kernels.plan_conv("t", x, w, b, param).algorithm == "direct_grouped"
    out, cache = Conv.forward(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ref = (out,) + tuple(Conv.backward(dout, cache))
    out2, cache2 = FastConv.forward(x, w, b, param)
    got = (out2,) + tuple(FastConv.backward(dout, cache2))
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        _assert_close(r, g, dtype, name)


@st.composite
def depthwise_cases(draw):
    """Depthwise geometries (groups == C), odd sizes, the strides, pads and dilations of
    MobileNet-style layers and beyond (pad larger than the kernel reach included)."""
    c = draw(st.integers(2, 4))  # groups == C > 1: the direct path
    mult = draw(st.integers(1, 2))
    n = draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3, 5]))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, 2))
    s = draw(st.integers(1, 2))
    lo = max(1, d * (k - 1) + 1 - 2 * p)
    h = draw(st.integers(lo, 11))
    w = draw(st.integers(lo, 13))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return dict(x_shape=(n, c, h, w), w_shape=(c * mult, 1, k, k),
                param={"stride": s, "pad": p, "dilation": d, "groups": c, "floor_mode": True},
                dtype=dtype, seed=seed, bias=bias)


@pytest.mark.skipif(not _kernels.direct_available(), reason="compiled kernels not built")
@settings(max_examples=60, deadline=None)
@given(case=depthwise_cases())
def test_fused_depthwise_backward_matches_naive_gradients(case):
    x, w, b = _arrays(case, bias=case["bias"])
    ref_out, ref_cache = Conv.forward(x, w, b, case["param"])
    dout = np.random.default_rng(case["seed"] + 1).standard_normal(ref_out.shape).astype(case["dtype"])
    ref = Conv.backward(dout, ref_cache)
    assert convolution.DEPTHWISE_FUSED_BACKWARD
    out, cache = FastConv.forward(x, w, b, case["param"])
    assert cache.values[0].algorithm == "direct_grouped"
    got = FastConv.backward(dout, cache)
    for name, r, g in zip(("dx", "dw", "db"), ref, got):
        if r is None:
            assert g is None, name
        else:
            _assert_close(r, g, case["dtype"], f"{name} for {case}")


@pytest.mark.skipif(not _kernels.direct_available(), reason="compiled kernels not built")
@pytest.mark.parametrize("stride,pad,dil", [(1, 1, 1), (2, 1, 1), (1, 2, 1), (1, 2, 2), (2, 0, 2)])
def test_fused_depthwise_backward_agrees_with_separate_kernels(stride, pad, dil, monkeypatch):
    """The fused kernel and the separate dx / dw+db kernels compute the same gradients."""
    rng = np.random.default_rng(stride * 100 + pad * 10 + dil)
    x = rng.standard_normal((3, 5, 13, 11))
    w = rng.standard_normal((5, 1, 3, 3))
    b = rng.standard_normal(5)
    param = {"stride": stride, "pad": pad, "dilation": dil, "groups": 5, "floor_mode": True}
    out, cache = FastConv.forward(x, w, b, param)
    dout = rng.standard_normal(out.shape)
    fused = FastConv.backward(dout, cache)
    monkeypatch.setattr(convolution, "DEPTHWISE_FUSED_BACKWARD", False)
    separate = FastConv.backward(dout, cache)
    for name, a, b_ in zip(("dx", "dw", "db"), fused, separate):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("groups", [1, 2])
def test_pointwise_conv_skips_im2col_and_matches_naive(groups, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal((6, 4 // groups, 1, 1))
    param = {"stride": 1, "pad": 0, "groups": groups}

    def no_im2col(*a, **k):
        raise AssertionError("1x1 stride-1 convolution must not unfold its input")

    out_ref, cache_ref = Conv.forward(x, w, None, param)
    monkeypatch.setattr(convolution, "_im2col_batched", no_im2col)
    with forced_conv_path("1x1"):
        out, cache = FastConv.forward(x, w, None, param)
        assert cache.values[0].algorithm == "gemm_1x1"
        dout = rng.standard_normal(out.shape)
        dx, dw, db = FastConv.backward(dout, cache)
    dx_r, dw_r, db_r = Conv.backward(dout, cache_ref)
    assert db is None and db_r is None
    np.testing.assert_allclose(out, out_ref, atol=1e-12)
    np.testing.assert_allclose(dx, dx_r, atol=1e-12)
    np.testing.assert_allclose(dw, dw_r, atol=1e-12)


def test_workspace_limit_chunks_the_batch_with_the_same_results():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    param = {"stride": 1, "pad": 1}
    out_ref, cache_ref = FastConv.forward(x, w, b, param)
    dout = rng.standard_normal(out_ref.shape)
    ref = Conv.backward(dout, Conv.forward(x, w, b, param)[1])
    per_image = 3 * 9 * 36 * 8
    old = _kernels.set_workspace_limit(2 * per_image)  # two images per chunk: 3 chunks
    assert convolution.CHUNK_TARGET_BYTES > 2 * per_image
    try:
        with forced_conv_path("im2col"):
            out, cache = FastConv.forward(x, w, b, param)
            plan, _, _, saved = cache.values
            assert plan.chunk == 2
            assert saved is None  # the columns of a chunked batch are not kept
            got = FastConv.backward(dout, cache)
    finally:
        _kernels.set_workspace_limit(old)
    np.testing.assert_allclose(out, out_ref, atol=1e-12)
    for r, g_ in zip(ref, got):
        np.testing.assert_allclose(g_, r, atol=1e-11)


def test_cache_keeps_inputs_not_large_column_matrices(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    with forced_conv_path("im2col"):
        _, cache = FastConv.forward(x, w, None, {"stride": 1, "pad": 1})
        saved = cache.values[-1]
        assert saved is not None and saved.nbytes <= convolution.CACHE_COLS_BYTES
        monkeypatch.setattr(convolution, "CACHE_COLS_BYTES", 0)
        out, cache = FastConv.forward(x, w, None, {"stride": 1, "pad": 1})
        assert cache.values[-1] is None and cache.values[1] is x
        dout = rng.standard_normal(out.shape)
        got = FastConv.backward(dout, cache)
    ref = Conv.backward(dout, Conv.forward(x, w, None, {"stride": 1, "pad": 1})[1])
    np.testing.assert_allclose(got[0], ref[0], atol=1e-11)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-11)


def test_non_contiguous_inputs_give_the_contiguous_result():
    rng = np.random.default_rng(6)
    big = rng.standard_normal((2, 4, 10, 12))
    x = big[:, :, ::2, 1::2]                       # strided view
    w = rng.standard_normal((4, 3, 3, 1)).transpose(0, 3, 1, 2)[:, :, :, :]  # (4, 1, 3, 3) view
    for groups, ww in ((4, w), (1, rng.standard_normal((8, 4, 3, 3))[::2])):
        param = {"stride": 1, "pad": 1, "groups": groups}
        out, cache = FastConv.forward(x, ww, None, param)
        out_c, cache_c = FastConv.forward(x.copy(), ww.copy(), None, param)
        np.testing.assert_array_equal(out, out_c)
        dout = rng.standard_normal(out.shape)[:, :, :, ::-1]
        for a, b_ in zip(FastConv.backward(dout, cache)[:2], FastConv.backward(dout.copy(), cache_c)[:2]):
            np.testing.assert_array_equal(a, b_)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6, 7, 7))
    w = rng.standard_normal((6, 2, 3, 3))
    param = {"stride": 1, "pad": 1, "groups": 3}
    old = minidl.get_num_threads()
    try:
        minidl.set_num_threads(1)
        out1, c1 = FastConv.forward(x, w, None, param)
        g1 = FastConv.backward(out1, c1)
        minidl.set_num_threads(2)
        out2, c2 = FastConv.forward(x, w, None, param)
        g2 = FastConv.backward(out2, c2)
    finally:
        minidl.set_num_threads(old)
    np.testing.assert_allclose(out1, out2, atol=1e-12)
    for a, b_ in zip(g1[:2], g2[:2]):
        np.testing.assert_allclose(a, b_, atol=1e-11)


def test_raw_im2col_kernel_rejects_sizes_that_would_read_out_of_bounds():
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match="im2col_batched: output width 7"):
        _kernels.im2col_batched(x, 3, 3, 1, 1, 0, 0, 1, 1, 3, 7)


def test_workspace_limit_rejects_nonsense():
    with pytest.raises(ValueError, match="set_workspace_limit"):
        _kernels.set_workspace_limit(0)
    assert _kernels.get_workspace_limit() > 0


@pytest.mark.skipif(not _kernels.images_available(), reason="needs the kernels and scipy's BLAS")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("groups,stride,pad,dil", [(1, 1, 1, 1), (2, 2, 0, 1), (1, 1, 2, 2)])
def test_per_image_gemm_path_matches_naive_and_restores_blas_threads(groups, stride, pad, dil,
                                                                     dtype, monkeypatch):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    param = {"stride": stride, "pad": pad, "dilation": dil, "groups": groups, "floor_mode": True}
    lib = _kernels._images_blas()
    threads_before = lib.num_threads
    with forced_conv_path("images"):
        out, cache = FastConv.forward(x, w, b, param)
        assert cache.values[0].algorithm == "gemm_images"
        dout = rng.standard_normal(out.shape).astype(dtype)
        got = (out,) + tuple(FastConv.backward(dout, cache))
    assert lib.num_threads == threads_before
    ref_out, ref_cache = Conv.forward(x, w, b, param)
    ref = (ref_out,) + tuple(Conv.backward(dout, ref_cache))
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        _assert_close(r, g, dtype, name)


def test_small_calls_run_serially_with_the_same_results():
    """Below the work threshold the loops run on one thread; results do not change."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 6, 6))
    w = rng.standard_normal((8, 2, 3, 3))
    param = {"stride": 1, "pad": 1, "groups": 4}
    results = []
    for threshold in (0, 10**12):
        _kernels.set_parallel_min_work(threshold)
        out, cache = FastConv.forward(x, w, None, param)
        results.append((out,) + FastConv.backward(out, cache)[:2])
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, atol=1e-12)
    with pytest.raises(ValueError, match="set_parallel_min_work: n must be a non-negative integer"):
        _kernels.set_parallel_min_work(-1)
