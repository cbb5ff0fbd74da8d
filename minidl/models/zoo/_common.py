"""Small helpers shared by the zoo's builders."""
from collections import OrderedDict

from ...nn import BatchNorm2d, Conv2d, Linear, ReLU, Sequential


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


def init_modules(model, conv=None, conv_bias=None, linear=None, linear_bias=None):
    """Choose the initialisers of every Conv2d and Linear in model, as torchvision's builders
    do in their ``for m in self.modules()`` loop (None keeps the module's PyTorch default;
    batch norm keeps weight 1, bias 0). Initialisers: minidl.nn.init. Returns model."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            weight, bias = conv, conv_bias
        elif isinstance(m, Linear):
            weight, bias = linear, linear_bias
        else:
            continue
        if weight is not None:
            m.set_init("weight", weight)
        if bias is not None and m.has_bias:
            m.set_init("bias", bias)
    return model
