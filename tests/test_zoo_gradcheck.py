"""Gradient checks of every architecture family, built from the zoo's own blocks and
classes at tiny width and resolution, in float64, in training mode (batch statistics).

For the input and every parameter array, the directional derivative of
sum(dout * model(x)) along a random direction is compared with the analytic gradient
(minidl.nn.check_gradients), plus one single element per array.

Parameters are moved off their initial values first: zero biases and batch-norm shifts put
ReLU inputs of dead channels exactly at 0, the kink where no derivative exists.
"""
from collections import OrderedDict

import numpy as np
import pytest

from minidl import nn
from minidl.models import zoo
from minidl.models.zoo.googlenet import Inception
from minidl.models.zoo._common import conv_bn_act
from minidl.models.zoo.mobilenet import depthwise_separable, inverted_residual
from minidl.models.zoo.resnet import BasicBlock, Bottleneck, PreActBlock, ResNet
from minidl.models.zoo.shufflenet import shuffle_unit


def head(channels, classes=3):
    return [nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(channels, classes)]


FAMILIES = OrderedDict([
    # name: (builder, input shape (N, C, H, W))
    ("plain (VGG)", (lambda: zoo.vgg11_cifar(num_classes=3, in_channels=1, width_mult=1 / 32),
                     (2, 1, 32, 32))),
    ("inception (GoogLeNet, aux heads)", (lambda: zoo.googlenet(
        num_classes=3, in_channels=1, aux_logits=True, width_mult=1 / 16), (3, 1, 16, 16))),
    ("inception (paper's 5x5 branch)", (lambda: nn.Sequential(
        Inception(3, 2, 2, 3, 1, 2, 2, batch_norm=False), *head(9)), (2, 3, 6, 6))),
    ("residual basic (projection)", (lambda: ResNet(
        BasicBlock, [1, 1, 1], 3, 1, widths=(2, 3, 4)), (2, 1, 24, 24))),
    ("residual basic (CIFAR, option A)", (lambda: zoo.resnet_cifar(
        num_classes=3, in_channels=1, depth=8, width=2), (2, 1, 8, 8))),
    ("residual bottleneck", (lambda: ResNet(
        Bottleneck, [2, 1], 3, 1, widths=(2, 3), stem="cifar"), (2, 1, 6, 6))),
    ("pre-activation", (lambda: ResNet(PreActBlock, [2, 1], 3, 1, widths=(2, 3)),
                        (2, 1, 16, 16))),
    ("grouped (ResNeXt, stride in 1x1)", (lambda: ResNet(
        Bottleneck, [1, 1], 3, 1, groups=2, width_per_group=8, widths=(16, 16), stem="cifar",
        stride_in_1x1=True), (2, 1, 6, 6))),
    ("squeeze-and-excitation", (lambda: ResNet(
        Bottleneck, [1, 1], 3, 1, widths=(4, 4), stem="cifar", se_reduction=4), (2, 1, 6, 6))),
    ("dense (DenseNet)", (lambda: zoo.DenseNet(growth_rate=2, block_config=(2, 2),
                                                num_init_features=4, bn_size=2, num_classes=3,
                                                in_channels=1), (2, 1, 16, 16))),
    ("depthwise-separable (MobileNet v1)", (lambda: nn.Sequential(
        conv_bn_act(1, 4, 3, stride=2), depthwise_separable(4, 8, 1),
        depthwise_separable(8, 8, 2), *head(8)), (2, 1, 12, 12))),
    ("inverted residual (MobileNet v2)", (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), inverted_residual(4, 4, 1, 1),
        inverted_residual(4, 4, 1, 2), inverted_residual(4, 6, 2, 3), *head(6)), (2, 1, 6, 6))),
    ("channel shuffle (ShuffleNet v2)", (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), shuffle_unit(4, 8, 2), shuffle_unit(8, 8, 1),
        shuffle_unit(8, 8, 1), *head(8)), (2, 1, 6, 6))),
])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_gradients_match_numeric_in_float64(family):
    build, shape = FAMILIES[family]
    nn.manual_seed(0)
    model = build().astype(np.float64)
    rng = np.random.default_rng(1)
    params = model.params
    for name in params:
        params[name] = params[name] + 0.2 * rng.standard_normal(params[name].shape)
    x = rng.standard_normal(shape)
    names = ["input"] + list(model.param_shapes())
    if family.startswith("inception (GoogLeNet"):
        # 187 arrays and 13 max pools per forward: every array together along random
        # directions, and one by one where the auxiliary heads join the main path
        names = [n for n in names if n == "input" or n.startswith(("aux", "inception4a.",
                                                                    "inception4d.", "fc."))]
    report = nn.check_gradients(model, x, directions=1, elements=1, joint=2, wrt=names)
    assert [r.name for r in report] == names + ["all parameters"]
    report.assert_passed()


def test_googlenet_aux_heads_return_three_outputs_in_training_only():
    model = zoo.googlenet(num_classes=3, in_channels=1, aux_logits=True, width_mult=1 / 16)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    logits, aux2, aux1 = model(x)
    assert logits.shape == aux2.shape == aux1.shape == (2, 3)
    with pytest.raises(ValueError, match="one gradient for each"):
        model.backward(np.ones_like(logits))
    assert model.eval()(x).shape == (2, 3)


def test_resnet_family_blocks_are_residual_containers_with_expected_shortcuts():
    net = ResNet(PreActBlock, [2, 1], 3, 1, widths=(2, 3))
    first, second, projection = net.layer1[0], net.layer1[1], net.layer2[0]
    assert first._pre == [] and "bn1" not in first._children       # takes the stem's activation
    assert second._paths[0][:2] == ["bn1", "relu1"] and second._paths[1] == []
    assert projection._pre == ["bn1", "relu1"] and projection._paths[1] == ["downsample"]
    cifar = zoo.resnet20()
    shortcut = cifar.layer2[0].downsample
    assert cifar.layer2[0].downsample.num_params() == 0
    assert shortcut.output_shape((16, 32, 32)) == (32, 16, 16)
