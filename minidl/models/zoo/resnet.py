"""Residual networks, written the way torchvision's resnet.py is: blocks with an
``expansion``, one ResNet class with _make_layer, and short builders. ResNeXt, Wide ResNet,
SE-ResNet, pre-activation ResNet and the CIFAR ResNets are parameters of ResNet.

Blocks are Residual containers, so parameter names are torchvision's
('layer1.0.conv1.weight', 'layer2.0.downsample.0.weight').

    BasicBlock     conv3x3-bn-relu-conv3x3-bn (+ SE) + shortcut, relu
    Bottleneck     conv1x1-bn-relu-conv3x3(groups)-bn-relu-conv1x1-bn (+ SE) + shortcut, relu;
                   width = planes * base_width / 64 * groups; the stride sits in the 3x3
                   (torchvision's v1.5) or, with stride_in_1x1=True, in the first 1x1 (the
                   original paper)
    PreActBlock    bn-relu-conv3x3-bn-relu-conv3x3 + shortcut ("Identity Mappings", He et al.
                   2016): when the shortcut is a projection the first bn-relu is shared by
                   both paths; the first block of the network takes the stem's activation
                   and has none of its own; the network ends with bn-relu before pooling

Shortcuts when the shape changes: 'B' (default) 1x1 conv (+ bn; no bn in pre-activation
nets); 'A' the CIFAR paper's parameter-free option: subsample by the stride and zero-pad the
new channels.

Initialisation (torchvision's ResNet, for every variant here): conv weights kaiming_normal
(fan_out), batch norm 1 and 0, the fc layer PyTorch's default (SE's 1x1 convs keep their
default biases); zero_init_residual=True zeroes the weight of the last batch norm of each
residual branch (bn3 of a bottleneck, bn2 of a basic block), so every block starts as the
identity (Goyal et al. 2017).
"""
from ...nn import (SE, BatchNorm2d, ChannelPad, Conv2d, Flatten, GlobalAvgPool, Linear,
                   MaxPool2d, ReLU, Residual, Sequential, Subsample, init)
from ._common import init_modules, named
from ._registry import register


def conv3x3(cin, cout, stride=1, groups=1):
    return Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin, cout, stride=1):
    return Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(Residual):
    expansion = 1
    preact = False

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 stride_in_1x1=False, se_reduction=None):
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        body = named(conv1=conv3x3(inplanes, planes, stride), bn1=BatchNorm2d(planes),
                     relu1=ReLU(), conv2=conv3x3(planes, planes), bn2=BatchNorm2d(planes))
        if se_reduction:
            body["se"] = SE(planes, se_reduction)
        super().__init__(body, downsample, post=named(relu=ReLU()))


class Bottleneck(Residual):
    expansion = 4
    preact = False

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 stride_in_1x1=False, se_reduction=None):
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        out = planes * self.expansion
        body = named(conv1=conv1x1(inplanes, width, s1), bn1=BatchNorm2d(width), relu1=ReLU(),
                     conv2=conv3x3(width, width, s3, groups), bn2=BatchNorm2d(width),
                     relu2=ReLU(), conv3=conv1x1(width, out), bn3=BatchNorm2d(out))
        if se_reduction:
            body["se"] = SE(out, se_reduction)
        super().__init__(body, downsample, post=named(relu=ReLU()))


class PreActBlock(Residual):
    expansion = 1
    preact = True

    def __init__(self, inplanes, planes, stride=1, downsample=None, first=False, **unused):
        preact = named(bn1=BatchNorm2d(inplanes), relu1=ReLU())
        body = named(conv1=conv3x3(inplanes, planes, stride), bn2=BatchNorm2d(planes),
                     relu2=ReLU(), conv2=conv3x3(planes, planes))
        if first:       # the stem's bn-relu is this block's pre-activation
            super().__init__(body, downsample)
        elif downsample is not None:   # projection: both paths see the activated input
            super().__init__(body, downsample, pre=preact)
        else:
            super().__init__(named(**preact, **body), None)


