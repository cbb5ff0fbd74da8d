"""The Module contract: stateful wrappers over the stateless layers of ``minidl.layers``.

A Module has parameters and buffers (dicts of arrays), children (named submodules), a
training flag and a dtype. What a subclass writes:

    _forward(x) -> out            call a layer's forward, keep its cache in self._cache
    _backward(dout) -> dx         call the layer's backward, self._accumulate(name, grad)
    _out_shape(shape) -> shape    the output shape for one sample, from shapes alone

What every module then offers (PyTorch names where PyTorch has them):

    forward(x) / module(x)        checks x and the whole model's shapes first, then runs
    backward(dout) -> dx          parameter gradients ACCUMULATE; zero_grad() clears them
    params, grads                 dicts name -> array with dotted names ('layer1.0.conv1.weight');
                                  ``params`` writes through: model.params[k] = new_w updates
                                  the module
    flat_parameters()             one contiguous buffer of all parameters and one of all
                                  gradients, of which the modules' arrays become views
                                  (minidl.nn.flat; what Optimizer and Solver update)
    train(), eval(), astype(dtype), named_modules(), num_params(),
    state_dict(), load_state_dict(), save(path), load(path)
    output_shape(input_shape)     the output shape for one sample (no batch axis), or a
                                  ShapeError naming the first layer that cannot take its input
    trace_shapes(input_shape)     the same inference, with one LayerTrace per layer (its
                                  shapes, parameters and multiply-adds): what summary() prints
    hooks(forward=, backward=)    context: see (or replace) this module's output and the
                                  gradient arriving at it, also inside containers
    inspecting()                  context: eval mode, gradients set aside; both restored on
                                  exit (analysis passes, minidl.viz, leave no trace)

Class attributes: ``kind`` labels the module's row in summary tables ('conv', 'linear', 'pool',
'norm', 'act', 'other'); ``regularized_params`` names the parameters that L2 regularisation
applies to (Conv2d and Linear: their weight; everything else: none).

Parameters are declared with a shape and an initialiser and drawn only when first needed
(see ``minidl.nn.init``): counting parameters and shape inference never allocate them.
A module instance may appear only once in a model: it keeps the cache of its last forward.
"""
import contextlib
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

from .._config import float_dtype, get_default_dtype
from .._io import load_npz, save_npz
from . import init as _init
from .flat import FlatParameters


class ShapeError(ValueError):
    """An input shape a model cannot take, found by shape inference before any computation."""


class StateDictError(ValueError):
    """A state (dict or .npz file) that does not match the model; nothing was loaded."""


def _as_shape(owner, shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{owner}: input_shape must be a tuple of ints such as (3, 224, 224), "
                        f"got {shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{owner}: input_shape must be positive sizes for one sample (no "
                         f"batch axis), e.g. (3, 224, 224); got {shape}")
    return shape


def _image_shape(shape):
    """shape must be (C, H, W) for one sample; for a module's _out_shape."""
    if len(shape) != 3:
        raise ValueError(f"expects (C, H, W) per sample (no batch axis), got {shape}")
    return shape


def _fmt_pair(v):
    """(3, 3) -> '3', (1, 7) -> '1x7': a kernel, stride or pad as repr and summary print it."""
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


@dataclass(frozen=True)
class LayerTrace:
    """One layer of Module.trace_shapes, for one sample (no batch axis).

    name: dotted name as in state_dict (the class name for the root); module: the module;
    in_shape, out_shape: tuples; num_params: elements of the module's own parameters (its
    children's excluded); filters, kernel, stride, pad: the layer's settings as summary
    tables print them ('3' or '1x7'; None where they do not apply); flops: multiply-adds of
    one sample, counted as the lecture counts them (0 for batch norm, activations, joins).
    """

    name: str
    module: object
    in_shape: tuple
    out_shape: tuple
    num_params: int
    filters: object = None
    kernel: object = None
    stride: object = None
    pad: object = None
    flops: int = 0


