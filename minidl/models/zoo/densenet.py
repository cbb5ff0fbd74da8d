"""DenseNet-121 (Huang et al. 2017), torchvision's layout and parameter names.

Each dense layer is a Concat with a passthrough: out = concat(x, conv3x3(relu(bn(conv1x1(
relu(bn(x))))))), so a block's output holds every earlier layer's features; transitions
halve the channels (1x1 conv) and the resolution (2x2/2 average pool). 7,978,856 parameters.

Initialisation (torchvision's DenseNet): conv weights kaiming_normal (fan_in), batch norm 1
and 0, the classifier's weight PyTorch's default and its bias 0.
"""
from ...nn import (AvgPool2d, BatchNorm2d, Concat, Conv2d, Flatten, GlobalAvgPool, Linear,
                   MaxPool2d, ReLU, Sequential, init)
from ._common import init_modules, named
from ._registry import register


def dense_layer(cin, growth_rate, bn_size):
    """bn-relu-conv1x1 (bn_size * growth) - bn-relu-conv3x3 (growth), concatenated to x."""
    mid = bn_size * growth_rate
    return Concat(named(norm1=BatchNorm2d(cin), relu1=ReLU(), conv1=Conv2d(cin, mid, 1, bias=False),
                        norm2=BatchNorm2d(mid), relu2=ReLU(),
                        conv2=Conv2d(mid, growth_rate, 3, padding=1, bias=False)),
                  passthrough=True)


def transition(cin, cout):
    return Sequential(named(norm=BatchNorm2d(cin), relu=ReLU(),
                            conv=Conv2d(cin, cout, 1, bias=False), pool=AvgPool2d(2, 2)))


class DenseNet(Sequential):
    """features (stem, dense blocks, transitions, norm5), relu, pool, classifier."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                 bn_size=4, num_classes=1000, in_channels=3):
        f = named(conv0=Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False),
                  norm0=BatchNorm2d(num_init_features), relu0=ReLU(),
                  pool0=MaxPool2d(3, 2, padding=1))
        c = num_init_features
        for i, n in enumerate(block_config):
            f[f"denseblock{i + 1}"] = Sequential(named(**{
                f"denselayer{j + 1}": dense_layer(c + j * growth_rate, growth_rate, bn_size)
                for j in range(n)}))
            c += n * growth_rate
            if i != len(block_config) - 1:
                f[f"transition{i + 1}"] = transition(c, c // 2)
                c //= 2
        f["norm5"] = BatchNorm2d(c)
        super().__init__(named(features=Sequential(f), relu=ReLU(), avgpool=GlobalAvgPool(),
                               flatten=Flatten(), classifier=Linear(c, num_classes)))
        init_modules(self, conv=init.kaiming_normal("fan_in"), linear_bias=init.zeros)


@register
def densenet121(num_classes=1000, in_channels=3, growth_rate=32, bn_size=4):
    """DenseNet-121 (blocks of 6, 12, 24, 16 layers, growth 32): 7,978,856 parameters."""
    return DenseNet(growth_rate, (6, 12, 24, 16), 64, bn_size, num_classes, in_channels)
