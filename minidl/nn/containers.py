"""Containers: residual, inception, dense and squeeze-and-excitation blocks are not special
code, they are paths of child modules joined by one stateless layer (Torch7's ConcatTable +
CAddTable / JoinTable):

    x -> pre -> +-- path 1 --+
                +-- path 2 --+-> join (add | concat | channel scale) -> post -> out
                    ...

A path is a list of child names run in order; an empty path is the identity. Backward runs
the post path back, the join's backward, each path back, and SUMS the gradients the paths
send to their common input (backward through a fan-out is a sum), then the pre path.

    Sequential(m1, m2, ...)                  one path, no join
    Residual(body, shortcut=None, pre=, post=)   body(x) + shortcut(x)     (ResNet, MobileNet v2)
    Concat(b1, b2, ..., passthrough=False)   [x,] b1(x), b2(x), ... on channels (Inception,
                                             DenseNet)
    SE(channels, reduction=16)               x * gate(x), gate = pool-fc-relu-fc-sigmoid

A branch given as a dict {name: module} is inlined: its modules become children of the
container under those names, so parameter names match torchvision's
('layer1.0.conv1.weight' for a Residual whose body is {'conv1': ..., 'bn1': ..., ...}).
A branch given as a Module is one child ('downsample', 'branch1', ...).

Fusion: where a path runs a BatchNorm2d and then a ReLU, the container runs the two as one
compiled layer (minidl.layers.SpatialBatchNormReLU); where an 'add' join is followed by a
ReLU (a ResNet block's post), the join and the ReLU run as minidl.layers.AddReLU. The same
math in fewer passes over memory, with the Module contract intact: the batch norm module
keeps the cache and accumulates its gradients, the ReLU module is skipped (it has no
parameters), and a module called on its own (module.forward) is never fused. A module with
hooks installed (Module.hooks, e.g. by minidl.viz) is never fused either, so hooks see every
output. ``set_fusion(False)`` or ``with no_fusion():`` runs every module separately.
"""
import contextlib
from collections import OrderedDict

from ..layers.fused import AddReLU
from ..layers.join import Add, ChannelConcat, ChannelScale
from .activation import ReLU, Sigmoid
from .conv import Conv2d
from .module import Module, ShapeError
from .pooling import GlobalAvgPool

__all__ = ["Sequential", "Residual", "Concat", "SE", "set_fusion", "get_fusion", "no_fusion"]

_fusion = {"on": True}
# Put in a fused-away ReLU module's cache slot by forward: its backward is folded into the
# module (or join) before it, so backward skips it.
_FUSED = object()


def set_fusion(flag):
    """Let containers run batch norm + ReLU and add + ReLU as fused layers (True, the default)
    or every module separately (False). Returns the previous setting."""
    if not isinstance(flag, bool):
        raise TypeError(f"set_fusion: flag must be True or False, got {flag!r}")
    old, _fusion["on"] = _fusion["on"], flag
    return old


def get_fusion():
    """Whether containers fuse batch norm + ReLU and add + ReLU (see set_fusion)."""
    return _fusion["on"]


@contextlib.contextmanager
def no_fusion():
    """Run every module separately inside the block (see set_fusion)."""
    old = set_fusion(False)
    try:
        yield
    finally:
        set_fusion(old)


def _plain(module):
    """True unless hooks replaced the module's _forward/_backward (Module.hooks)."""
    return "_forward" not in module.__dict__


def _fusable_relu(module):
    return _fusion["on"] and type(module) is ReLU and _plain(module)


