"""GoogLeNet (Inception v1, Szegedy et al. 2015).

Default (batch_norm=True): torchvision's layout, key for key. Its known deviations from the
paper: every conv is BasicConv2d = conv (no bias) + BatchNorm (eps 1e-3) + ReLU; the "5x5"
branch uses a 3x3 conv; max pools use ceil mode and the pool before inception5a is 2x2/2;
auxiliary heads pool adaptively to 4x4; dropout 0.2. 6,624,904 parameters (13,004,888 with
aux_logits=True, torchvision's GoogLeNet() with its two auxiliary heads).

batch_norm=False: the paper's Table 1 layout: convs with bias + ReLU, a real 5x5 branch,
3x3/2 max pools (pad 1, as the lecture's stem table), 5x5/3 average pooling in the auxiliary
heads, dropout 0.4. The paper's local response normalisation layers are left out (they have
no parameters).

With aux_logits=True a training-mode forward returns (logits, aux2, aux1), as torchvision's,
and backward takes the three gradients; eval mode returns the logits only.

Initialisation. batch_norm=True, as torchvision's GoogLeNet: conv and linear weights
N(0, 0.01^2) truncated to [-2, 2], the linear biases PyTorch's default, batch norm 1 and 0.
batch_norm=False, as BVLC's Caffe GoogLeNet (bvlc_googlenet): weights Caffe's "xavier"
U(-sqrt(3 / fan_in), sqrt(3 / fan_in)), conv and hidden fc biases 0.2, classifier biases 0.

torchvision's pretrained GoogLeNet weights were trained on inputs it rescales first
(transform_input=True); minidl has no such step, so feed those weights inputs x' with
x'[:, c] = x[:, c] * std[c] / 0.5 + (mean[c] - 0.5) / 0.5 (ImageNet's mean and std).
"""
from ...nn import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Concat, Conv2d, Dropout, Flatten,
                   GlobalAvgPool, Linear, MaxPool2d, Module, ReLU, Sequential, init)
from ._common import init_modules, named
from ._registry import register

