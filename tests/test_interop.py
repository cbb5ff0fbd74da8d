"""minidl.interop: PyTorch state_dicts and .pth files, safetensors, and clear errors for bad
files. The models on the PyTorch side are torch's own nn modules (torch 2.13 in CI), built
layer for layer like the minidl ones; torchvision parity is tests/test_interop_torchvision.py.
"""
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from minidl import interop, nn
from minidl.models import zoo
from minidl.nn import StateDictError

safetensors = pytest.importorskip("safetensors")
try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch 2.13.0 (.ci/install-ci-extras)
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (CI installs "
                                 "torch 2.13.0 through .ci/install-ci-extras)")


def minidl_net(dtype=np.float64, seed=0):
    """conv-bn-relu-pool, a residual block, conv (groups) - bn, pool, linear; names as a
    torch nn.Sequential of the same layers would have."""
    nn.manual_seed(seed)
    block = nn.Residual(OrderedDict(conv=nn.Conv2d(6, 6, 3, padding=1, bias=False),
                                    bn=nn.BatchNorm2d(6)))
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.MaxPool2d(2), block, nn.Conv2d(6, 8, 3, groups=2, bias=False),
                        nn.BatchNorm2d(8), nn.ReLU6(), nn.GlobalAvgPool(), nn.Flatten(),
                        nn.Linear(8, 5))
    return net.astype(dtype)


def _train_a_little(net, rng, steps=3):
    net.train()
    for _ in range(steps):
        net(rng.standard_normal((4, 3, 8, 8)).astype(net.dtype))
    net.eval()
    return net


# ---------------------------------------------------------------------------- batch norm counter
def test_num_batches_tracked_counts_training_forwards_only():
    bn = nn.BatchNorm2d(3).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    for _ in range(3):
        bn(x)
    bn.eval()
    bn(x)
    assert int(bn.num_batches_tracked) == 3 and bn.num_batches_tracked.shape == ()
    assert "num_batches_tracked" in bn.state_dict()


def test_a_state_without_counters_still_loads_and_keeps_them():
    net = _train_a_little(minidl_net(), np.random.default_rng(0))
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    other = minidl_net(seed=1)
    other.load_state_dict(state)  # strict, as PyTorch loads such states
    assert int(other[1].num_batches_tracked) == 0
    np.testing.assert_array_equal(other[1].running_mean, net[1].running_mean)


def test_old_pickled_batch_norm_gets_a_counter():
    import pickle

    bn = nn.BatchNorm2d(2)
    state = bn.__getstate__()
    del state["_buffers"]["num_batches_tracked"]
    old = nn.BatchNorm2d.__new__(nn.BatchNorm2d)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert int(old.num_batches_tracked) == 0


def torch_net(dtype=None):
    """The torch twin of minidl_net (its state_dict keys are minidl_net's)."""
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(6, 6, 3, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(6)

        def forward(self, x):
            return x + self.bn(self.conv(x))

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), Block(), torch.nn.Conv2d(6, 8, 3, groups=2, bias=False),
        torch.nn.BatchNorm2d(8), torch.nn.ReLU6(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 5)).to(dtype or torch.float64)


@needs_torch
def test_batch_norm_counter_and_cumulative_momentum_match_torch():
    rng = np.random.default_rng(0)
    ours = nn.BatchNorm2d(3, momentum=None).astype(np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=None).double()
    for _ in range(4):
        x = rng.standard_normal((4, 3, 5, 5)) * 3 + 1
        ours(x)
        theirs(torch.from_numpy(x))
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)
    assert repr(ours) == "BatchNorm2d(3, momentum=None)"


# ---------------------------------------------------------------------------- torch state_dicts
@needs_torch
def test_state_dict_keys_and_order_are_torchs_and_logits_match():
    tnet = torch_net()
    tnet.train()
    with torch.no_grad():
        for _ in range(2):
            tnet(torch.randn(4, 3, 8, 8, dtype=torch.float64))
    tnet.eval()
    net = minidl_net()
    assert list(net.state_dict()) == list(tnet.state_dict())
    interop.load_torch_state_dict(net, tnet.state_dict())
    net.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    with torch.no_grad():
        ref = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), ref, rtol=1e-10, atol=1e-12)
    assert int(net[1].num_batches_tracked) == 2


@needs_torch
def test_to_torch_state_dict_loads_strictly_into_torch():
    net = _train_a_little(minidl_net(), np.random.default_rng(0))
    sd = interop.to_torch_state_dict(net)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    assert sd["1.num_batches_tracked"].dtype == torch.int64
    assert sd["1.num_batches_tracked"].shape == () and int(sd["1.num_batches_tracked"]) == 3
    tnet = torch_net()
    tnet.load_state_dict(sd, strict=True)
    tnet.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    with torch.no_grad():
        ref = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), ref, rtol=1e-10, atol=1e-12)


