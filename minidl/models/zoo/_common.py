"""Small helpers shared by the zoo's builders."""
from collections import OrderedDict

from ...nn import BatchNorm2d, Conv2d, ReLU, Sequential


def conv_bn_act(cin, cout, kernel_size=3, stride=1, groups=1, act=ReLU, eps=1e-5):
    """Conv (no bias, 'same' padding) -> BatchNorm -> activation, named '0', '1', '2' as
    torchvision's Conv2dNormActivation (act=None leaves the activation out)."""
    layers = [Conv2d(cin, cout, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                     groups=groups, bias=False), BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(act())
    return Sequential(*layers)


def named(**modules):
    """An ordered name -> module dict (keyword order), for inlined container branches."""
    return OrderedDict(modules)
