"""Winograd F(2x2,3x3) and F(4x4,3x3): forward, data and filter gradients against the naive
convolution, on every geometry the kernels accept, through every schedule they have.

The geometries drawn include 1-pixel inputs, padding at and above the input size (tiles
that read only padding), asymmetric pads and partial tiles at the right and bottom edges.
Each case runs a schedule drawn from: blocks spread over the threads (several block sizes,
the last block short), the phases schedule (its GEMMs through the BLAS inside the OpenMP
loop, or one NumPy matmul), and in float32 the AVX-512 products kernel or the BLAS. The
OpenMP loops are forced parallel on two threads. The file also runs under AddressSanitizer
(.ci/sanitize).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidl
from minidl import _kernels
from minidl._kernels import convolution
from minidl._kernels import winograd as wino
from minidl.layers import Conv, FastConv

from _conv_paths import forced_parallel

pytestmark = pytest.mark.skipif(not _kernels.winograd_available(),
                                reason="compiled Winograd kernels not built")
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
SCHEDULES = (None, 0, 1, 2, 3)  # block_rows: chosen, phases, blocks of 1..3 tile rows


@pytest.fixture(autouse=True)
def _parallel_two_threads():
    """Run every OpenMP loop on two threads, however small the shape."""
    with forced_parallel(2):
        yield


@pytest.fixture
def simd_products():
    """Set whether the float32 products use the AVX-512 kernel; restored afterwards."""
    old = wino.set_simd_products(True)
    yield wino.set_simd_products
    wino.set_simd_products(old)


@st.composite
def geometries(draw):
    """(N, C, F, H, W, ph, pw) with sizes 1..9 and pads 0..4 whose output is at least 1x1."""
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    ph = draw(st.integers(max(0, -(-(3 - h) // 2)), 4))
    pw = draw(st.integers(max(0, -(-(3 - w) // 2)), 4))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)),
            h, w, ph, pw)


def _naive(geometry, seed, bias=True):
    n, c, f, h, w, ph, pw = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, 3, 3))
    b = rng.standard_normal(f) if bias else None
    out, cache = Conv.forward(x, wt, b, {"stride": 1, "pad": (ph, pw)})
    dout = rng.standard_normal(out.shape)
    dx, dw, db = Conv.backward(dout, cache)
    return (x, wt, b, dout), (out, dx, dw, db)


def _winograd_all(x, w, b, dout, m, ph, pw, block_rows):
    out = _kernels.winograd_forward(x, w, b, m, ph, pw, block_rows=block_rows)
    dx = _kernels.winograd_backward_data(dout, w, x.shape, m, ph, pw, block_rows=block_rows)
    dw, db = _kernels.winograd_backward_filter(x, dout, m, ph, pw, with_db=True,
                                               block_rows=block_rows)
    return out, dx, dw, db


def _assert_close(got, ref, rtol, what):
    for name, g, r in zip(("out", "dx", "dw", "db"), got, ref):
        assert g.shape == r.shape, (name, what)
        scale = max(1.0, np.abs(r).max())
        np.testing.assert_allclose(g, r, rtol=0, atol=rtol * scale, err_msg=f"{name} {what}")


@EXAMPLES
@given(geometry=geometries(), m=st.sampled_from([2, 4]), block_rows=st.sampled_from(SCHEDULES),
       seed=st.integers(0, 2**16))
def test_float64_matches_naive_conv_on_every_geometry_and_schedule(geometry, m, block_rows, seed):
    (x, w, b, dout), ref = _naive(geometry, seed)
    got = _winograd_all(x, w, b, dout, m, geometry[5], geometry[6], block_rows)
    assert all(g.dtype == np.float64 for g in got)
    _assert_close(got, ref, 1e-11, f"m={m} block_rows={block_rows} {geometry}")


@EXAMPLES
@given(geometry=geometries(), m=st.sampled_from([2, 4]), block_rows=st.sampled_from(SCHEDULES),
       simd=st.booleans(), seed=st.integers(0, 2**16))
def test_float32_matches_naive_conv_through_the_simd_and_blas_products(
        simd_products, geometry, m, block_rows, simd, seed):
    simd_products(simd)  # without AVX-512 both run the BLAS
    (x, w, b, dout), ref = _naive(geometry, seed)
    args = [a.astype(np.float32) for a in (x, w, b, dout)]
    got = _winograd_all(*args, m, geometry[5], geometry[6], block_rows)
    assert all(g.dtype == np.float32 for g in got)
    _assert_close(got, ref, 1e-4, f"m={m} block_rows={block_rows} simd={simd} {geometry}")


@settings(max_examples=15, deadline=None)
@given(geometry=geometries(), m=st.sampled_from([2, 4]), dtype=st.sampled_from(["f4", "f8"]),
       seed=st.integers(0, 2**16))
def test_phases_schedule_with_numpy_matmul_matches_naive(geometry, m, dtype, seed):
    """Without scipy's BLAS the phases run their GEMMs as one NumPy matmul."""
    (x, w, b, dout), ref = _naive(geometry, seed)
    args = [a.astype(dtype) for a in (x, w, b, dout)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wino, "_blas_ready", lambda: False)
        assert wino._Schedule("forward", 1, 1, 1, 4, 4, m, 8).mode == "phases"
        got = _winograd_all(*args, m, geometry[5], geometry[6], None)
    _assert_close(got, ref, 1e-4 if dtype == "f4" else 1e-11, f"numpy matmul m={m} {geometry}")