@needs_torch
def test_float32_and_bfloat16_tensors_load_into_either_dtype():
    tnet = torch_net(torch.float32)
    net = minidl_net(np.float64)
    interop.load_torch_state_dict(net, tnet.state_dict())
    np.testing.assert_array_equal(net[0].weight, tnet[0].weight.detach().double().numpy())
    bf16 = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v)
            for k, v in tnet.state_dict().items()}
    net32 = minidl_net(np.float32)
    interop.load_torch_state_dict(net32, bf16)
    np.testing.assert_array_equal(net32[0].weight, bf16["0.weight"].float().numpy())


@needs_torch
def test_the_report_lists_missing_unexpected_wrong_shape_and_wrong_dtype():
    sd = torch_net().state_dict()
    del sd["0.weight"]
    sd["head.weight"] = torch.zeros(3)
    sd["10.weight"] = torch.zeros(5, 9, dtype=torch.float64)
    sd["10.bias"] = torch.zeros(5, dtype=torch.int32)
    net = minidl_net()
    before = net.state_dict()
    with pytest.raises(StateDictError) as e:
        interop.load_torch_state_dict(net, sd)
    msg = str(e.value)
    assert msg.startswith("load_torch_state_dict into Sequential: 1 missing, 1 unexpected, "
                          "1 wrong shape, 1 wrong dtype; nothing was loaded")
    assert "'0.weight': missing (the model's param has shape (6, 3, 3, 3)" in msg
    assert "'head.weight': unexpected" in msg
    assert "'10.weight': the model's param has shape (5, 8) but the state's has shape (5, 9)" \
        in msg
    assert "'10.bias': the state's array is int32 (5,) but the model's param needs " \
        "floating-point values (float64)" in msg
    assert (e.value.missing, e.value.unexpected, e.value.wrong_shape, e.value.wrong_dtype) == (
        ["0.weight"], ["head.weight"], ["10.weight"], ["10.bias"])
    for k, v in net.state_dict().items():   # all or nothing
        np.testing.assert_array_equal(v, before[k])


@needs_torch
def test_non_strict_loading_skips_missing_and_unexpected_but_not_shapes():
    sd = torch_net().state_dict()
    del sd["0.weight"]
    sd["extra"] = torch.zeros(1)
    net = minidl_net()
    interop.load_torch_state_dict(net, sd, strict=False)
    np.testing.assert_array_equal(net[10].weight, sd["10.weight"].numpy())
    sd["10.weight"] = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(StateDictError, match="1 wrong shape"):
        interop.load_torch_state_dict(net, sd, strict=False)


@needs_torch
def test_data_parallel_prefix_is_dropped():
    sd = {f"module.{k}": v for k, v in torch_net().state_dict().items()}
    net = minidl_net()
    interop.load_torch_state_dict(net, sd)
    np.testing.assert_array_equal(net[10].bias, sd["module.10.bias"].numpy())
    # ... but not from a model whose own names start with it
    own = nn.Sequential(OrderedDict(module=nn.Linear(2, 3)))
    state = {"module.weight": torch.ones(3, 2), "module.bias": torch.zeros(3)}
    interop.load_torch_state_dict(own, state)
    assert list(interop.to_torch_state_dict(own)) == ["module.weight", "module.bias"]
    assert np.all(own.module.weight == 1)


# ---------------------------------------------------------------------------- .pth files
@needs_torch
@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_load_torch_reads_a_state_dict_and_the_usual_wrappers(tmp_path, wrap):
    sd = torch_net().state_dict()
    obj = sd if wrap is None else {wrap: sd, "epoch": 3, "optimizer": {"lr": 0.1}}
    path = tmp_path / "weights.pth"
    torch.save(obj, path)
    net = interop.load_torch(minidl_net(), path)
    for k, v in sd.items():
        np.testing.assert_array_equal(net.state_dict()[k], v.numpy())


@needs_torch
def test_load_torch_refuses_pickled_objects(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 3), path)   # a whole nn.Module: needs unpickling
    with pytest.raises(StateDictError, match="holds Python objects besides tensors "
                       r"\(torch.nn.modules.linear.Linear\).*weights_only=True"):
        interop.load_torch(minidl_net(), path)