class _Inference:
    """What one shape-inference pass carries: the root (for names) and, for trace_shapes,
    the list of LayerTrace rows it collects (None: plain output_shape, nothing collected)."""

    def __init__(self, root, trace=None):
        self.root = root
        self.trace = trace
        self._names = None

    def name(self, module):
        if self._names is None:
            self._names = {id(m): n for n, m in self.root.named_modules()}
        return self._names.get(id(module), "") or type(module).__name__

    def describe(self, module):
        name = self.name(module)
        head = module._repr_head()
        return head if name == type(module).__name__ else f"{name} ({head})"

    def visit(self, module, in_shape, out_shape):
        """Record one layer (a leaf module, or a container whose join is a row)."""
        if self.trace is None:
            return
        info = module._describe(in_shape, out_shape)
        own = sum(int(np.prod(spec[0], dtype=np.int64)) for spec in module._param_specs.values())
        self.trace.append(LayerTrace(
            self.name(module), module, tuple(in_shape), tuple(out_shape), own,
            info.get("filters"), info.get("kernel"), info.get("stride"), info.get("pad"),
            int(info.get("flops", 0))))


class Module:
    """Base class of every layer module and container (see the module docstring)."""

    kind = "other"  # summary row kind: 'conv', 'linear', 'pool', 'norm', 'act' or 'other'
    regularized_params = ()  # names of the parameters L2 regularisation applies to

    def __init__(self):
        d = self.__dict__
        d["_children"] = OrderedDict()
        d["_param_specs"] = OrderedDict()  # name -> (shape, init, seed)
        d["_params"] = {}                   # name -> array, once drawn
        d["_grads"] = {}                    # name -> accumulated gradient or None
        d["_buffers"] = OrderedDict()       # name -> array (running statistics)
        d["training"] = True
        d["dtype"] = np.dtype(get_default_dtype()).type
        d["_cache"] = None
        d["_flat"] = None                   # the FlatParameters this module's arrays view

    # ------------------------------------------------------------------ attributes
    def __setattr__(self, name, value):
        children = self.__dict__.get("_children")
        if isinstance(value, Module):
            if children is None:
                raise AttributeError(f"{type(self).__name__}: call Module.__init__() before "
                                     "assigning submodules")
            children[name] = value
            return
        if children is not None and name in children:
            del children[name]
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if name in d.get("_children", ()):
            return d["_children"][name]
        if name in d.get("_param_specs", ()):
            return self._param(name)
        if name in d.get("_buffers", ()):
            return d["_buffers"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def add_module(self, name, module):
        """Register a child under name (no dots); returns the child."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{type(self).__name__}: child name must be a non-empty string "
                             f"without dots, got {name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: child {name!r} must be a Module, got "
                            f"{type(module).__name__}")
        self._children[name] = module
        return module

    def __getstate__(self):
        # Pickling and deepcopy keep parameters and buffers, not forward caches; a copy's
        # arrays are its own (no longer views of this model's flat buffer).
        state = dict(self.__dict__)
        state["_cache"] = None
        state.pop("_plan_held", None)  # a convolution plan is remade on the next forward
        state["_flat"] = None
        state.pop("_flat_root", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ------------------------------------------------------------------ parameters
    def _declare_param(self, name, shape, init):
        """Declare a parameter: its values are drawn from init on first use."""
        self._param_specs[name] = (tuple(int(s) for s in shape), init, _init.next_seed())
        self._params.pop(name, None)
        self._grads[name] = None

    def _declare_buffer(self, name, array):
        self._buffers[name] = np.ascontiguousarray(array, dtype=self.dtype)

    def _param(self, name):
        a = self._params.get(name)
        if a is None:
            shape, init, seed = self._param_specs[name]
            a = np.ascontiguousarray(init(np.random.default_rng(seed), shape, self.dtype),
                                     dtype=self.dtype)
            self._params[name] = a
        return a

    def _set_param(self, name, value):
        """Make value (already of the parameter's shape) the parameter's values: copied into
        the flat buffer's view when there is one, so the buffer stays the model's storage."""
        current = self._params.get(name)
        if self.__dict__.get("_flat") is not None and current is not None:
            current[...] = value
        else:
            self._params[name] = np.ascontiguousarray(value, dtype=self.dtype)

    def _accumulate(self, name, grad):
        """Add grad to the gradient of parameter name (gradients accumulate until zero_grad)."""
        current = self._grads.get(name)
        if current is None:
            self._grads[name] = np.array(grad, dtype=self.dtype, copy=True, order="C")
        else:
            current += grad

    def _named_slots(self, which):
        """(dotted name, module, local name) for every parameter ('params') or buffer."""
        for mname, m in self.named_modules():
            table = m._param_specs if which == "params" else m._buffers
            for key in table:
                yield (f"{mname}.{key}" if mname else key), m, key

    @property
    def params(self):
        """Dict-like view name -> parameter array; assigning an item updates the module."""
        return ParamView(self)

    @params.setter
    def params(self, values):
        self.load_state_dict(values, strict=True, buffers=False)

    @property
    def grads(self):
        """Dict name -> accumulated gradient (zeros for parameters with no gradient yet)."""
        out = OrderedDict()
        for name, m, key in self._named_slots("params"):
            g = m._grads.get(key)
            out[name] = g if g is not None else np.zeros(m._param_specs[key][0], dtype=m.dtype)
        return out

    def named_parameters(self):
        """Iterate (dotted name, array) over all parameters (draws them if needed)."""
        for name, m, key in self._named_slots("params"):
            yield name, m._param(key)

    def named_buffers(self):
        for name, m, key in self._named_slots("buffers"):
            yield name, m._buffers[key]

    def param_shapes(self):
        """OrderedDict dotted name -> shape, without drawing any parameter."""
        return OrderedDict((n, m._param_specs[k][0]) for n, m, k in self._named_slots("params"))

    def num_params(self):
        """Number of parameter elements (running statistics excluded), without drawing them."""
        return int(sum(int(np.prod(s, dtype=np.int64)) for s in self.param_shapes().values()))

    def zero_grad(self):
        """Forget accumulated gradients. Without a flat buffer the arrays are dropped (arrays
        handed out before are left untouched); with one (flat_parameters) they are views of
        it and are filled with zeros in place."""
        for m in self.modules():
            flat = m.__dict__.get("_flat") is not None
            for key, g in m._grads.items():
                if flat and g is not None:
                    g[...] = 0
                else:
                    m._grads[key] = None

    def flat_parameters(self):
        """All parameters and gradients of this module and its children as two contiguous
        1-D buffers: returns a minidl.nn.FlatParameters (``params``, ``grads``, ``slices``:
        dotted name -> slice; ``param(name)``, ``grad(name)``).

        The first call draws any parameter not drawn yet (see minidl.nn.init), copies the
        parameters and accumulated gradients into the buffers and makes every module's
        arrays views of them; later calls return the same object as long as that holds.
        Afterwards backward accumulates into ``grads``, zero_grad() zeroes it in place, and
        ``params[k] = v`` and load_state_dict() copy into ``params``. After astype() or a
        change of the parameters' names or shapes the next call builds new buffers (the
        current values copied in). Flatten the model you train, not one of its submodules
        as well: the last one flattened owns the arrays.
        """
        slots = list(self._named_slots("params"))
        cached = self.__dict__.get("_flat_root")
        if cached is not None and len(cached.names) == len(slots) and all(
                n == cn and m._params.get(k) is cached.param(n)
                and m._grads.get(k) is cached.grad(n)
                for (n, m, k), cn in zip(slots, cached.names)):
            return cached
        dtypes = {np.dtype(m.dtype) for _, m, _ in slots} or {np.dtype(self.dtype)}
        if len(dtypes) > 1:
            raise TypeError(f"{type(self).__name__}.flat_parameters: the modules mix "
                            f"{' and '.join(sorted(d.name for d in dtypes))}; call "
                            "model.astype(dtype) first")
        shapes = OrderedDict((n, m._param_specs[k][0]) for n, m, k in slots)
        flat = cached
        if flat is None or flat.layout != tuple(shapes.items()) or flat.dtype not in dtypes:
            flat = FlatParameters(shapes, dtypes.pop())
        for name, m, key in slots:
            np.copyto(flat.param(name), m._param(key))
            g = m._grads.get(key)
            if g is None:
                flat.grad(name)[...] = 0
            elif g is not flat.grad(name):
                np.copyto(flat.grad(name), g)
            m._params[key], m._grads[key] = flat.param(name), flat.grad(name)
            m.__dict__["_flat"] = flat
        self.__dict__["_flat_root"] = flat
        return flat

    # ------------------------------------------------------------------ structure, modes
    def named_children(self):
        return list(self._children.items())

    def children(self):
        return list(self._children.values())

    def named_modules(self, prefix=""):
        """Iterate (dotted name, module) over this module ('' ) and all descendants."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def train(self, mode=True):
        """Training mode (batch statistics, dropout on) for this module and its children."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (running statistics, dropout off)."""
        return self.train(False)

    def astype(self, dtype):
        """Convert parameters, gradients and buffers to float32 or float64; returns self."""
        dt = float_dtype(type(self).__name__, dtype)
        for m in self.modules():
            m.__dict__["dtype"] = dt
            m.__dict__["_flat"] = None  # new arrays: flat_parameters() builds new buffers
            for table in (m._params, m._buffers):
                for k, v in table.items():
                    table[k] = np.ascontiguousarray(v, dtype=dt)
            for k, g in m._grads.items():
                if g is not None:
                    m._grads[k] = np.ascontiguousarray(g, dtype=dt)
        return self

    # ------------------------------------------------------------------ running
    def forward(self, x):
        """x (N, ...) -> out (N, ...). The whole model's shapes are checked first, so an
        input it cannot take raises a ShapeError naming the first layer that fails."""
        name = type(self).__name__
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}.forward: x must be a NumPy array, got {type(x).__name__}")
        if x.dtype != self.dtype and self._has_state():
            raise TypeError(f"{name}.forward: x is {x.dtype} {x.shape} but the model's "
                            f"parameters are {np.dtype(self.dtype)}; cast x or call "
                            f"model.astype({np.dtype(x.dtype).name!r})")
        if x.ndim < 2:
            raise ValueError(f"{name}.forward: x must have a batch axis first, got shape "
                             f"{x.shape}")
        self.output_shape(x.shape[1:])
        out = self._forward(x)
        self.__dict__["_forward_done"] = True
        return out

    def __call__(self, x):
        return self.forward(x)

    def _has_state(self):
        """True when some module holds parameters or buffers (their dtype must match x's;
        a parameter-free model takes float32 and float64 alike)."""
        return any(m._param_specs or m._buffers for m in self.modules())

    def backward(self, dout):
        """dout (the output's shape) -> dx; parameter gradients accumulate into ``grads``."""
        if not self.__dict__.get("_forward_done"):
            raise RuntimeError(f"{type(self).__name__}.backward: call forward first (each "
                               "forward allows one backward)")
        self.__dict__["_forward_done"] = False
        return self._backward(dout)

    def _forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    # ------------------------------------------------------------------ inspection
    @contextlib.contextmanager
    def hooks(self, forward=None, backward=None):
        """Context manager: watch, or replace, what flows through this module.

        While active, ``forward(module, out)`` is called with this module's output after
        each of its forward passes, and ``backward(module, dout)`` with the gradient that
        arrives at its output before each of its backward passes; a hook that returns an
        array replaces the output (or the gradient), one that returns None changes nothing.
        Both fire whether the module runs on its own or inside a container (a Sequential,
        Residual, ...), so a hook on ``model.layer1[0].conv1`` sees that layer's feature
        maps during ``model.forward(x)``. Hooks nest (the innermost runs last) and are
        removed on exit, also after an error. Do not pickle the module inside the context.
        """
        for what, fn in (("forward", forward), ("backward", backward)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{type(self).__name__}.hooks: {what} must be callable or None, "
                                f"got {type(fn).__name__}")
        d = self.__dict__
        if "_hooks" not in d:
            # The instance's own _forward/_backward shadow the class's for the duration:
            # containers call children's _forward/_backward directly, so this reaches them.
            cls = type(self)

            def hooked_forward(x):
                out = cls._forward(self, x)
                for fwd, _ in list(d["_hooks"]):
                    if fwd is not None:
                        new = fwd(self, out)
                        out = out if new is None else new
                return out

            def hooked_backward(dout):
                for _, bwd in list(d["_hooks"]):
                    if bwd is not None:
                        new = bwd(self, dout)
                        dout = dout if new is None else new
                return cls._backward(self, dout)

            d["_hooks"] = []
            d["_forward"], d["_backward"] = hooked_forward, hooked_backward
        entry = (forward, backward)
        d["_hooks"].append(entry)
        try:
            yield self
        finally:
            hooks = d["_hooks"]
            del hooks[next(i for i, e in enumerate(hooks) if e is entry)]
            if not hooks:
                for key in ("_hooks", "_forward", "_backward"):
                    del d[key]

    @contextlib.contextmanager
    def inspecting(self):
        """Context manager for analysis passes (minidl.viz): inside, every module is in eval
        mode and starts with no accumulated parameter gradients; on exit each module's
        train/eval mode and its accumulated gradients are exactly what they were before
        (the gradients of backward passes run inside are dropped)."""
        saved = [(m, m.training, dict(m._grads)) for m in self.modules()]
        for m, _, grads in saved:
            m.__dict__["training"] = False
            m._grads.update(dict.fromkeys(grads))
        try:
            yield self
        finally:
            for m, training, grads in saved:
                m.__dict__["training"] = training
                m._grads.clear()
                m._grads.update(grads)

    def _take_cache(self):
        """The cache of the last forward, once (a second backward is an error)."""
        cache = self._cache
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward called without a forward "
                               "(or twice after one forward)")
        self.__dict__["_cache"] = None
        return cache

    # ------------------------------------------------------------------ shapes
    def output_shape(self, input_shape):
        """Output shape for one sample of shape input_shape (no batch axis), from shapes
        alone; raises ShapeError naming the first layer that cannot take its input."""
        shape = _as_shape(f"{type(self).__name__}.output_shape", input_shape)
        return self._infer(shape, _Inference(self))

    def trace_shapes(self, input_shape):
        """Shape inference that reports every layer: returns (output_shape, layers) for one
        sample of input_shape (no batch axis), layers a list of LayerTrace in execution order:
        one per leaf module and one per Concat join (residual additions have none). Draws no
        parameters; raises ShapeError as output_shape does. minidl.summary is built on it."""
        shape = _as_shape(f"{type(self).__name__}.trace_shapes", input_shape)
        layers = []
        out = self._infer(shape, _Inference(self, layers))
        return out, layers

    def _infer(self, shape, ctx):
        # Leaves: _out_shape, with its error turned into one that names the layer.
        try:
            out = tuple(self._out_shape(shape))
        except ShapeError:
            raise
        except (ValueError, TypeError) as e:
            raise ShapeError(f"{ctx.describe(self)} cannot take an input of shape {shape} "
                             f"(one sample, no batch axis): {e}") from None
        ctx.visit(self, shape, out)
        return out

    def _out_shape(self, shape):
        raise NotImplementedError(f"{type(self).__name__} does not implement _out_shape")

    def _describe(self, in_shape, out_shape):
        """Summary columns: dict with any of filters, kernel, stride, pad, flops."""
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """OrderedDict dotted name -> copy of every parameter and buffer (running statistics)."""
        state = OrderedDict((n, a.copy()) for n, a in self.named_parameters())
        state.update((n, a.copy()) for n, a in self.named_buffers())
        return state

    def load_state_dict(self, state, strict=True, buffers=True):
        """Load parameters (and buffers) from a dict name -> array, all or nothing.

        Every entry is checked before anything is assigned: a missing entry, an entry the
        model does not have (both only when strict) or an entry of another shape raises
        StateDictError naming the entry and both shapes, and the model is left unchanged.
        Values are copied and cast to the model's dtype.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, (dict, MutableMapping)) and not hasattr(state, "items"):
            raise TypeError(f"{owner}: state must be a dict name -> array, got "
                            f"{type(state).__name__}")
        slots = OrderedDict()
        for name, m, key in self._named_slots("params"):
            slots[name] = (m, key, "param", m._param_specs[key][0])
        if buffers:
            for name, m, key in self._named_slots("buffers"):
                slots[name] = (m, key, "buffer", m._buffers[key].shape)
        state = dict(state.items())
        problems, converted = [], {}
        for name, (m, key, what, shape) in slots.items():
            if name not in state:
                if strict:
                    problems.append(f"{name!r}: missing (the model's {what} has shape {shape}; "
                                    "the state has none)")
                continue
            try:
                value = np.array(state[name], dtype=m.dtype, copy=True, order="C")
            except (TypeError, ValueError) as e:
                problems.append(f"{name!r}: not a numeric array ({e})")
                continue
            if value.shape != tuple(shape):
                problems.append(f"{name!r}: the model's {what} has shape {tuple(shape)} but the "
                                f"state's has shape {value.shape}")
                continue
            converted[name] = value
        if strict:
            for name in state:
                if name not in slots:
                    problems.append(f"{name!r}: unexpected (the state's entry has shape "
                                    f"{np.shape(state[name])}; the model has no such entry)")
        if problems:
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise StateDictError(f"{owner}: {len(problems)} problem(s); nothing was loaded:\n  "
                                 + "\n  ".join(problems[:10]) + more)
        for name, value in converted.items():
            m, key, what, _ = slots[name]
            if what == "param":
                m._set_param(key, value)
            else:
                m._buffers[key] = value

    def save(self, path):
        """Write state_dict() to a .npz file at path (minidl's one model-file layout,
        minidl._io.save_npz: arrays by name plus JSON metadata), atomically; returns path."""
        return save_npz(path, self.state_dict(), {"class": type(self).__name__,
                                                  "dtype": np.dtype(self.dtype).name})

    def load(self, path, strict=True):
        """Read a file written by save() (or a plain .npz of a state dict) into this model,
        all or nothing (see load_state_dict); returns self."""
        owner = f"{type(self).__name__}.load"
        state, _ = load_npz(path, owner, StateDictError)
        self.load_state_dict(state, strict=strict)
        return self

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        return ""

    def _repr_head(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        if not self._children:
            return self._repr_head()
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._children.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class ParamView(MutableMapping):
    """A model's parameters as a dict name -> array; setting an item writes into the module.

    ``model.params[k] = new_w`` checks the shape, casts to the model's dtype and replaces
    the module's array, or copies into it when it is a view of the model's flat buffer (see
    Module.flat_parameters). Entries cannot be added or deleted.
    """

    def __init__(self, root):
        self._root_name = type(root).__name__
        self._slots = OrderedDict((n, (m, k)) for n, m, k in root._named_slots("params"))

    def __getitem__(self, name):
        m, key = self._slot(name)
        return m._param(key)

    def __setitem__(self, name, value):
        m, key = self._slot(name)
        shape = m._param_specs[key][0]
        if np.shape(value) != shape:
            raise ValueError(f"{self._root_name}.params[{name!r}]: the parameter has shape "
                             f"{shape} but the new value has shape {np.shape(value)}")
        m._set_param(key, value)

    def __delitem__(self, name):
        raise TypeError(f"{self._root_name}.params: parameters cannot be deleted")

    def __iter__(self):
        return iter(self._slots)

    def __len__(self):
        return len(self._slots)

    def __contains__(self, name):
        return name in self._slots

    def _slot(self, name):
        try:
            return self._slots[name]
        except KeyError:
            raise KeyError(f"{self._root_name}.params: no parameter named {name!r}") from None

    def __repr__(self):
        items = ", ".join(f"{k!r}: {m._param_specs[p][0]}" for k, (m, p) in self._slots.items())
        return f"ParamView({{{items}}})"
