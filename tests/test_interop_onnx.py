"""minidl.interop.to_onnx: every zoo model, exported and run in onnxruntime (CPU), gives
minidl's float32 logits (within 1e-4 of the largest logit); every module type's mapping on
small networks; clear errors for what cannot be exported.

The zoo models of more than 40M parameters (VGG, AlexNet, ZFNet, the deepest and widest
ResNets) take 3-15 s each here, mostly drawing their weights and moving hundreds of MB
through the exporter and onnxruntime: they run when MINIDL_SLOW_TESTS=1, which CI sets
(.ci/run); the default run covers every other zoo model and every module type.
"""
import os
from collections import OrderedDict

import numpy as np
import pytest

from minidl import interop, nn
from minidl.models import zoo
from minidl.nn import ShapeError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
# The smallest inputs these architectures take (speed); the others run at their own size.
SMALL_INPUT = {"alexnet": 64}
RUN_SLOW = os.environ.get("MINIDL_SLOW_TESTS") == "1"
LARGE = 40_000_000


def _zoo_params():
    """Every zoo model; the large ones skipped unless MINIDL_SLOW_TESTS=1."""
    out = []
    for name in zoo.list_models():
        n = zoo.get_model(name).num_params()   # shape inference only: nothing is drawn
        skip = pytest.mark.skipif(
            n > LARGE and not RUN_SLOW,
            reason=f"{n / 1e6:.0f}M parameters: seconds to draw, export and load; "
                   "MINIDL_SLOW_TESTS=1 runs it (CI does)")
        out.append(pytest.param(name, marks=skip))
    return out