@needs_torch
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_load_torch_names_unreadable_files(tmp_path, damage):
    path = tmp_path / "w.pth"
    torch.save(torch_net().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "garbage": b"not a torch file" * 8,
                      "empty": b""}[damage])
    with pytest.raises(StateDictError, match="cannot read .*w.pth.* as a PyTorch file"):
        interop.load_torch(minidl_net(), path)


@needs_torch
def test_load_torch_errors_for_missing_files_and_non_state_dicts(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        interop.load_torch(minidl_net(), tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(StateDictError, match="holds a list, not a state_dict"):
        interop.load_torch(minidl_net(), path)
    torch.save({"weights": torch.zeros(2), "note": "text"}, path)
    with pytest.raises(StateDictError, match="entries that are not tensors \\('note'\\)"):
        interop.load_torch(minidl_net(), path)


@needs_torch
def test_interop_takes_a_classifier_model_and_refuses_coursework_models():
    from minidl.models import TwoLayerNet

    wrapped = nn.ClassifierModel(minidl_net())
    interop.load_torch_state_dict(wrapped, torch_net().state_dict())
    with pytest.raises(TypeError, match="coursework models"):
        interop.to_torch_state_dict(TwoLayerNet())


# ---------------------------------------------------------------------------- safetensors
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safetensors_round_trip_is_bit_for_bit(tmp_path, dtype):
    net = _train_a_little(minidl_net(dtype), np.random.default_rng(0))
    path = interop.save_safetensors(net, tmp_path / "net.safetensors", {"note": "hi"})
    fresh = minidl_net(dtype, seed=7)
    interop.load_safetensors(fresh, path)
    a, b = net.state_dict(), fresh.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        assert a[k].tobytes() == b[k].tobytes(), k
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["note"] == "hi"
    assert meta["minidl.dtype"] == np.dtype(dtype).name


@needs_torch
def test_safetensors_files_load_in_torch_and_torch_files_load_here(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    net = _train_a_little(minidl_net(), np.random.default_rng(0))
    path = interop.save_safetensors(net, tmp_path / "ours.safetensors")
    tnet = torch_net()
    tnet.load_state_dict(st_torch.load_file(str(path)), strict=True)
    st_torch.save_file(tnet.state_dict(), str(tmp_path / "theirs.safetensors"))
    back = interop.load_safetensors(minidl_net(seed=3), tmp_path / "theirs.safetensors")
    np.testing.assert_array_equal(back[0].weight, net[0].weight)


def test_safetensors_needs_no_torch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from minidl import interop\n"
        "from minidl.models import zoo\n"
        f"m = zoo.resnet20()\n"
        f"p = interop.save_safetensors(m, {str(tmp_path / 'r.safetensors')!r})\n"
        "n = interop.load_safetensors(zoo.resnet20(), p)\n"
        "assert all(np.array_equal(a, b) for a, b in zip(m.state_dict().values(),"
        " n.state_dict().values()))\n"
        "try:\n"
        "    interop.to_torch_state_dict(m)\n"
        "except ImportError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "to_torch_state_dict needs the torch package" in out.stdout


@pytest.mark.parametrize("damage", ["truncated", "header", "empty"])
def test_bad_safetensors_files_get_clear_errors(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    interop.save_safetensors(minidl_net(), path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) - 100], "header": b"\xff" * 8 + data[8:],
                      "empty": b""}[damage])
    with pytest.raises(StateDictError, match="cannot read .*w.safetensors.* as a safetensors"):
        interop.load_safetensors(minidl_net(), path)


def test_safetensors_of_another_model_reports_keys_and_shapes(tmp_path):
    path = interop.save_safetensors(zoo.resnet20(), tmp_path / "r20.safetensors")
    with pytest.raises(StateDictError) as e:
        interop.load_safetensors(zoo.resnet32(), path)
    assert "missing" in str(e.value) and e.value.missing and not e.value.unexpected
    path = interop.save_safetensors(zoo.resnet20(num_classes=7), tmp_path / "r20_7.safetensors")
    with pytest.raises(StateDictError) as e:
        interop.load_safetensors(zoo.resnet20(), path)
    assert e.value.wrong_shape == ["fc.weight", "fc.bias"]
    with pytest.raises(FileNotFoundError):
        interop.load_safetensors(zoo.resnet20(), tmp_path / "none.safetensors")
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        interop.save_safetensors(zoo.resnet20(), tmp_path / "m.safetensors", {"n": 3})


def test_optional_packages_missing_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'minidl\[safetensors\]'"):
        interop.save_safetensors(minidl_net(), "unused.safetensors")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'minidl\[torch\]'"):
        interop.load_torch(minidl_net(), "unused.pth")