class ResNet(Sequential):
    """ResNet(block, layers): stem, len(layers) stages, global average pool, fc.

    widths: channels of each stage (64, 128, 256, 512 for ImageNet; 16, 32, 64 for the CIFAR
    nets); stem 'imagenet' (7x7/2 conv, bn, relu, 3x3/2 max pool) or 'cifar' (3x3 conv, bn,
    relu); shortcut 'B' or 'A'; groups and width_per_group (ResNeXt, Wide ResNet);
    stride_in_1x1 (original paper's bottleneck); se_reduction (SE-ResNet);
    zero_init_residual (see the module docstring).
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, groups=1,
                 width_per_group=64, stride_in_1x1=False, widths=(64, 128, 256, 512),
                 stem="imagenet", shortcut="B", se_reduction=None, zero_init_residual=False):
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"ResNet: stem must be 'imagenet' or 'cifar', got {stem!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"ResNet: shortcut must be 'A' or 'B', got {shortcut!r}")
        if len(widths) != len(layers):
            raise ValueError(f"ResNet: {len(layers)} stages need {len(layers)} widths, got "
                             f"{widths}")
        self.block, self.groups, self.base_width = block, groups, width_per_group
        self.stride_in_1x1, self.shortcut_type, self.se_reduction = (stride_in_1x1, shortcut,
                                                                     se_reduction)
        self.inplanes = widths[0]
        modules = named()
        if stem == "imagenet":
            modules["conv1"] = Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        else:
            modules["conv1"] = conv3x3(in_channels, widths[0])
        modules["bn1"], modules["relu"] = BatchNorm2d(widths[0]), ReLU()
        if stem == "imagenet":
            modules["maxpool"] = MaxPool2d(3, 2, padding=1)
        for i, (planes, n) in enumerate(zip(widths, layers)):
            modules[f"layer{i + 1}"] = self._make_layer(planes, n, stride=1 if i == 0 else 2,
                                                        first_stage=i == 0)
        features = widths[-1] * block.expansion
        if block.preact:
            modules["bn2"], modules["relu2"] = BatchNorm2d(features), ReLU()
        modules["avgpool"], modules["flatten"] = GlobalAvgPool(), Flatten()
        modules["fc"] = Linear(features, num_classes)
        super().__init__(modules)
        init_modules(self, conv=init.kaiming_normal("fan_out"))
        if zero_init_residual:
            if block.preact:
                raise ValueError("ResNet: zero_init_residual needs a block whose residual "
                                 "branch ends in batch norm (BasicBlock, Bottleneck), not "
                                 "PreActBlock")
            last_bn = "bn3" if block is Bottleneck else "bn2"
            for m in self.modules():
                if isinstance(m, block):
                    getattr(m, last_bn).set_init("weight", init.zeros)

    def _make_layer(self, planes, blocks, stride, first_stage):
        out = planes * self.block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            if self.shortcut_type == "A":
                extra = out - self.inplanes
                downsample = Sequential(Subsample(stride),
                                        ChannelPad(extra // 2, extra - extra // 2))
            elif self.block.preact:
                downsample = Sequential(conv1x1(self.inplanes, out, stride))
            else:
                downsample = Sequential(conv1x1(self.inplanes, out, stride), BatchNorm2d(out))
        opts = ({"first": first_stage} if self.block.preact else
                {"groups": self.groups, "base_width": self.base_width,
                 "stride_in_1x1": self.stride_in_1x1, "se_reduction": self.se_reduction})
        layers = [self.block(self.inplanes, planes, stride, downsample, **opts)]
        self.inplanes = out
        if self.block.preact:
            opts = {"first": False}
        for _ in range(1, blocks):
            layers.append(self.block(self.inplanes, planes, **opts))
        return Sequential(*layers)


def _resnet(block, layers, num_classes, in_channels, **options):
    return ResNet(block, layers, num_classes, in_channels, **options)


@register
def resnet18(num_classes=1000, in_channels=3, stride_in_1x1=False,
             zero_init_residual=False):
    """ResNet-18: 11,689,512 parameters (stride_in_1x1 changes nothing in basic blocks)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def resnet34(num_classes=1000, in_channels=3, stride_in_1x1=False,
             zero_init_residual=False):
    """ResNet-34: 21,797,672 parameters."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def resnet50(num_classes=1000, in_channels=3, stride_in_1x1=False,
             zero_init_residual=False):
    """ResNet-50 (v1.5; stride_in_1x1=True: the paper's v1): 25,557,032 parameters."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def resnet101(num_classes=1000, in_channels=3, stride_in_1x1=False,
              zero_init_residual=False):
    """ResNet-101: 44,549,160 parameters."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def resnet152(num_classes=1000, in_channels=3, stride_in_1x1=False,
              zero_init_residual=False):
    """ResNet-152: 60,192,808 parameters."""
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def wide_resnet50_2(num_classes=1000, in_channels=3, stride_in_1x1=False,
                    zero_init_residual=False):
    """Wide ResNet-50-2 (bottleneck width doubled): 68,883,240 parameters."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, width_per_group=128,
                   stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual)


