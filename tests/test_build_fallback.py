"""minidl without its compiled kernels, and the serial (no-OpenMP) build.

The install must never fail for lack of OpenMP or of a compiler: these tests run the two
degraded configurations a user can end up with and check that minidl still works and says so.
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import _kernels
from minidl.layers import Conv, FastConv, FastMaxPool, MaxPool

ROOT = Path(__file__).resolve().parents[1]

# Blocks every compiled module under minidl._kernels, as on a machine with no compiler.
NO_EXTENSION_PRELUDE = textwrap.dedent(
    """
    import importlib.abc, sys, warnings
    class _NoCompiled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.startswith("minidl._kernels._"):
                raise ImportError("simulated: no compiled extension")
            return None
    sys.meta_path.insert(0, _NoCompiled())
    warnings.simplefilter("always")
    """
)


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", NO_EXTENSION_PRELUDE + textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=120)


def test_without_compiled_kernels_minidl_works_and_warns_once():
    res = _run(
        """
        import numpy as np, minidl
        from minidl.layers import Conv, FastConv
        info = minidl.kernels_info()
        assert not info["compiled"] and not info["active"], info
        assert "NumPy" in info["path"], info
        rng = np.random.default_rng(0)
        x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
        cp = {"stride": 1, "pad": 1}
        for _ in range(3):
            out, _ = FastConv.forward(x, w, b, cp)
        ref, _ = Conv.forward(x, w, b, cp)
        assert np.abs(out - ref).max() < 1e-10
        print("OK")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout
    # one warning, naming the command that builds the kernels
    assert res.stderr.count("compiled kernels are not built") == 1, res.stderr
    assert "pip install" in res.stderr


def test_numpy_path_matches_compiled_path():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    cp = {"stride": 2, "pad": 1, "groups": 2, "dilation": 1}
    pp = {"pool_height": 3, "pool_width": 3, "stride": 2, "pad": 1}
    results = []
    try:
        for flag in (True, False):
            _kernels.use_compiled(flag)
            out, cache = FastConv.forward(x, w, None, cp)
            grads = FastConv.backward(np.ones_like(out), cache)
            pool, pcache = FastMaxPool.forward(x, pp)
            results.append((out, grads[0], grads[1], pool, FastMaxPool.backward(np.ones_like(pool), pcache)))
    finally:
        _kernels.use_compiled(True)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    ref, _ = Conv.forward(x, w, None, cp)
    np.testing.assert_allclose(results[1][0], ref, atol=1e-10)
    ref_pool, _ = MaxPool.forward(x, pp)
    np.testing.assert_array_equal(results[1][3], ref_pool)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="needs a C compiler")
def test_serial_build_without_openmp(tmp_path):
    """MINIDL_NO_OPENMP=1 takes the build's serial branch; the kernels still compute right."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "minidl", src / "minidl",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    env = {**os.environ, "MINIDL_NO_OPENMP": "1"}
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                           cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "OpenMP not available; building serial kernels" in build.stderr
    check = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(
            """
            import numpy as np, minidl
            from minidl.layers import Conv, FastConv
            info = minidl.kernels_info()
            assert info["compiled"] and not info["openmp"], info
            minidl.set_num_threads(2)   # harmless without OpenMP
            rng = np.random.default_rng(1)
            x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
            a, _ = FastConv.forward(x, w, None, {"stride": 1, "pad": 1})
            b, _ = Conv.forward(x, w, None, {"stride": 1, "pad": 1})
            assert np.abs(a - b).max() < 1e-10
            print(info["path"])
            """)],
        cwd=src, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert check.returncode == 0, check.stderr
    assert "serial" in check.stdout


def test_set_num_threads_controls_openmp_and_blas():
    before = minidl.get_num_threads()
    try:
        minidl.set_num_threads(1)
        assert minidl.get_num_threads() == 1
        info = minidl.kernels_info()
        assert all(lib["num_threads"] == 1 for lib in info["blas"])
        if info["openmp"]:
            assert _kernels.omp_max_threads() == 1
    finally:
        minidl.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        minidl.set_num_threads(0)


def test_minidl_num_threads_environment_variable():
    res = subprocess.run([sys.executable, "-c", "import minidl; print(minidl.get_num_threads())"],
                         capture_output=True, text=True, env={**os.environ, "MINIDL_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"
