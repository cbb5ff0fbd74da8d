"""Every compiled path on every geometry the layers accept, against the naive layers (float64).

The geometries hypothesis draws here are the hard ones: padding at or above the input size,
dilation at or above it, 1-pixel inputs, kernel taps that see only padding, and every
stride/pad/dilation pair drawn independently per axis. Each convolution path is forced in
its own test (batched im2col, its flat stride-1 copy, per-image im2col + GEMM, the packed
GEMM in blocks that end mid-row or span several images, direct grouped and depthwise, 1x1, Winograd F(2x2) and
F(4x4), the NumPy fallback), and
so are pooling and the raw im2col/col2im kernels, with the OpenMP loops forced parallel on two threads. The same file
runs under AddressSanitizer in CI (see .ci/run): an out-of-bounds read or write in any of
these loops fails there even when the numbers happen to come out right.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import _kernels
from minidl._kernels import convolution, numpy_im2col
from minidl.layers import AvgPool, Conv, FastConv, FastMaxPool, MaxPool

from _conv_paths import PATHS, forced_conv_path, forced_parallel

pytestmark = pytest.mark.skipif(not _kernels.compiled_available(),
                                reason="compiled kernels not built")
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _parallel_two_threads():
    """Run every OpenMP loop on two threads, however small the shape."""
    with forced_parallel(2):
        yield


def _axis(draw, size_max=5, pad_max=6, dil_max=5, k_max=4, stride_max=3, same=False):
    """One axis: (size, kernel, stride, pad, dilation) whose padded size covers the dilated
    kernel. Pads are drawn from the smallest that fits, so that padding at or above the
    input size and taps that see only padding are common; same=True gives stride 1 with
    'same' padding (output size == input size: the flat im2col copy)."""
    if same:
        k = draw(st.sampled_from([1, 3, 5]))
        d = draw(st.sampled_from([1, 2, 3, 7, 50, 200]))
        size = draw(st.integers(1, 6))
        return size, k, 1, d * (k - 1) // 2, d
    k = draw(st.integers(1, k_max))
    d = draw(st.integers(1, dil_max))
    size = draw(st.integers(1, size_max))
    extent = d * (k - 1) + 1
    p_min = max(0, -(-(extent - size) // 2))
    p = draw(st.integers(p_min, p_min + pad_max))
    s = draw(st.integers(1, stride_max))
    return size, k, s, p, d


@st.composite
def conv_geometries(draw, groups=(1, 1), cg=(1, 3), fg=(1, 3), same=False, n_max=3):
    g = draw(st.integers(*groups))
    c_per, f_per = draw(st.integers(*cg)), draw(st.integers(*fg))
    h, kh, sh, ph, dh = _axis(draw, same=same)
    w, kw, sw, pw, dw = _axis(draw, same=same)
    n = draw(st.integers(1, n_max))
    param = {"stride": (sh, sw), "pad": (ph, pw), "dilation": (dh, dw), "groups": g,
             "floor_mode": True}
    return dict(x_shape=(n, g * c_per, h, w), w_shape=(g * f_per, c_per, kh, kw),
                param=param, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _check_against_naive(case, path):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    b = rng.standard_normal(case["w_shape"][0]) if case["bias"] else None
    ref_out, ref_cache = Conv.forward(x, w, b, case["param"])
    dout = rng.standard_normal(ref_out.shape)
    ref = (ref_out,) + tuple(Conv.backward(dout, ref_cache))
    with forced_conv_path(path):
        out, cache = FastConv.forward(x, w, b, case["param"])
        got = (out,) + tuple(FastConv.backward(dout, cache))
    plan = cache.values[0]
    assert plan.algorithm == (PATHS[path] or "gemm_batched"), (plan, path)
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        if r is None:
            assert g is None, name
            continue
        assert g.shape == r.shape and g.dtype == np.float64, (name, path, case)
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(r).max()),
                                   err_msg=f"{name} via {path} for {case}")


@EXAMPLES
@given(case=conv_geometries())
def test_batched_im2col_path_matches_naive_on_extreme_geometries(case):
    _check_against_naive(case, "im2col")


@contextlib.contextmanager
def _packed_blocks(positions):
    """The packed path in blocks of `positions` output positions (fewer only in the last), so
    that blocks end inside output rows and inside the GEMM's panels."""
    old = convolution.PACKED_BLOCK_POSITIONS, convolution.PACKED_BLOCK_ALIGN
    convolution.PACKED_BLOCK_POSITIONS, convolution.PACKED_BLOCK_ALIGN = positions, positions
    try:
        yield
    finally:
        convolution.PACKED_BLOCK_POSITIONS, convolution.PACKED_BLOCK_ALIGN = old
        convolution.settings_changed()


