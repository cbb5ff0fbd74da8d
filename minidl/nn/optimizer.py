"""Optimizer: an update rule of minidl.optim applied to a model's flat parameter buffer.

    opt = Optimizer(model, "adam", {"learning_rate": 1e-3})
    out = model.forward(x); model.backward(dout)   # gradients accumulate in the flat buffer
    opt.step()                                     # adam(flat.params, flat.grads, config)
    opt.zero_grad()

The one optimizer path of minidl: nn modules, ClassifierModel, the coursework models and the
Solver (which owns one) all update through it. The model's parameters are one contiguous
buffer (see minidl.nn.flat); ``step(grads)`` copies a coursework model's gradient dict into the
gradient buffer (a module's accumulated gradients already are it) and applies the rule.

An elementwise rule (``rule.elementwise``: minidl.optim's and minidl.compat.cs231n.optim's)
runs once on the whole buffer with one config: bit for bit what each parameter would get with
its own config, as the course keeps them. Any other function runs once per parameter on its
view, with its own config dict, as the course does. Either way the state lives in ``groups``
(one ParamGroup per config: its name, its slice of the buffer, its config), and ``configs``
shows it per parameter (in the elementwise case as read-only views: change learning rates
with ``scale_learning_rate`` or through ``groups``).
"""
import types
from collections import OrderedDict

import numpy as np

from .. import optim as _optim
from .flat import bind_parameters

__all__ = ["Optimizer", "ParamGroup", "resolve_update_rule"]

# The name of the one group of an elementwise rule (parameter names are never '*').
ALL_PARAMETERS = "*"


def resolve_update_rule(rule, owner="Optimizer"):
    """An update function (w, dw, config) -> (next_w, config), from a callable or a name in
    minidl.optim (UPDATE_RULES)."""
    if callable(rule):
        return rule
    if isinstance(rule, str):
        if rule in _optim.UPDATE_RULES:
            return getattr(_optim, rule)
        names = ", ".join(repr(n) for n in _optim.UPDATE_RULES)
        raise ValueError(f'{owner}: invalid update_rule "{rule}"; expected one of {names} or an '
                         "update function (w, dw, config) -> (next_w, config)")
    raise TypeError(f"{owner}: update_rule must be a function or a name in minidl.optim, got "
                    f"{type(rule).__name__}")


def rule_name(rule):
    """'module.qualname' of an update rule (what checkpoints record)."""
    return f"{getattr(rule, '__module__', '?')}.{getattr(rule, '__qualname__', repr(rule))}"


class ParamGroup:
    """Parameters that share one config: name ('*' for all of them, else a parameter name),
    the slice of the flat buffer they occupy, the shape the rule sees, and the config."""

    __slots__ = ("name", "slice", "shape", "config")

    def __init__(self, name, where, shape, config):
        self.name, self.slice, self.shape, self.config = name, where, shape, config

    def __repr__(self):
        return f"ParamGroup({self.name!r}, {self.slice}, {self.shape})"


