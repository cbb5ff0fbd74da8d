"""Initialisation: Conv2d and Linear start as PyTorch's do, the initialisers draw what they
say, set_init swaps an initialiser lazily, and each zoo builder applies the rule of its
torchvision builder (tests/test_interop_torchvision.py compares every parameter's
statistics with torchvision's own where torchvision is installed)."""
import numpy as np
import pytest

from minidl import nn
from minidl.models import zoo
from minidl.models.zoo.resnet import BasicBlock, Bottleneck, PreActBlock, ResNet
from minidl.nn import init


def _uniform_bound_ok(a, bound):
    """Every value inside [-bound, bound] and the extremes near it (a large sample)."""
    a = np.asarray(a, dtype=np.float64)
    assert np.abs(a).max() <= bound * (1 + 1e-6)
    assert np.abs(a).max() >= 0.95 * bound
    assert abs(a.std() / (bound / np.sqrt(3)) - 1) < 0.05


def _std_ok(a, std, tol=0.05):
    a = np.asarray(a, dtype=np.float64)
    assert abs(a.std() / std - 1) < tol, (a.std(), std)
    assert abs(a.mean()) < 0.05 * std + 1e-12


# ---------------------------------------------------------------------------- modules
@pytest.mark.parametrize("groups", [1, 4])
def test_conv2d_default_is_pytorchs_kaiming_uniform_and_fan_in_bias(groups):
    nn.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3, groups=groups)
    fan_in = 64 // groups * 9
    _uniform_bound_ok(conv.weight, 1 / np.sqrt(fan_in))   # kaiming_uniform(a=sqrt(5))
    bias = np.asarray(conv.bias)
    assert np.abs(bias).max() <= 1 / np.sqrt(fan_in) and bias.std() > 0


def test_linear_default_is_pytorchs():
    nn.manual_seed(0)
    fc = nn.Linear(400, 300)
    _uniform_bound_ok(fc.weight, 1 / np.sqrt(400))
    assert np.abs(fc.bias).max() <= 1 / np.sqrt(400)


def test_batch_norm_starts_at_one_and_zero_with_a_zero_counter():
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight == 1) and np.all(bn.bias == 0)
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64


# ---------------------------------------------------------------------------- initialisers
def test_kaiming_uniform_gain_and_modes():
    rng = np.random.default_rng(0)
    shape = (256, 128, 3, 3)
    _uniform_bound_ok(init.kaiming_uniform(a=1.0)(rng, shape, np.float64), np.sqrt(3 / 1152))
    _uniform_bound_ok(init.kaiming_uniform(a=0.0, mode="fan_out")(rng, shape, np.float64),
                      np.sqrt(2) * np.sqrt(3 / (256 * 9)))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform(mode="fan_avg")


def test_normal_and_truncated_normal():
    rng = np.random.default_rng(0)
    _std_ok(init.normal(0.01)(rng, (200, 300), np.float32), 0.01)
    w = init.trunc_normal(1.0, a=-0.5, b=0.5)(rng, (100, 100), np.float64)
    assert w.min() >= -0.5 and w.max() <= 0.5 and w.std() > 0.25  # redrawn, not clipped
    assert len(np.unique(w)) == w.size
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal(1.0, a=1.0, b=-1.0)


def test_set_init_redraws_lazily_with_the_parameters_own_seed():
    nn.manual_seed(5)
    conv = nn.Conv2d(3, 8, 3)
    before = conv.weight.copy()
    conv.set_init("weight", init.constant(0.5))
    assert np.all(conv.weight == 0.5)
    conv.set_init("weight", init.kaiming_uniform())
    np.testing.assert_array_equal(conv.weight, before)   # the same seed, the same values
    with pytest.raises(KeyError, match="no parameter named 'gamma'"):
        conv.set_init("gamma", init.zeros)


def test_set_init_on_a_flattened_model_draws_into_the_flat_buffer():
    nn.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 1))
    flat = net.flat_parameters()
    net[0].set_init("weight", init.constant(0.5))
    assert net.flat_parameters() is flat  # the optimizer's buffer is still the storage
    np.testing.assert_array_equal(flat.param("0.weight"), 0.5)
    assert net[0].weight is flat.param("0.weight")


