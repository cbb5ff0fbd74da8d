"""FlatParameters: a model's parameters and gradients as two contiguous 1-D buffers (Torch7's
getParameters), of which every parameter and gradient array is a view.

    flat = model.flat_parameters()       # a minidl.nn.Module (ClassifierModel delegates)
    flat.params, flat.grads              # 1-D arrays of flat.size elements, one dtype
    flat.slices["fc.weight"]             # slice(offset, offset + size) into both buffers
    flat.param("fc.weight")              # the view of that shape the module computes with

The optimizer step, the checkpoint and a gradient allreduce then each take the whole model in
one call (``rule(flat.params, flat.grads, config)``, one array in the file, one
``Allreduce(IN_PLACE, flat.grads)``), with no copy per step. Models whose ``params`` is a plain
dict (the coursework models, a student's own) get the same buffers from
``bind_parameters(model)``: the dict's entries are replaced by the views, and an entry that
was assigned since (``model.params[k] = new_w``, or a new dict after ``model.load``) is copied
back into the buffer the next time the binding is asked for (once per step).
"""
from collections import OrderedDict

import numpy as np

__all__ = ["FlatParameters", "bind_parameters", "unflatten"]


def unflatten(buffer, shapes):
    """OrderedDict name -> view of that shape into a 1-D buffer holding the arrays of shapes
    (an ordered dict name -> shape) one after the other."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes.values()]
    if np.shape(buffer) != (sum(sizes),):
        raise ValueError(f"unflatten: expected a 1-D buffer of {sum(sizes)} elements, got "
                         f"shape {np.shape(buffer)}")
    out, offset = OrderedDict(), 0
    for (name, shape), size in zip(shapes.items(), sizes):
        out[name] = buffer[offset:offset + size].reshape(shape)
        offset += size
    return out


class FlatParameters:
    """Parameters and gradients of one model as two contiguous 1-D buffers.

    names (tuple, buffer order), shapes (name -> shape), slices (name -> slice of the buffers),
    dtype, size (elements), params and grads (1-D arrays of size elements), layout (tuple of
    (name, shape): two FlatParameters with equal layouts and dtypes are interchangeable).
    ``param(name)`` / ``grad(name)`` are the (cached) views of the parameter's shape.
    """

    def __init__(self, shapes, dtype):
        self.shapes = OrderedDict((n, tuple(int(s) for s in shape)) for n, shape in shapes.items())
        self.names = tuple(self.shapes)
        self.layout = tuple(self.shapes.items())
        self.dtype = np.dtype(dtype)
        self.slices, offset = OrderedDict(), 0
        for name, shape in self.shapes.items():
            size = int(np.prod(shape, dtype=np.int64))
            self.slices[name] = slice(offset, offset + size)
            offset += size
        self.size = offset
        self.params = np.zeros(offset, dtype=self.dtype)
        self.grads = np.zeros(offset, dtype=self.dtype)
        self._param_views = {n: self.params[s].reshape(self.shapes[n])
                             for n, s in self.slices.items()}
        self._grad_views = {n: self.grads[s].reshape(self.shapes[n])
                            for n, s in self.slices.items()}

    def param(self, name):
        """The view of parameter name (its own shape) into ``params``."""
        return self._param_views[name]

    def grad(self, name):
        """The view of the gradient of parameter name into ``grads``."""
        return self._grad_views[name]

    def param_views(self):
        """OrderedDict name -> parameter view, in buffer order."""
        return OrderedDict((n, self._param_views[n]) for n in self.names)

    def unflatten(self, buffer):
        """OrderedDict name -> view of that parameter's shape into a 1-D buffer laid out like
        ``params`` (e.g. a copy of it, or an array read from a checkpoint)."""
        return unflatten(buffer, self.shapes)

    def pack(self, arrays, owner="FlatParameters.pack"):
        """A new 1-D buffer laid out like ``params`` from a dict name -> array (shapes checked)."""
        out = np.empty(self.size, dtype=self.dtype)
        for name, s in self.slices.items():
            out[s] = self._checked(owner, "parameter", arrays, name).ravel()
        return out

    def set_params(self, arrays, owner="FlatParameters.set_params"):
        """Copy a dict name -> array into the parameter buffer (every name, shapes checked)."""
        values = [(self._param_views[n], self._checked(owner, "parameter", arrays, n))
                  for n in self.names]
        for view, value in values:
            np.copyto(view, value, casting="same_kind")

    def set_grads(self, grads, owner="FlatParameters.set_grads"):
        """Make ``grads`` hold a dict name -> gradient: an entry that already is its view (a
        module's accumulated gradient) costs nothing, any other is copied into its slot."""
        for name in self.names:
            view = self._grad_views[name]
            g = self._checked(owner, "gradient", grads, name)
            if g is not view:
                np.copyto(view, g, casting="same_kind")

    def _checked(self, owner, what, arrays, name):
        try:
            a = arrays[name]
        except KeyError:
            have = ", ".join(map(str, arrays)) or "none"
            raise KeyError(f"{owner}: no {what} for parameter {name!r} (got: {have})") from None
        if np.shape(a) != self.shapes[name]:
            raise ValueError(f"{owner}: the {what} of {name!r} has shape {np.shape(a)}, the "
                             f"parameter has shape {self.shapes[name]}")
        return a

    def is_bound_to(self, params):
        """True when the mapping params holds exactly this buffer's views."""
        views = self._param_views
        return len(params) == len(views) and all(params.get(n) is v for n, v in views.items())

    def __repr__(self):
        return (f"FlatParameters({len(self.names)} parameters, {self.size} elements, "
                f"{self.dtype.name})")


def _layout_of(params, owner):
    """(shapes, dtype) of a dict name -> array, with the checks an update rule would make."""
    shapes, dtypes = OrderedDict(), OrderedDict()
    for name, a in params.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{owner}: model.params[{name!r}] must be a NumPy array, got "
                            f"{type(a).__name__}")
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{owner}: model.params[{name!r}] is {a.dtype} {a.shape}; update "
                            "rules need float32 or float64 parameters")
        shapes[name] = a.shape
        dtypes.setdefault(a.dtype, name)
    if len(dtypes) > 1:
        mixed = " and ".join(f"{np.dtype(d).name} ({n!r})" for d, n in dtypes.items())
        raise TypeError(f"{owner}: model.params mixes {mixed}; give every parameter the "
                        "model's dtype")
    return shapes, next(iter(dtypes), np.dtype(np.float64))


def bind_parameters(model, previous=None, owner="Optimizer"):
    """The FlatParameters of a model, checked once (call it once per step).

    A model with ``flat_parameters()`` (minidl.nn modules, ClassifierModel) gives its own. For
    a model whose ``params`` is a dict name -> array: previous (the binding returned last time)
    when the dict still holds its views; else the dict's current arrays are copied into a
    buffer (previous's, when names, shapes and dtype are unchanged, so its buffers stay the
    same objects) and the dict's entries become the views.
    """
    own = getattr(model, "flat_parameters", None)
    if callable(own):
        return own()
    params = model.params
    if previous is not None and previous.is_bound_to(params):
        return previous
    shapes, dtype = _layout_of(params, owner)
    flat = previous
    if flat is None or flat.layout != tuple(shapes.items()) or flat.dtype != dtype:
        flat = FlatParameters(shapes, dtype)
    flat.set_params(params, owner)
    for name, view in flat.param_views().items():
        params[name] = view
    return flat