# (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each inception module
INCEPTIONS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv2d(Sequential):
    """conv -> bn (eps 1e-3) -> relu with batch_norm; conv (with bias) -> relu without."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0, batch_norm=True):
        layers = named(conv=Conv2d(cin, cout, kernel_size, stride=stride, padding=padding,
                                   bias=not batch_norm))
        if batch_norm:
            layers["bn"] = BatchNorm2d(cout, eps=1e-3)
        layers["relu"] = ReLU()
        super().__init__(layers)


class Inception(Concat):
    """Four parallel branches joined on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5 (3x3 in
    torchvision's layout); 3x3/1 max pool -> 1x1."""

    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, batch_norm=True):
        k5 = 3 if batch_norm else 5
        bn = batch_norm
        super().__init__(
            BasicConv2d(cin, ch1x1, 1, batch_norm=bn),
            Sequential(BasicConv2d(cin, ch3x3red, 1, batch_norm=bn),
                       BasicConv2d(ch3x3red, ch3x3, 3, padding=1, batch_norm=bn)),
            Sequential(BasicConv2d(cin, ch5x5red, 1, batch_norm=bn),
                       BasicConv2d(ch5x5red, ch5x5, k5, padding=k5 // 2, batch_norm=bn)),
            Sequential(MaxPool2d(3, 1, padding=1, ceil_mode=True),
                       BasicConv2d(cin, pool_proj, 1, batch_norm=bn)))


class InceptionAux(Sequential):
    """Auxiliary classifier: pool to 4x4, 1x1 conv 128, fc 2048 -> 1024, dropout 0.7, fc."""

    def __init__(self, cin, num_classes, batch_norm=True, dropout=0.7, channels=128,
                 hidden=1024):
        pool = AdaptiveAvgPool2d(4) if batch_norm else AvgPool2d(5, 3)
        super().__init__(named(pool=pool,
                               conv=BasicConv2d(cin, channels, 1, batch_norm=batch_norm),
                               flatten=Flatten(), fc1=Linear(channels * 16, hidden), relu=ReLU(),
                               dropout=Dropout(dropout), fc2=Linear(hidden, num_classes)))


class GoogLeNet(Module):
    """The stem (224 -> 28), nine inception modules, global average pooling and one fc."""

    _TAPS = {"inception4a": "aux1", "inception4d": "aux2"}

    def __init__(self, num_classes=1000, in_channels=3, aux_logits=False, batch_norm=True,
                 dropout=None, width_mult=1.0):
        super().__init__()
        bn = batch_norm
        self.aux_logits = bool(aux_logits)

        def w(c):  # width_mult < 1 gives the tiny networks the gradient checks use
            return max(1, int(round(c * width_mult)))

        def pool(k=3):
            return MaxPool2d(k, 2, ceil_mode=True) if bn else MaxPool2d(3, 2, padding=1)

        self.conv1 = BasicConv2d(in_channels, w(64), 7, stride=2, padding=3, batch_norm=bn)
        self.maxpool1 = pool()
        self.conv2 = BasicConv2d(w(64), w(64), 1, batch_norm=bn)
        self.conv3 = BasicConv2d(w(64), w(192), 3, padding=1, batch_norm=bn)
        self.maxpool2 = pool()
        c, outputs = w(192), {}
        for name in ("inception3a", "inception3b", "maxpool3", "inception4a", "inception4b",
                     "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a",
                     "inception5b"):
            if name.startswith("maxpool"):
                self.add_module(name, pool(3 if name == "maxpool3" else 2))
                continue
            _, c1, c3r, c3, c5r, c5, cp = INCEPTIONS[name]
            self.add_module(name, Inception(c, w(c1), w(c3r), w(c3), w(c5r), w(c5), w(cp),
                                            batch_norm=bn))
            c = outputs[name] = w(c1) + w(c3) + w(c5) + w(cp)
        if self.aux_logits:
            self.aux1 = InceptionAux(outputs["inception4a"], num_classes, batch_norm=bn,
                                     channels=w(128), hidden=w(1024))
            self.aux2 = InceptionAux(outputs["inception4d"], num_classes, batch_norm=bn,
                                     channels=w(128), hidden=w(1024))
        self.avgpool = GlobalAvgPool()
        self.flatten = Flatten()
        self.dropout = Dropout((0.2 if bn else 0.4) if dropout is None else dropout)
        self.fc = Linear(c, num_classes)
        self._main = [n for n in self._children if n not in ("aux1", "aux2")]
        if bn:
            std001 = init.trunc_normal(0.01, a=-2.0, b=2.0)
            init_modules(self, conv=std001, linear=std001)
        else:
            xavier = init.kaiming_uniform(a=1.0)  # gain 1: Caffe's xavier filler
            init_modules(self, conv=xavier, conv_bias=init.constant(0.2), linear=xavier,
                         linear_bias=init.zeros)
            for aux in ("aux1", "aux2"):
                if aux in self._children:
                    self._children[aux].fc1.set_init("bias", init.constant(0.2))

    def _aux_active(self):
        return self.aux_logits and self.training

    def _forward(self, x):
        aux = {}
        for name in self._main:
            x = self._children[name]._forward(x)
            if self._aux_active() and name in self._TAPS:
                tap = self._TAPS[name]
                aux[tap] = self._children[tap]._forward(x)
        return (x, aux["aux2"], aux["aux1"]) if aux else x

    def _backward(self, dout):
        if isinstance(dout, tuple):
            if len(dout) != 3:
                raise ValueError("GoogLeNet.backward: with aux_logits in training mode give "
                                 "(dlogits, daux2, daux1)")
            d, daux = dout[0], {"aux2": dout[1], "aux1": dout[2]}
        else:
            if self._aux_active():
                raise ValueError("GoogLeNet.backward: the training-mode forward returned "
                                 "(logits, aux2, aux1); give one gradient for each")
            d, daux = dout, {}
        for name in reversed(self._main):
            tap = self._TAPS.get(name)
            if tap in daux:
                # the auxiliary head reads this module's output: its gradient adds here
                d = d + self._children[tap]._backward(daux[tap])
            d = self._children[name]._backward(d)
        return d

    def _infer(self, shape, ctx):
        for name in self._main:
            shape = self._children[name]._infer(shape, ctx)
            tap = self._TAPS.get(name)
            if tap in self._children:
                self._children[tap]._infer(shape, ctx)
        return shape

    def extra_repr(self):
        return "aux_logits=True" if self.aux_logits else ""


@register
def googlenet(num_classes=1000, in_channels=3, aux_logits=False, batch_norm=True, dropout=None,
              width_mult=1.0):
    """GoogLeNet: torchvision's layout (6,624,904 parameters; aux_logits=True adds the two
    auxiliary heads: 13,004,888) or, with batch_norm=False, the paper's Table 1 layout.
    width_mult scales every channel count (tiny networks for gradient checks)."""
    return GoogLeNet(num_classes, in_channels, aux_logits, batch_norm, dropout, width_mult)