def test_larger_layers_match_fastconv_in_float64_through_each_schedule():
    """Several blocks per thread, planes wider than a vector, channels over the kernel's
    12-row and 32-column register blocks."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 27, 19, 37))
    w = rng.standard_normal((29, 27, 3, 3))
    b = rng.standard_normal(29)
    ref_out, cache = FastConv.forward(x, w, b, {"pad": (1, 2)})
    dout = rng.standard_normal(ref_out.shape)
    ref = (ref_out,) + tuple(FastConv.backward(dout, cache))
    for m in (2, 4):
        for block_rows in (None, 0, 1, 4, 100):
            got = _winograd_all(x, w, b, dout, m, 1, 2, block_rows)
            _assert_close(got, ref, 1e-11, f"m={m} block_rows={block_rows}")


# -------------------------------------------------------------------- float32 error bound

# Measured max |error| / max |reference| of float32 Winograd against float64 convolution
# (N(0, 1) data, C = F = 64, 16x16, pad 1, three seeds; see minidl/_kernels/winograd.py):
# F(2x2) forward 3.9e-7, dx 3.6e-7, dw 4.3e-7; F(4x4) 7.0e-6, 7.0e-6, 6.0e-6.
ERROR_BOUND = {2: 5e-6, 4: 5e-5}


@pytest.mark.parametrize("m", [2, 4])
def test_float32_error_stays_within_the_documented_bound(m):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64, 16, 16))
    w = rng.standard_normal((64, 64, 3, 3))
    dout = rng.standard_normal((4, 64, 16, 16))
    out, cache = FastConv.forward(x, w, None, {"pad": 1})
    dx, dw, _ = FastConv.backward(dout, cache)
    x32, w32, d32 = x.astype(np.float32), w.astype(np.float32), dout.astype(np.float32)
    got = {"forward": _kernels.winograd_forward(x32, w32, None, m, 1, 1),
           "dx": _kernels.winograd_backward_data(d32, w32, x.shape, m, 1, 1),
           "dw": _kernels.winograd_backward_filter(x32, d32, m, 1, 1)}
    for name, ref in (("forward", out), ("dx", dx), ("dw", dw)):
        err = np.abs(got[name].astype(np.float64) - ref).max() / np.abs(ref).max()
        assert err <= ERROR_BOUND[m], f"F({m}x{m}) {name}: relative error {err:.2e}"


# -------------------------------------------------------------------- behaviour

def test_products_kernel_is_chosen_by_whether_the_blas_runs_avx512_itself(simd_products):
    class Blas:
        internal_api = "openblas"
        architecture = "Haswell"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wino, "_images_blas", lambda: Blas)
        simd_products(None)
        assert wino._products_kernel() == wino._winograd.simd_products_available()
        simd_products(None)
        Blas.architecture = "SkylakeX"
        assert wino._products_kernel() is False

def test_filter_gradient_is_the_same_on_every_call_however_the_threads_are_scheduled():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8, 20, 20)).astype(np.float32)
    dout = rng.standard_normal((6, 12, 20, 20)).astype(np.float32)
    first = _kernels.winograd_backward_filter(x, dout, 4, 1, 1, block_rows=1)
    for _ in range(5):
        np.testing.assert_array_equal(
            _kernels.winograd_backward_filter(x, dout, 4, 1, 1, block_rows=1), first)


@pytest.mark.parametrize("kind", ["forward", "data", "filter"])
def test_workspace_bytes_account_for_every_scratch_array_a_call_takes(kind):
    _kernels.release_workspaces()
    x = np.ones((4, 6, 13, 11), np.float32)
    w = np.ones((5, 6, 3, 3), np.float32)
    dout = np.ones((4, 5, 13, 9), np.float32)  # pad (1, 0)
    if kind == "forward":
        _kernels.winograd_forward(x, w, None, 4, 1, 0)
    elif kind == "data":
        _kernels.winograd_backward_data(dout, w, x.shape, 4, 1, 0)
    else:
        _kernels.winograd_backward_filter(x, dout, 4, 1, 0)
    used = sum(buf.nbytes for name, buf in _kernels._tls.spaces.items()
               if name.startswith("wino_"))
    assert used == _kernels.winograd_workspace_bytes(kind, x.shape, 5, 4, 1, 0, np.float32)


def test_non_contiguous_inputs_are_accepted_and_give_the_contiguous_result():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 9, 3)).transpose(0, 1, 3, 2)
    w = rng.standard_normal((3, 3, 4, 5)).transpose(2, 3, 0, 1)
    np.testing.assert_array_equal(_kernels.winograd_forward(x, w, None, 2, 1, 1),
                                  _kernels.winograd_forward(np.ascontiguousarray(x),
                                                            np.ascontiguousarray(w), None,
                                                            2, 1, 1))


# -------------------------------------------------------------------- argument checks

X = np.zeros((2, 3, 5, 5), np.float32)
W = np.zeros((4, 3, 3, 3), np.float32)
D = np.zeros((2, 4, 5, 5), np.float32)


@pytest.mark.parametrize("call, match", [
    (lambda: _kernels.winograd_forward(X, W, None, 3, 1, 1), r"winograd_forward: m must be"),
    (lambda: _kernels.winograd_forward(X, W, None, True, 1, 1), r"m must be"),
    (lambda: _kernels.winograd_forward(X, W, None, 2.0, 1, 1), r"m must be"),
    (lambda: _kernels.winograd_workspace_bytes("backward", X.shape, 4, 2, 1, 1),
     r"winograd_workspace_bytes: kind must be"),
    (lambda: _kernels.winograd_forward(X, W, None, 2, -1, 1), r"ph must be an integer >= 0"),
    (lambda: _kernels.winograd_forward(X, W, None, 2, 1, 1.5), r"pw must be an integer"),
    (lambda: _kernels.winograd_forward(X, np.zeros((4, 3, 5, 5), np.float32), None, 2, 1, 1),
     r"w must be \(F, C, 3, 3\), got shape \(4, 3, 5, 5\)"),
    (lambda: _kernels.winograd_forward(X, np.zeros((4, 2, 3, 3), np.float32), None, 2, 1, 1),
     r"w \(4, 2, 3, 3\) has 2 input channels but x \(2, 3, 5, 5\) has 3"),
    (lambda: _kernels.winograd_forward(X, W, np.zeros(3, np.float32), 2, 1, 1),
     r"b \(3,\) must have one value per filter"),
    (lambda: _kernels.winograd_forward(X[:, :, :1, :1], W, None, 2, 0, 0),
     r"does not fit an input of 1x1 padded by \(0, 0\): the output would be -1x-1"),
    (lambda: _kernels.winograd_forward(X[0], W, None, 2, 1, 1), r"x must be 4-D"),
    (lambda: _kernels.winograd_backward_data(D, W, (2, 3, 5, 5), 4, 2, 1),
     r"winograd_backward_data: dout \(2, 4, 5, 5\) must be \(2, 4, 7, 5\)"),
    (lambda: _kernels.winograd_backward_data(D, W, (2, 3, 5), 4, 1, 1),
     r"x_shape must be \(N, C, H, W\)"),
    (lambda: _kernels.winograd_backward_filter(X, D[:, :, :4], 2, 1, 1),
     r"winograd_backward_filter: dout \(2, 4, 4, 5\) must be \(N=2, F, 5, 5\)"),
    (lambda: _kernels.winograd_forward(X, W, None, 2, 1, 1, block_rows=-1),
     r"block_rows must be an integer >= 0"),
])
def test_bad_arguments_raise_value_errors_naming_the_function_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: _kernels.winograd_forward(X, W.astype(np.float64), None, 2, 1, 1),
    lambda: _kernels.winograd_forward(X.astype(np.int32), W, None, 2, 1, 1),
    lambda: _kernels.winograd_backward_filter(X, D.astype(np.float64), 2, 1, 1),
])
def test_dtype_mixes_and_non_float_arrays_raise_type_errors(call):
    with pytest.raises(TypeError, match=r"winograd_"):
        call()


def test_empty_batches_and_channels_give_empty_or_bias_only_results():
    out = _kernels.winograd_forward(X[:0], W, None, 2, 1, 1)
    assert out.shape == (0, 4, 5, 5)
    b = np.arange(4, dtype=np.float32)
    out = _kernels.winograd_forward(X[:, :0], W[:, :0], b, 4, 1, 1)
    np.testing.assert_array_equal(out, np.broadcast_to(b.reshape(1, 4, 1, 1), (2, 4, 5, 5)))
    dw, db = _kernels.winograd_backward_filter(X[:, :0], D, 4, 1, 1, with_db=True)
    assert dw.shape == (4, 0, 3, 3) and db.shape == (4,)


# -------------------------------------------------------------------- through the ConvPlan

WINOGRAD_ALGORITHMS = ("winograd_2x2", "winograd_4x4")


def wino_tile(algorithm):
    return convolution.WINOGRAD_TILE[algorithm]


def _layer_run(x, w, b, dout, param):
    out, cache = FastConv.forward(x, w, b, param)
    return (out,) + tuple(FastConv.backward(dout, cache)), cache.values[0]


@EXAMPLES
@given(geometry=geometries(), algorithm=st.sampled_from(WINOGRAD_ALGORITHMS),
       dtype=st.sampled_from([np.float32, np.float64]), bias=st.booleans(),
       block_tiles=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_fastconv_runs_each_forced_winograd_algorithm_as_the_naive_layer(
        geometry, algorithm, dtype, bias, block_tiles, seed):
    (x, w, b, dout), ref = _naive(geometry, seed, bias)
    args = [None if a is None else a.astype(dtype) for a in (x, w, b, dout)]
    param = {"stride": 1, "pad": (geometry[5], geometry[6])}
    with pytest.MonkeyPatch.context() as mp, _kernels.forced_algorithm(algorithm):
        mp.setattr(wino, "BLOCK_TILES", block_tiles)  # several blocks: the blocks schedule
        got, plan = _layer_run(*args, param)
    assert plan.algorithm == algorithm and plan.family == "winograd"
    assert all(g is None if r is None else g.dtype == dtype for g, r in zip(got, ref))
    if not bias:
        assert got[3] is None
        got, ref = got[:3], ref[:3]
    tol = ERROR_BOUND[wino_tile(algorithm)] if dtype == np.float32 else 1e-11
    _assert_close(got, ref, tol, f"{algorithm} {np.dtype(dtype).name} {geometry}")


@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
def test_float32_layers_stay_within_the_documented_bound_at_32_channels(algorithm):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 32, 9, 11)), rng.standard_normal((24, 32, 3, 3))
    b = rng.standard_normal(24)
    out, cache = Conv.forward(x, w, b, {"pad": 1})
    dout = rng.standard_normal(out.shape)
    ref = (out,) + tuple(Conv.backward(dout, cache))
    with _kernels.forced_algorithm(algorithm):
        got, _ = _layer_run(*(a.astype(np.float32) for a in (x, w, b, dout)), {"pad": 1})
    for name, g, r in zip(("out", "dx", "dw", "db"), got, ref):
        err = np.abs(g.astype(np.float64) - r).max() / np.abs(r).max()
        assert err <= ERROR_BOUND[wino_tile(algorithm)], f"{algorithm} {name}: {err:.2e}"


def test_set_conv_algorithm_winograd_runs_float32_and_float64_layers():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    out, cache = Conv.forward(x, w, None, {"pad": 2})
    dout = rng.standard_normal(out.shape)
    ref = (out,) + tuple(Conv.backward(dout, cache))
    old = minidl.set_conv_algorithm("winograd")
    try:
        for dtype, tol in ((np.float64, 1e-11), (np.float32, ERROR_BOUND[4])):
            got, plan = _layer_run(x.astype(dtype), w.astype(dtype), None, dout.astype(dtype),
                                   {"pad": 2})
            assert plan.algorithm == "winograd_4x4"  # 3 channels: only because it is forced
            _assert_close(got[:3], ref[:3], tol, np.dtype(dtype).name)
        # a geometry Winograd cannot run keeps the automatic choice
        plan = _kernels.plan_conv("FastConv", x, np.ones((4, 3, 3, 3)), None,
                                  {"pad": 1, "stride": 2, "floor_mode": True})
        assert plan.family == "gemm"
    finally:
        minidl.set_conv_algorithm(old)


def _plan(x_shape, f=None, dtype=np.float32, k=3, **param):
    w_shape = (f or x_shape[1], x_shape[1] // param.get("groups", 1), k, k)
    return _kernels.plan_conv("FastConv", np.zeros(x_shape, dtype), np.zeros(w_shape, dtype),
                              None, dict({"pad": 1}, **param))


@pytest.mark.parametrize("x_shape,f,param,algorithm", [
    ((64, 16, 32, 32), 16, {}, "winograd_4x4"),       # ResNet-20 stage 1
    ((8, 64, 56, 56), 64, {}, "winograd_4x4"),
    ((8, 256, 14, 14), 256, {}, "winograd_4x4"),
    ((4, 64, 4, 4), 64, {}, "winograd_4x4"),
    ((4, 64, 3, 3), 64, {}, "winograd_2x2"),          # output plane smaller than a 4x4 tile
    ((4, 64, 1, 1), 64, {}, "winograd_2x2"),
    ((4, 64, 5, 1), 64, {}, "winograd_2x2"),
    ((64, 8, 32, 32), 16, {}, "winograd_4x4"),
    ((64, 3, 32, 32), 64, {}, "gemm_packed"),         # few input channels: GEMM measured faster
    ((64, 7, 32, 32), 64, {}, "gemm_packed"),
    ((8, 64, 15, 15), 64, {"stride": 2}, "gemm_packed"),
    ((8, 64, 16, 16), 64, {"dilation": 2, "pad": 2}, "gemm_packed"),
    ((8, 64, 16, 16), 64, {"groups": 2}, "gemm_packed"),
])
def test_auto_runs_float32_3x3_stride1_layers_by_winograd_as_measured(x_shape, f, param,
                                                                      algorithm):
    assert _plan(x_shape, f, **param).algorithm == algorithm


def test_auto_never_picks_winograd_for_float64_even_when_autotuning():
    for x_shape in ((64, 16, 32, 32), (4, 64, 1, 1), (2, 8, 5, 5)):
        plan32, plan64 = _plan(x_shape), _plan(x_shape, dtype=np.float64)
        assert plan32.family == "winograd" and plan64.family == "gemm", (plan32, plan64)
        assert set(WINOGRAD_ALGORITHMS) <= set(convolution.candidates(plan32))
        assert not set(WINOGRAD_ALGORITHMS) & set(convolution.candidates(plan64))
    old = minidl.set_conv_autotune(True)
    try:
        plan = _plan((2, 8, 5, 5), dtype=np.float64)
        assert plan.tuned and plan.family == "gemm"
    finally:
        minidl.set_conv_autotune(old)


def test_autotune_times_the_winograd_candidates_of_float32_plans(monkeypatch):
    timed = []
    real = convolution.forward
    monkeypatch.setattr(convolution, "forward",
                        lambda p, *a: timed.append(p.algorithm) or real(p, *a))
    old = minidl.set_conv_autotune(True)
    try:
        plan = _plan((2, 8, 6, 6))
    finally:
        minidl.set_conv_autotune(old)
    assert plan.tuned and set(WINOGRAD_ALGORITHMS) <= set(timed)
    assert plan.algorithm in timed


@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
def test_the_plan_reports_its_winograd_algorithm_and_workspace(algorithm):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 6, 13, 11)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    _kernels.release_workspaces()
    with _kernels.forced_algorithm(algorithm):
        out, cache = FastConv.forward(x, w, None, {"pad": (1, 0)})
        FastConv.backward(np.ones_like(out), cache)
        plan = cache.values[0]
        assert any(line.endswith(f"-> {algorithm}") and "(3, 6, 13, 11)" in line
                   for line in minidl.kernels_info()["conv_plans"])
    assert algorithm in plan.describe()
    # the workspace a forward + backward leaves allocated is what the plan accounts
    used = sum(buf.nbytes for buf in _kernels._tls.spaces.values())
    assert plan.workspace_bytes == used > 0


def test_an_nn_conv2d_in_float32_runs_winograd_and_matches_float64():
    from minidl import nn

    rng = np.random.default_rng(9)
    m32 = nn.Conv2d(16, 8, 3, padding=1).astype(np.float32)
    m64 = nn.Conv2d(16, 8, 3, padding=1).astype(np.float64)
    m64.load_state_dict({k: v.astype(np.float64) for k, v in m32.state_dict().items()})
    x = rng.standard_normal((2, 16, 7, 7))
    dout = rng.standard_normal((2, 8, 7, 7))
    out32, out64 = m32.forward(x.astype(np.float32)), m64.forward(x)
    assert m32._cache.values[0].algorithm == "winograd_4x4"
    assert m64._cache.values[0].family == "gemm"
    dx32, dx64 = m32.backward(dout.astype(np.float32)), m64.backward(dout)
    _assert_close((out32, dx32, m32.grads["weight"]), (out64, dx64, m64.grads["weight"]),
                  ERROR_BOUND[4], "nn.Conv2d")
