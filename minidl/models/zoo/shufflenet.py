"""ShuffleNet v2 (Ma et al. 2018), torchvision's layout and names: 2,278,604 parameters
for shufflenet_v2_x1_0.

A unit with stride 1 splits the channels in two halves: the first passes through, the second
goes through 1x1-bn-relu, 3x3 depthwise-bn, 1x1-bn-relu ('branch2'); the halves are joined
and the channels shuffled with 2 groups. A unit with stride 2 feeds the whole input to both
branches ('branch1': 3x3/2 depthwise-bn, 1x1-bn-relu). Both are Concat containers with a
ChannelShuffle after the join.
"""
from ...nn import (BatchNorm2d, ChannelShuffle, ChannelSlice, Concat, Conv2d, Flatten,
                   GlobalAvgPool, Linear, MaxPool2d, ReLU, Sequential)
from ._common import named
from ._registry import register


def shuffle_unit(inp, oup, stride):
    half = oup // 2
    if stride == 1 and inp != oup:
        raise ValueError(f"ShuffleNetV2 unit: stride 1 needs inp == oup, got {inp} and {oup}")
    branch2 = Sequential(
        Conv2d(inp if stride > 1 else half, half, 1, bias=False), BatchNorm2d(half), ReLU(),
        Conv2d(half, half, 3, stride=stride, padding=1, groups=half, bias=False), BatchNorm2d(half),
        Conv2d(half, half, 1, bias=False), BatchNorm2d(half), ReLU())
    post = named(shuffle=ChannelShuffle(2))
    if stride > 1:
        branch1 = Sequential(
            Conv2d(inp, inp, 3, stride=stride, padding=1, groups=inp, bias=False), BatchNorm2d(inp),
            Conv2d(inp, half, 1, bias=False), BatchNorm2d(half), ReLU())
        return Concat(branch1, branch2, post=post)
    return Concat(named(split1=ChannelSlice(0, half)),
                  named(split2=ChannelSlice(half, 2 * half), branch2=branch2), post=post)


class ShuffleNetV2(Sequential):
    def __init__(self, stages_repeats, stages_out_channels, num_classes=1000, in_channels=3):
        if len(stages_repeats) != 3 or len(stages_out_channels) != 5:
            raise ValueError("ShuffleNetV2: expected 3 stage repeats and 5 channel counts")
        c = stages_out_channels[0]
        modules = named(conv1=Sequential(Conv2d(in_channels, c, 3, stride=2, padding=1, bias=False),
                                         BatchNorm2d(c), ReLU()),
                        maxpool=MaxPool2d(3, 2, padding=1))
        for i, (repeats, out) in enumerate(zip(stages_repeats, stages_out_channels[1:4])):
            units = [shuffle_unit(c, out, 2)]
            units += [shuffle_unit(out, out, 1) for _ in range(repeats - 1)]
            modules[f"stage{i + 2}"] = Sequential(*units)
            c = out
        last = stages_out_channels[-1]
        modules["conv5"] = Sequential(Conv2d(c, last, 1, bias=False), BatchNorm2d(last), ReLU())
        modules["avgpool"], modules["flatten"] = GlobalAvgPool(), Flatten()
        modules["fc"] = Linear(last, num_classes)
        super().__init__(modules)


@register
def shufflenet_v2_x1_0(num_classes=1000, in_channels=3):
    """ShuffleNet v2 1.0x: 2,278,604 parameters."""
    return ShuffleNetV2([4, 8, 4], [24, 116, 232, 464, 1024], num_classes, in_channels)