class Optimizer:
    """Apply an update rule to every parameter of a model.

    model: a minidl.nn.Module, a ClassifierModel, or any object whose ``params`` is a dict
    name -> array (the coursework models); update_rule: 'sgd', 'sgd_momentum', 'rmsprop',
    'adam' or a function (w, dw, config) -> (next_w, config); optim_config: hyperparameters
    (e.g. {'learning_rate': 1e-3}), copied into each group's config. owner names the caller in
    error messages.
    """

    def __init__(self, model, update_rule="sgd", optim_config=None, owner="Optimizer"):
        self.model, self.owner = model, owner
        self.update_rule = resolve_update_rule(update_rule, owner)
        self.optim_config = dict(optim_config or {})
        self.elementwise = bool(getattr(self.update_rule, "elementwise", False))
        self._flat = bind_parameters(model, owner=owner)
        self._layout = self._flat.layout
        self.groups = self._new_groups(self._flat)

    def _new_groups(self, flat):
        if self.elementwise:
            return [ParamGroup(ALL_PARAMETERS, slice(0, flat.size), (flat.size,),
                               dict(self.optim_config))]
        return [ParamGroup(n, flat.slices[n], flat.shapes[n], dict(self.optim_config))
                for n in flat.names]

    # ------------------------------------------------------------------ the buffers
    def parameters(self):
        """The model's FlatParameters, re-bound if the model's arrays were replaced."""
        flat = bind_parameters(self.model, self._flat, self.owner)
        if flat is not self._flat:
            if flat.layout != self._layout:
                raise ValueError(f"{self.owner}: the model's parameters changed since the "
                                 f"optimizer was made ({len(self._layout)} parameters, "
                                 f"{self._flat.size} elements then; {len(flat.layout)}, "
                                 f"{flat.size} now); make a new optimizer")
            self._flat = flat
        return flat

    def gather_gradients(self, grads=None):
        """The FlatParameters whose ``grads`` holds this step's gradients: grads (a dict name
        -> array, e.g. from a coursework model's loss) copied in, or, when None, the
        gradients the model's modules accumulated there. A data-parallel run allreduces
        ``grads`` between this and apply_update."""
        flat = self.parameters()
        if grads is not None:
            flat.set_grads(grads, self.owner)
        return flat

    def apply_update(self, flat=None):
        """One update of every parameter from the gradient buffer: one rule call for an
        elementwise rule, else one per parameter."""
        flat = self.parameters() if flat is None else flat
        for group in self.groups:
            w = flat.params[group.slice].reshape(group.shape)
            dw = flat.grads[group.slice].reshape(group.shape)
            next_w, group.config = self.update_rule(w, dw, group.config)
            if np.shape(next_w) != group.shape:
                raise ValueError(f"{self.owner}: the update rule {rule_name(self.update_rule)} "
                                 f"returned shape {np.shape(next_w)} for {group.name!r}, whose "
                                 f"shape is {group.shape}")
            w[...] = next_w

    def step(self, grads=None):
        """gather_gradients(grads), then apply_update()."""
        self.apply_update(self.gather_gradients(grads))

    def zero_grad(self):
        """Zero the gradient buffer (every module's gradient is a view of it)."""
        self.parameters().grads.fill(0)

    # ------------------------------------------------------------------ configs, rates
    @property
    def configs(self):
        """OrderedDict parameter name -> its config. For an elementwise rule these are
        read-only views of the one group's config, with state arrays (velocity, m, v, ...)
        as views of the parameter's part of the group's arrays."""
        if not self.elementwise:
            return OrderedDict((g.name, g.config) for g in self.groups)
        flat, config = self._flat, self.groups[0].config
        out = OrderedDict()
        for name in flat.names:
            view = {}
            for k, v in config.items():
                if isinstance(v, np.ndarray) and v.shape == (flat.size,):
                    v = v[flat.slices[name]].reshape(flat.shapes[name])
                view[k] = v
            out[name] = types.MappingProxyType(view)
        return out

    def learning_rates(self):
        """The learning rates of the groups that have one (a list, possibly empty)."""
        return [g.config["learning_rate"] for g in self.groups if "learning_rate" in g.config]

    def scale_learning_rate(self, factor):
        """Multiply every learning rate by factor (the Solver's lr_decay)."""
        for g in self.groups:
            if "learning_rate" in g.config:
                g.config["learning_rate"] *= factor

    # ------------------------------------------------------------------ state
    def state(self):
        """(meta, arrays): the groups' configs as JSON-ready values and the state arrays as
        a dict '<group index>/<key>' -> array; load_state() takes them back."""
        groups, arrays = [], {}
        for i, g in enumerate(self.groups):
            config = {}
            for k, v in g.config.items():
                if isinstance(v, np.ndarray):
                    arrays[f"{i}/{k}"] = v
                elif isinstance(v, (np.integer, np.floating)):
                    config[k] = v.item()
                else:
                    config[k] = v
            groups.append({"name": g.name, "config": config,
                           "arrays": sorted(k for k, v in g.config.items()
                                            if isinstance(v, np.ndarray))})
        return {"elementwise": self.elementwise, "groups": groups}, arrays

    def check_state(self, meta, arrays):
        """A list of reasons why state (from state()) does not fit this optimizer."""
        names = [g["name"] for g in meta.get("groups", ())]
        if names != [g.name for g in self.groups]:
            if bool(meta.get("elementwise")) != self.elementwise:
                return ["the optimizer state is " + ("one group" if meta.get("elementwise")
                                                     else "per parameter") + ", this update "
                        "rule needs it " + ("as one group" if self.elementwise
                                            else "per parameter")]
            return [f"the optimizer state has groups {names[:3]}..., this optimizer "
                    f"{[g.name for g in self.groups][:3]}..."]
        problems = []
        for i, (g, saved) in enumerate(zip(self.groups, meta["groups"])):
            for k in saved.get("arrays", ()):
                shape = np.shape(arrays.get(f"{i}/{k}"))
                if shape != g.shape:
                    problems.append(f"optimizer state {g.name}/{k} has shape {shape}, the "
                                    f"parameters {g.shape}")
        return problems

    def load_state(self, meta, arrays):
        """Restore the configs saved by state() (check_state first)."""
        for i, (g, saved) in enumerate(zip(self.groups, meta["groups"])):
            config = dict(saved["config"])
            for k in saved.get("arrays", ()):
                config[k] = np.array(arrays[f"{i}/{k}"], copy=True)
            g.config = config

    def load_per_parameter_configs(self, configs):
        """Restore per-parameter configs (name -> config dict, the course's optim_configs).
        For an elementwise rule they become the one group's config: their hyperparameters
        must agree, and their state arrays are laid out like the flat buffer."""
        flat = self._flat
        missing = [n for n in flat.names if n not in configs]
        if missing:
            raise ValueError(f"{self.owner}: no optimizer config for {', '.join(missing[:3])}")
        if not self.elementwise:
            for g in self.groups:
                g.config = dict(configs[g.name])
            return
        first = configs[flat.names[0]] if flat.names else {}
        merged = {}
        for k, v in first.items():
            if isinstance(v, np.ndarray):
                merged[k] = flat.pack({n: configs[n][k] for n in flat.names}, self.owner)
                continue
            values = {repr(configs[n].get(k)) for n in flat.names}
            if len(values) > 1:
                raise ValueError(f"{self.owner}: the parameters' configs disagree on {k!r} "
                                 f"({', '.join(sorted(values))}); an elementwise update rule "
                                 "keeps one config")
            merged[k] = v
        self.groups[0].config = merged
