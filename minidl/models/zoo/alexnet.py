"""AlexNet (torchvision's layout and the lecture's 227x227 table) and ZFNet.

alexnet            torchvision: 64-192-384-256-256 filters, AdaptiveAvgPool2d(6), dropout before
                   fc6 and fc7; 61,100,840 parameters.
alexnet_lecture    the lecture's table: 227x227 input, conv1 64 11x11/4 pad 2 -> 56, pools
                   3x3/2, flatten 9216, fc6 4096, fc7 4096, fc8; layers named conv1 ... fc8
                   as in the table; dropout after relu6 and relu7 (the paper's first two FC).
zfnet              Zeiler & Fergus (2014) Fig. 3: 224x224, conv1 96 7x7/2 -> 110, 3x3/2 max
                   pools in Caffe's ceil mode (110 -> 55, 26 -> 13, 13 -> 6), conv2 256 5x5/2,
                   conv3-5 384-384-256; large=True gives the lecture's 512-1024-512 variant.
                   The contrast normalisation after pool1/pool2 is left out (no parameters).
"""
from ...nn import (AdaptiveAvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU,
                   Sequential)
from ._common import named
from ._registry import register


class AlexNet(Sequential):
    """torchvision's AlexNet: features, avgpool (6x6), classifier."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5):
        features = Sequential(
            Conv2d(in_channels, 64, 11, stride=4, padding=2), ReLU(), MaxPool2d(3, 2),
            Conv2d(64, 192, 5, padding=2), ReLU(), MaxPool2d(3, 2),
            Conv2d(192, 384, 3, padding=1), ReLU(),
            Conv2d(384, 256, 3, padding=1), ReLU(),
            Conv2d(256, 256, 3, padding=1), ReLU(), MaxPool2d(3, 2))
        classifier = Sequential(
            Dropout(dropout), Linear(256 * 6 * 6, 4096), ReLU(),
            Dropout(dropout), Linear(4096, 4096), ReLU(),
            Linear(4096, num_classes))
        super().__init__(named(features=features, avgpool=AdaptiveAvgPool2d(6),
                               flatten=Flatten(), classifier=classifier))


class PlainNet(Sequential):
    """A named conv/pool/fc stack (the lecture's AlexNet table, ZFNet)."""


def _plain(convs, pools, in_channels):
    """convs: (name, out, kernel, stride, pad) each followed by a ReLU; pools: {conv name:
    (pool name, pool)} placed after that conv's ReLU. Returns (ordered layers, channels)."""
    layers, c = named(), in_channels
    for name, out, k, s, p in convs:
        i = name[len("conv"):]
        layers[name] = Conv2d(c, out, k, stride=s, padding=p)
        layers[f"relu{i}"] = ReLU()
        if name in pools:
            pool_name, pool = pools[name]
            layers[pool_name] = pool
        c = out
    return layers, c


@register
def alexnet(num_classes=1000, in_channels=3, dropout=0.5):
    """AlexNet as in torchvision (Krizhevsky's one-GPU variant): 61,100,840 parameters."""
    return AlexNet(num_classes, in_channels, dropout)


@register(input_size=227)
def alexnet_lecture(num_classes=1000, in_channels=3, dropout=0.5):
    """AlexNet as in the lecture's table (227x227 input), layers named conv1 ... fc8."""
    convs = [("conv1", 64, 11, 4, 2), ("conv2", 192, 5, 1, 2), ("conv3", 384, 3, 1, 1),
             ("conv4", 256, 3, 1, 1), ("conv5", 256, 3, 1, 1)]
    pools = {"conv1": ("pool1", MaxPool2d(3, 2)), "conv2": ("pool2", MaxPool2d(3, 2)),
             "conv5": ("pool5", MaxPool2d(3, 2))}
    layers, c = _plain(convs, pools, in_channels)
    return PlainNet(_fc_head(layers, c * 6 * 6, num_classes, dropout))


def _fc_head(layers, features, num_classes, dropout):
    """flatten, fc6 4096, relu6, drop6, fc7 4096, relu7, drop7, fc8 (the Caffe layout)."""
    layers["flatten"] = Flatten()
    for name, cin, cout in (("6", features, 4096), ("7", 4096, 4096)):
        layers["fc" + name], layers["relu" + name] = Linear(cin, cout), ReLU()
        layers["drop" + name] = Dropout(dropout)
    layers["fc8"] = Linear(4096, num_classes)
    return layers


@register
def zfnet(num_classes=1000, in_channels=3, large=False, dropout=0.5):
    """ZFNet (Zeiler & Fergus Fig. 3, 224x224 input); large=True: conv3-5 of 512, 1024, 512
    filters (the lecture's variant)."""
    c3, c4, c5 = (512, 1024, 512) if large else (384, 384, 256)
    convs = [("conv1", 96, 7, 2, 1), ("conv2", 256, 5, 2, 0), ("conv3", c3, 3, 1, 1),
             ("conv4", c4, 3, 1, 1), ("conv5", c5, 3, 1, 1)]
    pools = {"conv1": ("pool1", MaxPool2d(3, 2, ceil_mode=True)),
             "conv2": ("pool2", MaxPool2d(3, 2, ceil_mode=True)),
             "conv5": ("pool5", MaxPool2d(3, 2, ceil_mode=True))}
    layers, c = _plain(convs, pools, in_channels)
    return PlainNet(_fc_head(layers, c * 6 * 6, num_classes, dropout))
