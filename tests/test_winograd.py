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
from minidl._kernels import winograd as wino
from minidl.layers import Conv, FastConv

pytestmark = pytest.mark.skipif(not _kernels.winograd_available(),
                                reason="compiled Winograd kernels not built")
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
SCHEDULES = (None, 0, 1, 2, 3)  # block_rows: chosen, phases, blocks of 1..3 tile rows


@pytest.fixture(autouse=True)
def _parallel_two_threads():
    """Run every OpenMP loop on two threads, however small the shape."""
    old_work, old_threads = _kernels.get_parallel_min_work(), minidl.get_num_threads()
    _kernels.set_parallel_min_work(0)
    minidl.set_num_threads(2)
    yield
    _kernels.set_parallel_min_work(old_work)
    minidl.set_num_threads(old_threads)


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