# ---------------------------------------------------------------------------- builders
def _fans(a):
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def test_resnet_convs_are_kaiming_normal_fan_out_and_fc_is_pytorchs():
    nn.manual_seed(0)
    model = zoo.resnet18()
    w = model.layer4[1].conv2.weight            # 512 x 512 x 3 x 3
    _std_ok(w, np.sqrt(2 / _fans(w)[1]))
    _uniform_bound_ok(model.fc.weight, 1 / np.sqrt(512))
    assert np.all(model.layer1[0].bn2.weight == 1)
    cifar = zoo.resnet56()
    _std_ok(cifar.layer3[0].conv1.weight, np.sqrt(2 / (64 * 9)), tol=0.1)


def test_zero_init_residual_zeroes_the_last_batch_norm_of_every_branch():
    basic = zoo.resnet18(zero_init_residual=True)
    blocks = [m for m in basic.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8 and all(np.all(b.bn2.weight == 0) for b in blocks)
    assert all(np.all(b.bn1.weight == 1) for b in blocks)
    bottleneck = zoo.resnet50(zero_init_residual=True)
    blocks = [m for m in bottleneck.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 and all(np.all(b.bn3.weight == 0) for b in blocks)
    with pytest.raises(ValueError, match="PreActBlock"):
        ResNet(PreActBlock, [1, 1, 1, 1], zero_init_residual=True)


def test_vgg_convs_fan_out_zero_biases_and_linear_std_001():
    nn.manual_seed(0)
    for model in (zoo.vgg11(), zoo.vgg11_cifar()):
        conv = model.features[3] if isinstance(model.features[3], nn.Conv2d) else \
            model.features[4]
        _std_ok(conv.weight, np.sqrt(2 / _fans(conv.weight)[1]), tol=0.1)
        assert np.all(conv.bias == 0)
    fc = zoo.vgg11().classifier[6]
    _std_ok(fc.weight, 0.01)
    assert np.all(fc.bias == 0)


def test_googlenet_torchvision_and_caffe_rules():
    nn.manual_seed(0)
    model = zoo.googlenet()
    w = model.inception4a.branch2[1].conv.weight
    _std_ok(w, 0.01)
    _std_ok(model.fc.weight, 0.01)
    assert np.abs(model.fc.bias).max() <= 1 / np.sqrt(1024)      # PyTorch's default bias
    assert np.abs(model.fc.bias).std() > 0
    paper = zoo.googlenet(batch_norm=False, aux_logits=True)
    conv = paper.inception4a.branch2[1].conv
    _uniform_bound_ok(conv.weight, np.sqrt(3 / _fans(conv.weight)[0]))   # Caffe's xavier
    assert np.all(conv.bias == 0.2) and np.all(paper.aux1.fc1.bias == 0.2)
    assert np.all(paper.fc.bias == 0) and np.all(paper.aux2.fc2.bias == 0)


def test_densenet_mobilenet_and_default_builders():
    nn.manual_seed(0)
    dense = zoo.densenet121()
    w = dense.features.denseblock3.denselayer5.conv2.weight
    _std_ok(w, np.sqrt(2 / _fans(w)[0]), tol=0.1)                   # fan_in
    assert np.all(dense.classifier.bias == 0)
    for model in (zoo.mobilenet_v2(), zoo.mobilenet_v1()):
        fc = model.classifier[1] if hasattr(model, "classifier") else model.fc
        _std_ok(fc.weight, 0.01)
        assert np.all(fc.bias == 0)
    w = zoo.mobilenet_v2().features[17].conv[0][0].weight
    _std_ok(w, np.sqrt(2 / _fans(w)[1]), tol=0.1)                   # fan_out
    # torchvision's AlexNet and ShuffleNet v2 keep PyTorch's module defaults
    conv = zoo.alexnet().features[3]
    _uniform_bound_ok(conv.weight, 1 / np.sqrt(_fans(conv.weight)[0]))
    conv = zoo.shufflenet_v2_x1_0().conv5[0]
    _uniform_bound_ok(conv.weight, 1 / np.sqrt(_fans(conv.weight)[0]))