@EXAMPLES
@given(case=conv_geometries(same=True), block=st.integers(1, 40))
def test_flat_stride1_im2col_matches_naive_when_pad_and_dilation_exceed_the_input(case, block):
    x_shape, param = case["x_shape"], case["param"]
    g = _kernels.plan_conv("t", np.empty(x_shape), np.empty(case["w_shape"]), None, param)
    assert (g.sh, g.sw, g.WO) == (1, 1, g.W)  # the flat copy's condition
    _check_against_naive(case, "im2col")
    _check_against_naive(case, "images")
    with _packed_blocks(block):
        _check_against_naive(case, "packed")


@EXAMPLES
@given(case=conv_geometries(groups=(1, 3), n_max=4), block=st.integers(1, 40))
def test_packed_gemm_path_matches_naive_on_extreme_geometries(case, block):
    with _packed_blocks(block):
        _check_against_naive(case, "packed")


@EXAMPLES
@given(case=conv_geometries(groups=(1, 3), n_max=9), per_block=st.integers(2, 4),
       extra=st.integers(0, 40), span=st.integers(2, 9))
def test_packed_forward_blocks_of_several_images_match_naive(case, per_block, extra, span):
    """Tiny images (fewer positions than a block): the forward's blocks hold runs of `span`
    whole images (the last run shorter), their columns crossing image boundaries inside the
    GEMM's panels; odd block sizes, padding past the input, several groups, forced 2 threads.
    The span is forced (as many images as drawn and fit) so that every example spans."""
    x, w = np.empty(case["x_shape"]), np.empty(case["w_shape"])
    with forced_conv_path("packed"):
        plan = _kernels.plan_conv("t", x, w, None, case["param"])
    positions, n = plan.HO * plan.WO, plan.N
    block = per_block * positions + extra % positions + 1
    pointwise = (plan.KH, plan.KW, plan.sh, plan.sw, plan.ph, plan.pw) == (1, 1, 1, 1, 0, 0)
    with pytest.MonkeyPatch.context() as mp, _packed_blocks(block), \
            forced_conv_path("packed"):
        mp.setattr(convolution, "_packed_span", lambda N, P, blk, *_: min(N, span, blk // P))
        plan = _kernels.plan_conv("t", x, w, None, case["param"])
        assert plan.span == (1 if pointwise else min(n, span, block // positions)), plan
        _check_against_naive(case, "packed")


@given(n=st.integers(1, 300), positions=st.integers(1, 500), block=st.integers(1, 500),
       groups=st.integers(1, 8), threads=st.integers(1, 4), nr=st.sampled_from([8, 16, 32]))
def test_packed_span_is_whole_images_that_fit_in_a_block(n, positions, block, groups, threads,
                                                         nr):
    span = convolution._packed_span(n, positions, block, groups, threads, nr)
    assert 1 <= span <= n
    assert span == 1 or span * positions <= block


def test_packed_span_fills_the_panels_and_the_threads():
    # 8 images of 7x7 in 384-wide blocks of 32-wide panels (the strided 256->512 bench row)
    assert convolution._packed_span(8, 49, 384, 1, 1, 32) == 7
    assert convolution._packed_span(8, 49, 384, 1, 2, 32) == 4
    assert convolution._packed_span(8, 196, 384, 1, 2, 32) == 1   # 14x14: no two fit
    assert convolution._packed_span(1, 49, 384, 1, 2, 32) == 1


@EXAMPLES
@given(n=st.integers(1, 3), c=st.integers(1, 3), f=st.integers(1, 3), h=st.integers(1, 4),
       w=st.integers(1, 40), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       dilation=st.sampled_from([1, 2, 45]), same=st.booleans(), block=st.integers(1, 70),
       seed=st.integers(0, 2**16))
def test_packed_path_in_float32_matches_naive_on_rows_of_every_length(n, c, f, h, w, k, stride,
                                                                      dilation, same, block,
                                                                      seed):
    """float32 (16-lane vectors under AVX-512) on rows 1 to 40 wide, so that the im2col /
    col2im runs take every combination of whole, half and quarter vectors and single values,
    in the flat stride-1 copy (same=True: stride 1, output width == input width, with
    dilation up to past the input) and the general loop, several images per batch."""
    pad = dilation * (k - 1) // 2 if same else k // 2
    param = {"stride": 1 if same else stride, "pad": pad, "dilation": dilation,
             "floor_mode": True}
    extent = dilation * (k - 1) + 1
    if not same and (w + 2 * pad < extent or h + 2 * pad < extent):
        param["pad"] = pad = extent  # keep the output non-empty
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
    ref_out, ref_cache = Conv.forward(x, wt, b, param)
    dout = rng.standard_normal(ref_out.shape)
    ref = (ref_out,) + tuple(Conv.backward(dout, ref_cache))
    with _packed_blocks(block), forced_conv_path("packed"):
        out, cache = FastConv.forward(*(a.astype(np.float32) for a in (x, wt, b)), param)
        got = (out,) + tuple(FastConv.backward(dout.astype(np.float32), cache))
    assert cache.values[0].algorithm == PATHS["packed"]
    if same:
        assert out.shape[3] == w
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        assert g.dtype == np.float32 and g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(r).max()),
                                   err_msg=f"{name} for {(n, c, f, h, w, k, param)}")


@pytest.mark.skipif(not _kernels.images_available(), reason="needs scipy's BLAS")
@EXAMPLES
@given(case=conv_geometries(groups=(1, 2), n_max=4))
def test_per_image_gemm_path_matches_naive_on_extreme_geometries(case):
    _check_against_naive(case, "images")


@st.composite
def winograd_geometries(draw):
    """3x3, stride 1, dilation 1, one group (what Winograd runs), pads drawn from the
    smallest that fits to 6 beyond it: tiles that read only padding, 1-pixel inputs."""
    axes = []
    for _ in range(2):
        size = draw(st.integers(1, 7))
        p_min = max(0, -(-(3 - size) // 2))
        axes.append((size, draw(st.integers(p_min, p_min + 6))))
    (h, ph), (w, pw) = axes
    c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(x_shape=(draw(st.integers(1, 3)), c, h, w), w_shape=(f, c, 3, 3),
                param={"stride": 1, "pad": (ph, pw)}, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


@pytest.mark.skipif(not _kernels.winograd_available(), reason="Winograd kernels not built")
@EXAMPLES
@given(case=winograd_geometries(), path=st.sampled_from(["winograd_2x2", "winograd_4x4"]),
       block_tiles=st.integers(1, 64))
def test_winograd_paths_match_naive_when_pad_exceeds_the_input(case, path, block_tiles):
    # small blocks give several per thread: the blocks schedule, not only the phases one
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels.winograd, "BLOCK_TILES", block_tiles)
        _check_against_naive(case, path)


@EXAMPLES
@given(case=conv_geometries(groups=(2, 3), cg=(1, 3)))
def test_direct_grouped_path_matches_naive_on_extreme_geometries(case):
    _check_against_naive(case, "direct")


@EXAMPLES
@given(case=conv_geometries(groups=(2, 4), cg=(1, 1), fg=(1, 2)))
def test_direct_depthwise_path_matches_naive_on_extreme_geometries(case):
    _check_against_naive(case, "direct")


@EXAMPLES
@given(case=conv_geometries(groups=(1, 2)))
def test_numpy_fallback_matches_naive_on_extreme_geometries(case):
    _check_against_naive(case, "numpy")


@EXAMPLES
@given(n=st.integers(1, 3), c=st.integers(1, 4), f=st.integers(1, 4), h=st.integers(1, 5),
       w=st.integers(1, 5), groups=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_pointwise_path_matches_naive_on_small_planes(n, c, f, h, w, groups, seed):
    case = dict(x_shape=(n, c * groups, h, w), w_shape=(f * groups, c, 1, 1),
                param={"stride": 1, "pad": 0, "groups": groups}, bias=True, seed=seed)
    _check_against_naive(case, "1x1")
    with _packed_blocks(1 + seed % 7):
        _check_against_naive(case, "1x1")


# ------------------------------------------------------------------ raw im2col / col2im

@EXAMPLES
@given(case=st.one_of(conv_geometries(), conv_geometries(same=True)))
def test_im2col_and_col2im_kernels_match_the_numpy_reference_in_both_layouts(case):
    n, c, h, w = case["x_shape"]
    kh, kw = case["w_shape"][2:]
    p = case["param"]
    (sh, sw), (ph, pw), (dh, dw) = p["stride"], p["pad"], p["dilation"]
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    args = (kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((n, c, h, w))
    ref = numpy_im2col.im2col(x, *args)
    np.testing.assert_array_equal(_kernels.im2col(x, *args), ref)
    batched = _kernels.im2col_batched(x, *args)
    np.testing.assert_array_equal(batched, ref.transpose(1, 0, 2))
    cols = rng.standard_normal(ref.shape)
    dx_ref = numpy_im2col.col2im(cols, x.shape, *args)
    np.testing.assert_allclose(_kernels.col2im(cols, x.shape, *args), dx_ref, atol=1e-12)
    np.testing.assert_allclose(
        _kernels.col2im_batched(np.ascontiguousarray(cols.transpose(1, 0, 2)), x.shape, *args),
        dx_ref, atol=1e-12)


def test_the_reported_overrun_geometries_are_exact():
    """The two repros of the im2col overrun: a tap that sees only padding for more output
    positions than a row holds (flat path: pad 2, dilation 2 on a 1-pixel row)."""
    x = np.arange(1.0, 3.0).reshape(2, 1, 1, 1)
    w = np.ones((1, 1, 1, 3))
    param = {"pad": (0, 2), "dilation": (1, 2)}
    for path in ("im2col", "images"):
        with forced_conv_path(path):
            out, cache = FastConv.forward(x, w, None, param)
            np.testing.assert_array_equal(out.ravel(), [1.0, 2.0])
            dx, dw, _ = FastConv.backward(np.ones_like(out), cache)
        np.testing.assert_array_equal(dx.ravel(), [1.0, 1.0])
        np.testing.assert_array_equal(dw.ravel(), [0.0, 3.0, 0.0])
    for _ in range(300):  # used to corrupt the heap ("malloc(): unaligned tcache chunk")
        out, _ = FastConv.forward(np.ones((1, 1, 1, 1)), w, None,
                                  {"pad": (0, 200), "dilation": (1, 200)})
        assert out.ravel().tolist() == [1.0]


# ------------------------------------------------------------------ pooling

@st.composite
def pool_geometries(draw):
    def axis():
        k = draw(st.integers(1, 5))
        p = draw(st.integers(0, k // 2))  # at most half the window, as PyTorch
        size = draw(st.integers(max(1, k - 2 * p), 6))
        return size, k, draw(st.integers(1, 4)), p

    h, kh, sh, ph = axis()
    w, kw, sw, pw = axis()
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    param = {"pool_height": kh, "pool_width": kw, "stride": (sh, sw), "pad": (ph, pw),
             "floor_mode": True}
    return shape, param, draw(st.booleans()), draw(st.integers(0, 2**16))


def _avg_pool_reference(x, param):
    """Average pooling by explicit windows over the zero-padded input (count_include_pad)."""
    (sh, sw), (ph, pw) = param["stride"], param["pad"]
    kh, kw = param["pool_height"], param["pool_width"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (xp.shape[2] - kh) // sh + 1
    wo = (xp.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (ho, wo))
    for y in range(ho):
        for xo in range(wo):
            out[:, :, y, xo] = xp[:, :, y * sh:y * sh + kh, xo * sw:xo * sw + kw].mean(axis=(2, 3))
    return out


@EXAMPLES
@given(pool_geometries())
def test_max_pool_kernel_matches_naive_with_padding_and_one_pixel_inputs(case):
    shape, param, ties, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if ties:
        x = np.round(x)
    out_ref, cache_ref = MaxPool.forward(x, param)
    out, cache = FastMaxPool.forward(x, param)
    np.testing.assert_array_equal(out, out_ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(FastMaxPool.backward(dout, cache), MaxPool.backward(dout, cache_ref),
                               atol=1e-12)


@EXAMPLES
@given(pool_geometries())
def test_avg_pool_kernel_matches_windows_with_padding_and_one_pixel_inputs(case):
    shape, param, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out, cache = AvgPool.forward(x, param)
    np.testing.assert_allclose(out, _avg_pool_reference(x, param), atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = AvgPool.backward(dout, cache)
    # the adjoint: <dout, pool(e)> = <dx, e> for every input element e, checked at once
    probe = rng.standard_normal(shape)
    assert np.isclose(np.sum(dout * _avg_pool_reference(probe, param)), np.sum(dx * probe),
                      rtol=1e-10, atol=1e-12)
