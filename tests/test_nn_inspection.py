"""Module.hooks sees and replaces a layer's output and the gradient arriving at it, also
inside containers, and goes away on exit; Module.inspecting runs a model in eval mode and
leaves its modes and accumulated gradients as they were."""
import numpy as np
import pytest

from minidl import nn
from minidl.models import DeepConvNet


def _net():
    nn.manual_seed(0)
    block = nn.Residual({"conv1": nn.Conv2d(2, 2, 3, padding=1), "relu1": nn.ReLU()})
    return nn.Sequential({"conv": nn.Conv2d(1, 2, 3, padding=1), "block": block,
                          "drop": nn.Dropout(0.5), "flatten": nn.Flatten(),
                          "fc": nn.Linear(2 * 4 * 4, 3)}).astype(np.float64)


def test_a_forward_hook_sees_and_can_replace_a_nested_layers_output():
    model = _net().eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    seen = []
    inner = model.block.conv1
    with inner.hooks(forward=lambda m, out: seen.append((m, out.copy()))):
        model.forward(x)
    assert len(seen) == 1 and seen[0][0] is inner
    np.testing.assert_allclose(seen[0][1], inner.forward(model.conv.forward(x)))
    reference = model.forward(x)
    with inner.hooks(forward=lambda m, out: np.zeros_like(out)):
        zeroed = model.forward(x)
    h = model.conv.forward(x)
    expected = model.fc.forward(model.flatten.forward(h))    # the block adds relu(0) = 0
    np.testing.assert_allclose(zeroed, expected)
    np.testing.assert_allclose(model.forward(x), reference)  # gone after the context
    assert not {"_hooks", "_forward", "_backward"} & set(inner.__dict__)


def test_a_backward_hook_replaces_the_gradient_arriving_at_a_layer():
    model = _net().eval()
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4))
    out = model.forward(x)
    dx_plain = model.backward(np.ones_like(out))
    arriving = []

    def double(m, dout):
        arriving.append(dout.copy())
        return 2 * dout

    with model.fc.hooks(backward=double):
        model.forward(x)
        dx_doubled = model.backward(np.ones_like(out))
    np.testing.assert_allclose(arriving[0], np.ones_like(out))
    np.testing.assert_allclose(dx_doubled, 2 * dx_plain)


def test_hooks_nest_run_in_order_and_are_removed_after_an_error():
    model = _net().eval()
    x = np.zeros((1, 1, 4, 4))
    calls = []
    with model.conv.hooks(forward=lambda m, o: calls.append("outer")):
        with pytest.raises(RuntimeError):
            with model.conv.hooks(forward=lambda m, o: calls.append("inner")):
                model.forward(x)
                raise RuntimeError("boom")
        model.forward(x)
    assert calls == ["outer", "inner", "outer"]
    assert "_forward" not in model.conv.__dict__
    with pytest.raises(TypeError, match="Conv2d.hooks: forward must be callable"):
        with model.conv.hooks(forward=3):
            pass


def test_inspecting_runs_in_eval_mode_and_restores_modes_and_gradients():
    model = _net().train()
    model.block.eval()                                  # mixed modes survive
    x = np.random.default_rng(2).standard_normal((3, 1, 4, 4))
    out = model.forward(x)
    model.backward(np.ones_like(out))
    modes = [m.training for m in model.modules()]
    grads = {k: v.copy() for k, v in model.grads.items()}
    with model.inspecting():
        assert not any(m.training for m in model.modules())
        assert all(not g.any() for g in model.grads.values())  # set aside
        a = model.forward(x)
        np.testing.assert_array_equal(a, model.forward(x))     # dropout is off
        model.backward(np.ones_like(a))
        assert any(g.any() for g in model.grads.values())
    assert [m.training for m in model.modules()] == modes
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, grads[k])
    fresh = _net()
    with fresh.inspecting():
        out = fresh.forward(x)
        fresh.backward(np.ones_like(out))
    assert all(not g.any() for g in fresh.grads.values())      # none were, none are


def test_coursework_to_module_gives_the_test_time_scores():
    dcn = DeepConvNet(input_dims=(1, 8, 8), num_filters=[3, 4], max_pools=[1],
                      batchnorm=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8))
    dcn.loss(x, np.arange(4))                                   # running statistics
    module = dcn.to_module()
    assert not module.training and module.default_input == (1, 8, 8)
    assert [n for n, _ in module.named_modules()][1:] == [
        "conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "pool2", "flatten", "fc3"]
    np.testing.assert_allclose(module.forward(x), dcn.loss(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(module.params["fc3.weight"], dcn.params["W3"].T)