class _Paths(Module):
    """pre -> parallel paths -> join -> post (see the module docstring)."""

    _join = None          # None (a single path), 'add', 'concat' or 'mul'
    _summary_row = False  # Concat reports its join as a summary row

    def __init__(self):
        super().__init__()
        self._pre, self._paths, self._post = [], [], []

    def _adopt(self, spec, default_name):
        """Register a branch: None -> [] (identity), a Module -> [default_name], a dict or a
        list of (name, module) pairs -> its names, inlined in order."""
        if spec is None:
            return []
        if isinstance(spec, Module):
            return [self._add_child(default_name, spec)]
        if isinstance(spec, dict):
            items = list(spec.items())
        elif isinstance(spec, (list, tuple)) and all(
                isinstance(p, tuple) and len(p) == 2 for p in spec):
            items = list(spec)
        else:
            raise TypeError(f"{type(self).__name__}: a branch must be a Module, a dict "
                            f"name -> Module or None, got {type(spec).__name__}")
        return [self._add_child(name, m) for name, m in items]

    def _add_child(self, name, module):
        if name in self._children:
            raise ValueError(f"{type(self).__name__}: two children named {name!r}")
        self.add_module(name, module)
        return name

    # -- running
    def _run(self, names, x):
        children, i = self._children, 0
        while i < len(names):
            m = children[names[i]]
            if (i + 1 < len(names) and getattr(m, "_relu_layer", None) is not None
                    and _plain(m) and _fusable_relu(children[names[i + 1]])):
                x = m._forward_relu(x)  # batch norm + ReLU in one layer
                children[names[i + 1]].__dict__["_cache"] = _FUSED
                i += 2
            else:
                x = m._forward(x)
                i += 1
        return x

    def _run_back(self, names, d):
        children, i = self._children, len(names) - 1
        while i >= 0:
            m = children[names[i]]
            if m.__dict__.get("_cache") is _FUSED:
                # a ReLU that forward fused into the module before it (which takes the ReLU's
                # output gradient), or into the join when it opens the post path
                m.__dict__["_cache"] = None
                i -= 1
                continue
            d = m._backward(d)
            i -= 1
        return d

    def _run_infer(self, names, shape, ctx):
        for n in names:
            shape = self._children[n]._infer(shape, ctx)
        return shape

    def _forward(self, x):
        h = self._run(self._pre, x)
        outs = [self._run(p, h) for p in self._paths]
        post = self._post
        if self._join is None:
            out = outs[0]
        elif self._join == "add" and self._post and _fusable_relu(self._children[self._post[0]]):
            out, self._cache = AddReLU.forward(outs[0], outs[1])  # the sum and the post's ReLU
            self._children[post[0]].__dict__["_cache"] = _FUSED
            post = post[1:]
        elif self._join == "add":
            out, self._cache = Add.forward(outs[0], outs[1])
        elif self._join == "concat":
            out, self._cache = ChannelConcat.forward(outs)
        else:
            out, self._cache = ChannelScale.forward(outs[0], outs[1])
        return self._run(post, out)

    def _backward(self, dout):
        d = self._run_back(self._post, dout)
        if self._join is None:
            ds = [d]
        elif self._join == "add":
            cache = self._take_cache()  # Add's, or AddReLU's when forward fused the ReLU
            ds = (AddReLU if cache.layer == "AddReLU" else Add).backward(d, cache)
        elif self._join == "concat":
            ds = ChannelConcat.backward(d, self._take_cache())
        else:
            ds = ChannelScale.backward(d, self._take_cache())
        dh = None
        for path, di in zip(self._paths, ds):
            g = self._run_back(path, di)
            dh = g if dh is None else dh + g  # fan-out: gradients of the shared input add up
        return self._run_back(self._pre, dh)

    def _infer(self, shape, ctx):
        h = self._run_infer(self._pre, shape, ctx)
        outs = [self._run_infer(p, h, ctx) for p in self._paths]
        if self._join is None:
            out = outs[0]
        else:
            out = self._join_shape(outs, ctx)
            if self._summary_row:
                ctx.visit(self, h, out)
        return self._run_infer(self._post, out, ctx)

    def _join_shape(self, outs, ctx):
        def fail(why):
            raise ShapeError(f"{ctx.describe(self)}: {why}")

        if self._join == "add":
            if outs[0] != outs[1]:
                fail(f"cannot add its paths' outputs of shapes {outs[0]} and {outs[1]} "
                     "(the shortcut must match the residual branch)")
            return outs[0]
        if self._join == "concat":
            if any(len(s) != 3 for s in outs) or len({s[1:] for s in outs}) != 1:
                fail(f"cannot join outputs of shapes {', '.join(map(str, outs))} on channels "
                     "(their heights and widths differ)")
            return (sum(s[0] for s in outs),) + outs[0][1:]
        x, s = outs
        if len(x) != 3 or s != (x[0], 1, 1):
            fail(f"the gate's output {s} must be (C, 1, 1) for the input {x}")
        return x

    def _describe(self, in_shape, out_shape):
        return {}

    def extra_repr(self):
        return ""


