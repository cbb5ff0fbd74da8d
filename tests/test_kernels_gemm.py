"""minidl's own packed GEMM (minidl._kernels.gemm) against NumPy, and the packed convolution
path built on it: every transpose, sizes that are not multiples of the register tile or of
the cache blocks (1-sized and odd ones included), accumulation, float32 and float64, and
results that do not depend on the number of threads."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidl
from minidl import _kernels
from minidl.layers import Conv, FastConv

from _conv_paths import forced_conv_path, forced_parallel

pytestmark = pytest.mark.skipif(not _kernels.compiled_available(),
                                reason="compiled kernels not built")
EXAMPLES = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    ref = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
    return a, b, ref


def _assert_gemm_close(got, ref, k, dtype):
    # float32: a sum of k products, each rounded, against the float64 product
    eps = np.finfo(dtype).eps
    tol = 4 * eps * max(k, 1) ** 0.5 * max(1.0, float(np.abs(ref).max(initial=0)))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


@EXAMPLES
@given(m=st.integers(1, 40), n=st.integers(1, 70), k=st.integers(1, 40),
       trans_a=st.booleans(), trans_b=st.booleans(), accumulate=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_gemm_matches_numpy_for_every_transpose_and_odd_sizes(m, n, k, trans_a, trans_b,
                                                              accumulate, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b, ref = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    out = rng.standard_normal((m, n)).astype(dtype) if accumulate else None
    if accumulate:
        ref = ref + out
    got = _kernels.gemm(a, b, trans_a, trans_b, out=out, accumulate=accumulate)
    assert got.dtype == dtype and got.shape == (m, n)
    _assert_gemm_close(got, ref, k, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False),
                                             (True, True)])
def test_gemm_crosses_every_cache_block(trans_a, trans_b, dtype):
    """Sizes past one KC (contraction), MC (rows) and NC (columns) block, plus edges."""
    mr, nr, kc, mc, nc = _kernels.gemm_info()[np.dtype(dtype).name]
    m, n, k = mc + mr + 3, nc + nr + 5, kc + 7
    a, b, ref = _operands(np.random.default_rng(1), m, n, k, trans_a, trans_b, dtype)
    _assert_gemm_close(_kernels.gemm(a, b, trans_a, trans_b), ref, k, dtype)


def test_gemm_of_an_empty_contraction_is_zero_and_leaves_an_accumulator_alone():
    a, b = np.ones((3, 0)), np.ones((0, 4))
    assert not _kernels.gemm(a, b).any()
    out = np.full((3, 4), 2.0)
    assert (_kernels.gemm(a, b, out=out, accumulate=True) == 2.0).all()
    assert _kernels.gemm(np.ones((0, 5)), np.ones((5, 4))).shape == (0, 4)


def test_gemm_rejects_mismatched_arguments_with_their_shapes():
    a, b = np.ones((3, 5)), np.ones((4, 2))
    with pytest.raises(ValueError, match=r"gemm: op\(a\) is 3x5 .* op\(b\) is 4x2"):
        _kernels.gemm(a, b)
    with pytest.raises(TypeError, match="gemm: dtype mismatch"):
        _kernels.gemm(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"gemm: out must be .* of shape \(3, 2\)"):
        _kernels.gemm(a, np.ones((5, 2)), out=np.ones((2, 3)))
    with pytest.raises(ValueError, match="accumulate=True needs an out array"):
        _kernels.gemm(a, np.ones((5, 2)), accumulate=True)


def test_gemm_info_names_the_micro_kernel():
    info = _kernels.gemm_info()
    assert info["isa"] in ("avx512", "avx2", "baseline")
    for dtype in ("float32", "float64"):
        mr, nr, kc, mc, nc = info[dtype]
        assert mr >= 1 and nr >= 1 and mc % mr == 0 and kc >= 16 and nc >= nr
    assert minidl.kernels_info()["gemm"] == info


def _packed_conv(x, w, b, param, dout, threads):
    with forced_parallel(threads), forced_conv_path("packed"):
        out, cache = FastConv.forward(x, w, b, param)
        return (out,) + tuple(FastConv.backward(dout, cache))


@pytest.mark.parametrize("param,w_shape,x_shape", [
    ({"stride": 1, "pad": 1}, (10, 6, 3, 3), (3, 6, 23, 21)),
    ({"stride": 2, "pad": 2, "groups": 2}, (8, 3, 5, 5), (3, 6, 23, 21)),
    ({"stride": 1, "pad": 0}, (10, 6, 1, 1), (3, 6, 23, 21)),
    # 7x7 outputs: forward blocks of 7 images at 1 thread, of 4 at 2 threads
    ({"stride": 2, "pad": 1}, (10, 6, 3, 3), (8, 6, 13, 13))])
def test_packed_conv_results_do_not_depend_on_the_thread_count(param, w_shape, x_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    ref_out, _ = Conv.forward(x, w, b, param)
    dout = rng.standard_normal(ref_out.shape).astype(np.float32)
    one, two = _packed_conv(x, w, b, param, dout, 1), _packed_conv(x, w, b, param, dout, 2)
    for name, a, c in zip(("out", "dx", "dw", "db"), one, two):
        np.testing.assert_array_equal(a, c, err_msg=name)


def test_packed_conv_in_float32_matches_float64_past_the_cache_blocks():
    """K = Cg*KH*KW past one KC block and F past one MC block, in float32 against the naive
    float64 layer."""
    mr, nr, kc, mc, nc = _kernels.gemm_info()["float32"]
    rng = np.random.default_rng(6)
    c = kc // 9 + 2
    x = rng.standard_normal((2, c, 9, 10))
    w = rng.standard_normal((mc + 3, c, 3, 3)) / np.sqrt(9 * c)
    b = rng.standard_normal(mc + 3)
    param = {"stride": 1, "pad": 1}
    ref_out, ref_cache = Conv.forward(x, w, b, param)
    dout = rng.standard_normal(ref_out.shape)
    ref = (ref_out,) + tuple(Conv.backward(dout, ref_cache))
    got = _packed_conv(*(a.astype(np.float32) for a in (x, w, b)), param,
                       dout.astype(np.float32), 2)
    for name, r, g in zip(("out", "dx", "dw", "db"), ref, got):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=0, atol=2e-5 * max(1.0, np.abs(r).max()),
                                   err_msg=name)
