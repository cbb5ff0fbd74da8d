"""VGG (Simonyan & Zisserman) from configuration lists, as torchvision builds it.

Every conv is 3x3 stride 1 pad 1 (+ BatchNorm with batch_norm=True) + ReLU; 'M' is a 2x2/2
max pool; then AdaptiveAvgPool2d(7), and the classifier 25088 -> 4096 -> 4096 -> classes with
dropout. Parameter counts equal torchvision's (vgg16: 138,357,544; vgg16_bn: 138,365,992).

CIFAR variants (32x32 inputs, five pools leave 1x1): batch norm, a single linear classifier
512 -> classes, and width_mult to train narrow versions here.

Initialisation (torchvision's VGG, both variants): conv weights kaiming_normal (fan_out),
conv biases 0; linear weights N(0, 0.01^2), linear biases 0; batch norm 1 and 0.
"""
from ...nn import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d,
                   ReLU, Sequential, init)
from ._common import init_modules, named
from ._registry import register

CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def make_features(cfg, in_channels, batch_norm, width_mult=1.0):
    """The conv/pool stack of one configuration (torchvision's numbering: features.0, ...)."""
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(MaxPool2d(2, 2))
            continue
        out = max(1, int(v * width_mult))
        layers.append(Conv2d(c, out, 3, padding=1))
        if batch_norm:
            layers.append(BatchNorm2d(out))
        layers.append(ReLU())
        c = out
    return Sequential(*layers), c


class VGG(Sequential):
    """VGG-depth: features, avgpool, flatten, classifier (torchvision's names)."""

    def __init__(self, depth=16, num_classes=1000, in_channels=3, batch_norm=False,
                 dropout=0.5):
        if depth not in CFGS:
            raise ValueError(f"VGG: depth must be one of {sorted(CFGS)}, got {depth!r}")
        features, c = make_features(CFGS[depth], in_channels, batch_norm)
        classifier = Sequential(Linear(c * 7 * 7, 4096), ReLU(), Dropout(dropout),
                                Linear(4096, 4096), ReLU(), Dropout(dropout),
                                Linear(4096, num_classes))
        super().__init__(named(features=features, avgpool=AdaptiveAvgPool2d(7),
                               flatten=Flatten(), classifier=classifier))
        _init_vgg(self)


def _init_vgg(model):
    init_modules(model, conv=init.kaiming_normal("fan_out"), conv_bias=init.zeros,
                 linear=init.normal(0.01), linear_bias=init.zeros)


class CifarVGG(Sequential):
    """VGG for 32x32 inputs: features (with batch norm), flatten, one linear classifier."""

    def __init__(self, depth=11, num_classes=10, in_channels=3, batch_norm=True, width_mult=1.0):
        if depth not in CFGS:
            raise ValueError(f"CifarVGG: depth must be one of {sorted(CFGS)}, got {depth!r}")
        features, c = make_features(CFGS[depth], in_channels, batch_norm, width_mult)
        super().__init__(named(features=features, flatten=Flatten(),
                               classifier=Linear(c, num_classes)))
        _init_vgg(self)


@register
def vgg11(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-11 (configuration A): 132,863,336 parameters (132,868,840 with batch_norm)."""
    return VGG(11, num_classes, in_channels, batch_norm, dropout)


@register
def vgg13(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-13 (configuration B): 133,047,848 parameters (133,053,736 with batch_norm)."""
    return VGG(13, num_classes, in_channels, batch_norm, dropout)


@register
def vgg16(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-16 (configuration D): 138,357,544 parameters (138,365,992 with batch_norm)."""
    return VGG(16, num_classes, in_channels, batch_norm, dropout)


@register
def vgg19(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-19 (configuration E): 143,667,240 parameters (143,678,248 with batch_norm)."""
    return VGG(19, num_classes, in_channels, batch_norm, dropout)


@register(input_size=32)
def vgg11_cifar(num_classes=10, in_channels=3, batch_norm=True, width_mult=1.0):
    """VGG-11 for 32x32 inputs (batch norm, 512 -> classes); width_mult scales every conv."""
    return CifarVGG(11, num_classes, in_channels, batch_norm, width_mult)


@register(input_size=32)
def vgg16_cifar(num_classes=10, in_channels=3, batch_norm=True, width_mult=1.0):
    """VGG-16 for 32x32 inputs (batch norm, 512 -> classes); width_mult scales every conv."""
    return CifarVGG(16, num_classes, in_channels, batch_norm, width_mult)
