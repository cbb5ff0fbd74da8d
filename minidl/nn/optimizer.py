"""Optimizer: the update rules of minidl.optim applied to a module's parameters.

    opt = Optimizer(model, "adam", {"learning_rate": 1e-3})
    out = model.forward(x); model.backward(dout)   # gradients accumulate in model.grads
    opt.step()                                     # w, config = adam(w, dw, config) per parameter
    opt.zero_grad()

Each parameter keeps its own config dict (momentum, Adam moments, step count), exactly as the
coursework Solver keeps ``optim_configs``, so a module trains the same way a coursework model
does. New weights are written back through ``model.params[name] = next_w``.
"""
from .. import optim as _optim

_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")


def resolve_update_rule(rule, owner="Optimizer"):
    """An update function (w, dw, config) -> (next_w, config), from a callable or a name."""
    if callable(rule):
        return rule
    if isinstance(rule, str) and rule in _RULES:
        return getattr(_optim, rule)
    raise ValueError(f"{owner}: update_rule must be one of {', '.join(map(repr, _RULES))} or a "
                     f"function (w, dw, config) -> (next_w, config), got {rule!r}")


class Optimizer:
    """Apply a minidl.optim rule to every parameter of a module.

    module: a minidl.nn.Module; update_rule: 'sgd', 'sgd_momentum', 'rmsprop', 'adam' or a
    function; optim_config: hyperparameters (e.g. {'learning_rate': 1e-3}), copied per
    parameter. ``configs`` holds the per-parameter state.
    """

    def __init__(self, module, update_rule="sgd", optim_config=None):
        self.module = module
        self.update_rule = resolve_update_rule(update_rule)
        self.optim_config = dict(optim_config or {})
        self.configs = {name: dict(self.optim_config) for name in module.param_shapes()}

    def step(self, grads=None):
        """One update of every parameter from grads (default: the module's accumulated grads)."""
        params = self.module.params
        grads = self.module.grads if grads is None else grads
        for name in params:
            next_w, self.configs[name] = self.update_rule(params[name], grads[name],
                                                          self.configs[name])
            params[name] = next_w

    def zero_grad(self):
        self.module.zero_grad()

    def scale_learning_rate(self, factor):
        """Multiply every parameter's learning rate by factor (the Solver's lr_decay)."""
        for config in self.configs.values():
            if "learning_rate" in config:
                config["learning_rate"] *= factor
