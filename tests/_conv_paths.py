"""Force one FastConv algorithm in a test (shared by the kernel test files)."""
import contextlib

import pytest

from minidl import _kernels
from minidl.layers import conv as conv_mod

PATHS = ("im2col", "images", "direct", "1x1", "numpy")


@contextlib.contextmanager
def forced_conv_path(path):
    """Make FastConv take ``path`` for every geometry that path can run."""
    if path not in PATHS:
        raise ValueError(f"forced_conv_path: unknown path {path!r}; expected one of {PATHS}")
    def chosen(g):
        if path == "direct" and g.G == 1:
            raise AssertionError("the direct kernels run grouped convolutions only (G > 1)")
        if path == "1x1" and (g.KH, g.KW, g.sh, g.sw, g.ph, g.pw) != (1, 1, 1, 1, 0, 0):
            raise AssertionError("the 1x1 path needs a 1x1 kernel, stride 1, no padding")
        return path

    with pytest.MonkeyPatch.context() as m:
        if path == "numpy":
            m.setattr(_kernels, "_force_numpy", True)
        else:
            m.setattr(conv_mod, "_conv_path", chosen)
        yield