def randomise_batch_norm(model, seed=0):
    """Running statistics and affine parameters away from 0/1, so that the export of batch
    norm is tested (and GoogLeNet's tiny initial weights do not leave logits = fc bias)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            c = m.num_features
            m.load_state_dict({"weight": rng.uniform(0.5, 1.5, c), "bias": rng.normal(0, 0.2, c),
                               "running_mean": rng.normal(0, 0.1, c),
                               "running_var": rng.uniform(0.5, 2.0, c)}, strict=False)
    return model


def exported_error(model, shape, tmp_path, batch=2, opset=interop.DEFAULT_OPSET):
    """Export model at shape, run the file in onnxruntime; max |diff| / max |minidl|."""
    path = interop.to_onnx(model, shape, tmp_path / "model.onnx", opset=opset)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((batch,) + tuple(shape)).astype(np.float32)
    got = session.run(["logits"], {"input": x})[0]
    model.eval()
    ref = model(x.astype(model.dtype))
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def _input(name, model):
    c, h, w = model.default_input
    if name in SMALL_INPUT:
        return (c, SMALL_INPUT[name], SMALL_INPUT[name])
    small = (c, 32, 32)
    try:
        model.output_shape(small)
        return small
    except ShapeError:  # zfnet and alexnet_lecture need their full size
        return (c, h, w)


@pytest.mark.parametrize("name", _zoo_params())
def test_every_zoo_model_matches_onnxruntime(name, tmp_path):
    nn.manual_seed(0)
    model = randomise_batch_norm(zoo.get_model(name))
    shape = _input(name, model)
    err = exported_error(model, shape, tmp_path)
    print(f"\n{name} {shape}: onnxruntime float32 {err:.1e}")
    assert err <= TOLERANCE


@pytest.mark.parametrize("name, options", [("resnet18", {}), ("googlenet", {"aux_logits": True}),
                                           ("mobilenet_v2", {})],
                         ids=["resnet18", "googlenet-aux_logits", "mobilenet_v2"])
def test_zoo_models_at_their_real_size(name, options, tmp_path):
    nn.manual_seed(0)
    model = randomise_batch_norm(zoo.get_model(name, **options))
    err = exported_error(model, model.default_input, tmp_path, batch=1)
    print(f"\n{name} {model.default_input}: onnxruntime float32 {err:.1e}")
    assert err <= TOLERANCE


@pytest.mark.parametrize("name, options", [
    ("googlenet", {"batch_norm": False}),   # the paper's: 5x5 convs, padded floor-mode pools
    ("vgg11_cifar", {"batch_norm": False}),  # conv biases straight into ReLU
    ("resnet50", {"stride_in_1x1": True}),   # strided 1x1 convs
], ids=["googlenet-paper", "vgg11_cifar-no-bn", "resnet50-stride_in_1x1"])
def test_zoo_options_that_change_the_graph(name, options, tmp_path):
    nn.manual_seed(0)
    model = randomise_batch_norm(zoo.get_model(name, **options))
    err = exported_error(model, (3, 32, 32), tmp_path)
    print(f"\n{name} {options}: onnxruntime float32 {err:.1e}")
    assert err <= TOLERANCE


def test_a_model_with_sync_batchnorm_exports_as_batch_norm(tmp_path):
    # data-parallel training converts batch norms to SyncBatchNorm; in eval it is batch norm
    nn.manual_seed(0)
    model = randomise_batch_norm(zoo.resnet20(num_classes=10))
    nn.manual_seed(0)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(randomise_batch_norm(
        zoo.resnet20(num_classes=10)))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())
    assert exported_error(sync, (3, 32, 32), tmp_path) <= TOLERANCE
    sync.eval()
    model.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    # the same math; BatchNorm2d + ReLU runs the fused eval kernel, SyncBatchNorm never does
    np.testing.assert_allclose(sync(x), model(x), rtol=1e-5, atol=1e-5)


def test_float64_models_export_as_float32_and_check_onnx_agrees(tmp_path):
    nn.manual_seed(0)
    model = randomise_batch_norm(zoo.resnet20(dtype=np.float64))
    path = interop.to_onnx(model, (3, 32, 32), tmp_path / "r20.onnx")
    proto = onnx.load(str(path))
    assert {t.data_type for t in proto.graph.initializer} >= {onnx.TensorProto.FLOAT}
    assert onnx.TensorProto.DOUBLE not in {t.data_type for t in proto.graph.initializer}
    model.train()
    assert interop.check_onnx(model, path) <= 1e-5
    assert model.training   # modes restored
    model.fc.load_state_dict({"bias": model.fc.bias + 1.0}, strict=False)  # now it differs
    assert interop.check_onnx(model, path) > 1e-2


def test_the_file_has_a_free_batch_size_names_and_checked_opset(tmp_path):
    model = zoo.resnet20()
    path = interop.to_onnx(model, (3, 32, 32), tmp_path / "r20.onnx", opset=interop.MIN_OPSET)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == interop.MIN_OPSET
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, dims) == ("input", ["batch", 3, 32, 32])
    dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert (out.name, dims) == ("logits", ["batch", 10])
    assert "conv1.weight" in {t.name for t in proto.graph.initializer}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = np.zeros((batch, 3, 32, 32), np.float32)
        assert session.run(None, {"input": x})[0].shape == (batch, 10)


# ---------------------------------------------------------------------------- module mappings
def _seq(*mods):
    nn.manual_seed(3)
    return randomise_batch_norm(nn.Sequential(*mods))


@pytest.mark.parametrize("model, shape", [
    # dilation, groups, padding; ceil-mode max pool with padding; average pool with padding
    (lambda: _seq(nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2), nn.BatchNorm2d(8),
                  nn.ReLU(), nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
                  nn.AvgPool2d(3, 2, padding=1), nn.Flatten(), nn.Linear(72, 3)), (4, 10, 9)),
    # adaptive average pooling: equal bins, the identity, uneven and overlapping bins
    (lambda: _seq(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(2), nn.Flatten()), (3, 8, 6)),
    (lambda: _seq(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(5), nn.Flatten()), (3, 5, 5)),
    (lambda: _seq(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d((3, 4)), nn.Flatten()), (3, 7, 2)),
    # option-A shortcut (subsample + channel pad), sigmoid, ReLU6, dropout, batch norm 1d,
    # a linear layer without bias
    (lambda: _seq(nn.Residual(OrderedDict(conv=nn.Conv2d(3, 6, 3, stride=2, padding=1)),
                              nn.Sequential(nn.Subsample(2), nn.ChannelPad(1, 2))),
                  nn.Sigmoid(), nn.ReLU6(), nn.Dropout(0.5), nn.Flatten(),
                  nn.BatchNorm1d(6 * 4 * 3), nn.Linear(72, 4, bias=False)), (3, 7, 5)),
    # not an image model: features in, logits out
    (lambda: _seq(nn.Linear(5, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 3)), (5,)),
    # channel split, shuffle, concat with a passthrough, squeeze-and-excitation
    (lambda: _seq(nn.Conv2d(3, 8, 1),
                  nn.Concat(OrderedDict(a=nn.ChannelSlice(0, 4)),
                            OrderedDict(b=nn.ChannelSlice(4, 8), c=nn.Conv2d(4, 4, 3, padding=1)),
                            post=OrderedDict(shuffle=nn.ChannelShuffle(2))),
                  nn.Concat(nn.Conv2d(8, 2, 1), passthrough=True), nn.SE(10, reduction=2),
                  nn.GlobalAvgPool(), nn.Flatten(), nn.Identity()), (3, 6, 6)),
])
def test_each_module_type_maps_to_onnx(model, shape, tmp_path):
    assert exported_error(model(), shape, tmp_path) <= TOLERANCE


def test_a_module_without_a_mapping_is_named():
    class Square(nn.Module):
        def _forward(self, x):
            return x * x

        def _out_shape(self, shape):
            return shape

    class FancyConv(nn.Conv2d):   # changes the computation: its parent's mapping is not it
        def _forward(self, x):
            return super()._forward(x) * 2

    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), sq=Square()))
    with pytest.raises(interop.OnnxExportError, match=r"'sq' \(Square\) has no ONNX mapping"):
        interop.to_onnx(net, (3, 8, 8), "unused.onnx")
    with pytest.raises(interop.OnnxExportError, match=r"'0' \(FancyConv\) has no ONNX mapping"):
        interop.to_onnx(nn.Sequential(FancyConv(3, 4, 3)), (3, 8, 8), "unused.onnx")


def test_bad_arguments_and_shapes(tmp_path):
    model = zoo.resnet20()
    with pytest.raises(ShapeError):
        interop.to_onnx(model, (1, 32, 32), tmp_path / "x.onnx")   # 1 channel into a 3-ch net
    for opset in (9, 10_000, "17"):
        with pytest.raises(interop.OnnxExportError, match="opset"):
            interop.to_onnx(model, (3, 32, 32), tmp_path / "x.onnx", opset=opset)
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(TypeError, match="coursework models"):
        from minidl.models import ThreeLayerConvNet

        interop.to_onnx(ThreeLayerConvNet(), (3, 32, 32), tmp_path / "x.onnx")


def test_missing_onnx_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'minidl\[onnx\]'"):
        interop.to_onnx(zoo.resnet20(), (3, 32, 32), "unused.onnx")
