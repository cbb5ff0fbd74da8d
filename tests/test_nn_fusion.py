"""Containers run batch norm + ReLU and add + ReLU as fused layers: the same outputs, running
statistics and gradients as running every module separately, and never when hooks watch."""
import contextlib

import numpy as np
import pytest

from minidl import layers as L
from minidl import nn
from minidl.losses import softmax_loss
from minidl.models import zoo
from minidl.models.zoo.densenet import DenseNet


def _step(build, x, y, fuse):
    nn.manual_seed(0)
    model = build().astype(np.float64)
    with contextlib.nullcontext() if fuse else nn.no_fusion():
        out = model(x)
        _, dscores = softmax_loss(out, y)
        dx = model.backward(dscores)
        grads = {k: v.copy() for k, v in model.grads.items()}
        state = {k: v.copy() for k, v in model.state_dict().items()}
        model.eval()
        scores = model(x)
        deval = model.backward(np.ones_like(scores))
    return out, dx, grads, state, scores, deval


@pytest.mark.parametrize("name,build,shape", [
    ("resnet20", lambda: zoo.resnet20(num_classes=5), (3, 3, 8, 8)),
    # a small DenseNet: dense layers are BN-ReLU-conv chains inside Concat containers
    ("densenet", lambda: DenseNet(4, (2, 2), 8, 2, num_classes=5), (2, 3, 32, 32)),
    ("conv-bn-relu chain", lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.GlobalAvgPool(),
        nn.Flatten(), nn.Linear(4, 5)), (2, 3, 8, 8)),
])
def test_fused_containers_match_every_module_run_separately(name, build, shape, monkeypatch):
    calls = {"bn_relu": 0, "add_relu": 0}
    for layer, key in ((L.SpatialBatchNormReLU, "bn_relu"), (L.AddReLU, "add_relu")):
        real = layer.forward
        monkeypatch.setattr(layer, "forward", staticmethod(
            lambda *a, _real=real, _key=key: calls.__setitem__(_key, calls[_key] + 1) or _real(*a)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    y = rng.integers(0, 5, size=shape[0])
    fused = _step(build, x, y, fuse=True)
    assert calls["bn_relu"] > 0, name
    n_fused = dict(calls)
    separate = _step(build, x, y, fuse=False)
    assert calls == n_fused  # nothing fused under no_fusion()
    for what, a, b in zip(("out", "dx", "grads", "state", "eval out", "eval dx"), fused, separate):
        if isinstance(a, dict):
            for k in a:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{name}: {what} {k}")
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{name}: {what}")


def test_resnet_blocks_fuse_their_sum_and_relu(monkeypatch):
    calls = []
    real = L.AddReLU.forward
    monkeypatch.setattr(L.AddReLU, "forward", staticmethod(lambda a, b: calls.append(1) or real(a, b)))
    model = zoo.resnet20(num_classes=3).astype(np.float64)
    model(np.zeros((1, 3, 8, 8)))
    assert len(calls) == 9  # one per residual block


def test_a_fused_model_passes_the_gradient_check():
    nn.manual_seed(1)
    block = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Conv2d(3, 2, 1)).astype(np.float64)
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 4))
    report = nn.check_gradients(block, x)
    assert report.passed, report


def test_hooks_see_every_module_so_nothing_they_watch_is_fused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU())
    model = model.astype(np.float64)
    seen = []
    with model[2].hooks(forward=lambda m, out: seen.append(out.copy())):
        out = model(np.random.default_rng(0).standard_normal((2, 1, 4, 4)))
    assert len(seen) == 1 and np.array_equal(seen[0], out)


def test_fusion_setting():
    assert nn.get_fusion() is True
    with nn.no_fusion():
        assert nn.get_fusion() is False
    assert nn.set_fusion(True) is True
    with pytest.raises(TypeError, match="set_fusion: flag must be True or False"):
        nn.set_fusion(1)
