"""MobileNet v1 (Howard et al. 2017, Table 1) and v2 (Sandler et al. 2018, torchvision).

v1: a 3x3/2 conv, then 13 depthwise-separable blocks (3x3 depthwise conv-bn-relu, 1x1
pointwise conv-bn-relu; convs without bias), global average pooling and one fc:
4,231,976 parameters. Table 1 lists the depthwise conv before the last block as stride 2;
the 7x7 -> 7x7 sizes in the same table show it is stride 1, which is what is built here.

v2: torchvision's layout (features.N.conv..., classifier.1): inverted residual blocks
(1x1 expand-bn-relu6, 3x3 depthwise-bn-relu6, 1x1 project-bn; identity shortcut when the
stride is 1 and the channels match): 3,504,872 parameters.

CIFAR variants (small_inputs=True): the first conv has stride 1 (and v2's second stage too),
as in the common CIFAR ports; width_mult narrows every layer.

Initialisation (torchvision's MobileNet v2; v1, which torchvision lacks, the same): conv
weights kaiming_normal (fan_out), batch norm 1 and 0, linear weights N(0, 0.01^2), linear
biases 0.
"""
from ...nn import (BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, ReLU6, Residual,
                   Sequential, init)
from ._common import conv_bn_act, init_modules, named
from ._registry import register

V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
    (1024, 2), (1024, 1)]

# t (expansion), c (channels), n (repeats), s (stride of the first)
V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's channel rounding: to a multiple of divisor, never below 90% of v."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def init_mobilenet(model):
    """torchvision's MobileNet v2 initialisation (see the module docstring)."""
    return init_modules(model, conv=init.kaiming_normal("fan_out"), conv_bias=init.zeros,
                        linear=init.normal(0.01), linear_bias=init.zeros)


def depthwise_separable(cin, cout, stride):
    return Sequential(named(dw=conv_bn_act(cin, cin, 3, stride, groups=cin),
                            pw=conv_bn_act(cin, cout, 1)))


class MobileNetV1(Sequential):
    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, small_inputs=False):
        c = max(1, int(32 * width_mult))
        layers = [conv_bn_act(in_channels, c, 3, stride=1 if small_inputs else 2)]
        for out, stride in V1_BLOCKS:
            out = max(1, int(out * width_mult))
            layers.append(depthwise_separable(c, out, stride))
            c = out
        super().__init__(named(features=Sequential(*layers), avgpool=GlobalAvgPool(),
                               flatten=Flatten(), fc=Linear(c, num_classes)))
        init_mobilenet(self)


def inverted_residual(inp, oup, stride, expand_ratio):
    """MobileNet v2 block: a Residual when stride 1 and inp == oup, else a plain Sequential;
    the layers sit in a child named 'conv' as in torchvision."""
    hidden = int(round(inp * expand_ratio))
    layers = []
    if expand_ratio != 1:
        layers.append(conv_bn_act(inp, hidden, 1, act=ReLU6))
    layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=ReLU6),
               Conv2d(hidden, oup, 1, bias=False), BatchNorm2d(oup)]
    conv = Sequential(*layers)
    if stride == 1 and inp == oup:
        return Residual(named(conv=conv))
    return Sequential(named(conv=conv))


class MobileNetV2(Sequential):
    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, dropout=0.2,
                 small_inputs=False):
        c = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers = [conv_bn_act(in_channels, c, 3, stride=1 if small_inputs else 2, act=ReLU6)]
        for i, (t, ch, n, s) in enumerate(V2_SETTINGS):
            out = make_divisible(ch * width_mult)
            if small_inputs and i == 1:
                s = 1
            for j in range(n):
                layers.append(inverted_residual(c, out, s if j == 0 else 1, t))
                c = out
        layers.append(conv_bn_act(c, last, 1, act=ReLU6))
        super().__init__(named(features=Sequential(*layers), avgpool=GlobalAvgPool(),
                               flatten=Flatten(),
                               classifier=Sequential(Dropout(dropout), Linear(last, num_classes))))
        init_mobilenet(self)


@register
def mobilenet_v1(num_classes=1000, in_channels=3, width_mult=1.0):
    """MobileNet v1 (Table 1, width 1.0): 4,231,976 parameters."""
    return MobileNetV1(num_classes, in_channels, width_mult)


@register
def mobilenet_v2(num_classes=1000, in_channels=3, width_mult=1.0, dropout=0.2):
    """MobileNet v2 as torchvision: 3,504,872 parameters."""
    return MobileNetV2(num_classes, in_channels, width_mult, dropout)


@register(input_size=32)
def mobilenet_v1_cifar(num_classes=10, in_channels=3, width_mult=1.0):
    """MobileNet v1 for 32x32 inputs (stride-1 first conv; 32 -> 2 before pooling)."""
    return MobileNetV1(num_classes, in_channels, width_mult, small_inputs=True)


@register(input_size=32)
def mobilenet_v2_cifar(num_classes=10, in_channels=3, width_mult=1.0, dropout=0.2):
    """MobileNet v2 for 32x32 inputs (stride 1 in the first conv and the second stage)."""
    return MobileNetV2(num_classes, in_channels, width_mult, dropout, small_inputs=True)