class Sequential(_Paths):
    """Children run in order: Sequential(m1, m2, ...) names them '0', '1', ...;
    Sequential({'conv1': m1, 'bn1': m2}) uses the given names. Indexable and iterable."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        self._paths = [self._adopt(items, None)]

    def append(self, module, name=None):
        """Add a module at the end (named by its position unless name is given)."""
        name = str(len(self._paths[0])) if name is None else name
        self._paths[0].append(self._add_child(name, module))
        return self

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._children[key]
        return self._children[self._paths[0][key]]

    def __len__(self):
        return len(self._paths[0])

    def __iter__(self):
        return iter([self._children[n] for n in self._paths[0]])


class Residual(_Paths):
    """out = post(body(h) + shortcut(h)) with h = pre(x): a residual block.

    body: a Module or a dict name -> Module (inlined, torchvision's names); shortcut: None
    (identity) or a Module registered as `shortcut_name` ('downsample', as torchvision);
    pre: modules shared by both paths (a pre-activation block's BN-ReLU before a projection);
    post: modules after the sum (the original ResNet's ReLU).
    """

    _join = "add"

    def __init__(self, body, shortcut=None, *, pre=None, post=None, shortcut_name="downsample"):
        super().__init__()
        self._pre = self._adopt(pre, "pre")
        self._paths = [self._adopt(body, "body"), self._adopt(shortcut, shortcut_name)]
        self._post = self._adopt(post, "post")


class Concat(_Paths):
    """out = concat([x if passthrough,] branch1(x), branch2(x), ...) on the channel axis.

    Branches that are Modules are named 'branch1', 'branch2', ... (torchvision's Inception);
    a dict branch is inlined (a DenseNet layer: Concat({'norm1': ..., 'conv2': ...},
    passthrough=True)). Shapes: branches must agree on H and W.
    """

    _join = "concat"
    _summary_row = True

    def __init__(self, *branches, passthrough=False, pre=None, post=None):
        super().__init__()
        if not branches:
            raise ValueError("Concat: give at least one branch")
        self.passthrough = bool(passthrough)
        self._pre = self._adopt(pre, "pre")
        self._paths = ([[]] if passthrough else []) + [
            self._adopt(b, f"branch{i + 1}") for i, b in enumerate(branches)]
        self._post = self._adopt(post, "post")

    def extra_repr(self):
        return "passthrough=True" if self.passthrough else ""


class SE(_Paths):
    """Squeeze-and-excitation (Hu et al.): out = x * sigmoid(fc2(relu(fc1(avgpool(x))))).

    fc1, fc2 are 1x1 convolutions with bias, channels -> channels // reduction -> channels
    (timm's SE-ResNet names: 'se.fc1.weight'). Pass gate= (a dict or Module mapping
    (C, H, W) to (C, 1, 1)) for another gating function.
    """

    _join = "mul"

    def __init__(self, channels=None, reduction=16, gate=None):
        super().__init__()
        if gate is None:
            if channels is None:
                raise ValueError("SE: give channels (and reduction) or a gate")
            hidden = max(1, channels // reduction)
            gate = OrderedDict(pool=GlobalAvgPool(), fc1=Conv2d(channels, hidden, 1),
                               relu=ReLU(), fc2=Conv2d(hidden, channels, 1), sigmoid=Sigmoid())
        self.channels, self.reduction = channels, reduction
        self._paths = [[], self._adopt(gate, "gate")]

    def extra_repr(self):
        return f"{self.channels}, reduction={self.reduction}" if self.channels else ""