@register
def resnext50_32x4d(num_classes=1000, in_channels=3, stride_in_1x1=False,
                    zero_init_residual=False):
    """ResNeXt-50 32x4d (32 groups of width 4 in each bottleneck): 25,028,904 parameters."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, groups=32,
                   width_per_group=4, stride_in_1x1=stride_in_1x1,
                   zero_init_residual=zero_init_residual)


@register
def resnext101_32x8d(num_classes=1000, in_channels=3, stride_in_1x1=False,
                     zero_init_residual=False):
    """ResNeXt-101 32x8d: 88,791,336 parameters."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, groups=32,
                   width_per_group=8, stride_in_1x1=stride_in_1x1,
                   zero_init_residual=zero_init_residual)


@register
def se_resnet50(num_classes=1000, in_channels=3, stride_in_1x1=False, reduction=16,
                zero_init_residual=False):
    """SE-ResNet-50: ResNet-50 v1.5 with squeeze-and-excitation (reduction 16) after bn3 of
    every bottleneck: 28,088,024 parameters."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels,
                   stride_in_1x1=stride_in_1x1, se_reduction=reduction,
                   zero_init_residual=zero_init_residual)


@register
def preact_resnet18(num_classes=1000, in_channels=3):
    """Pre-activation ResNet-18 (He et al., "Identity Mappings in Deep Residual Networks"):
    11,687,720 parameters."""
    return _resnet(PreActBlock, [2, 2, 2, 2], num_classes, in_channels)


def _cifar(depth, num_classes, in_channels, width, shortcut):
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet: depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, [n, n, n], num_classes, in_channels,
                  widths=(width, 2 * width, 4 * width), stem="cifar", shortcut=shortcut)


@register(input_size=32)
def resnet20(num_classes=10, in_channels=3, width=16, shortcut="A"):
    """ResNet-20 for 32x32 inputs (He et al. Sec. 4.2: 3x3 stem, three stages of 16, 32, 64
    channels, option-A shortcuts): 269,722 parameters with 10 classes (the paper's 0.27M);
    width scales the stages (width, 2*width, 4*width)."""
    return _cifar(20, num_classes, in_channels, width, shortcut)


@register(input_size=32)
def resnet32(num_classes=10, in_channels=3, width=16, shortcut="A"):
    """ResNet-32 for 32x32 inputs (He et al. Sec. 4.2)."""
    return _cifar(32, num_classes, in_channels, width, shortcut)


@register(input_size=32)
def resnet44(num_classes=10, in_channels=3, width=16, shortcut="A"):
    """ResNet-44 for 32x32 inputs (He et al. Sec. 4.2)."""
    return _cifar(44, num_classes, in_channels, width, shortcut)


@register(input_size=32)
def resnet56(num_classes=10, in_channels=3, width=16, shortcut="A"):
    """ResNet-56 for 32x32 inputs (He et al. Sec. 4.2)."""
    return _cifar(56, num_classes, in_channels, width, shortcut)


@register(input_size=32)
def resnet110(num_classes=10, in_channels=3, width=16, shortcut="A"):
    """ResNet-110 for 32x32 inputs (He et al. Sec. 4.2)."""
    return _cifar(110, num_classes, in_channels, width, shortcut)


@register(input_size=32)
def resnet_cifar(num_classes=10, in_channels=3, depth=20, width=16, shortcut="A"):
    """Any CIFAR ResNet of depth 6n + 2 (resnet8 for quick tests: depth=8)."""
    return _cifar(depth, num_classes, in_channels, width, shortcut)
