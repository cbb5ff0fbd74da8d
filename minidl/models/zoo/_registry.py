"""The name -> builder registry behind minidl.models.zoo.get_model and list_models."""
import difflib
import functools
import inspect

import numpy as np

_BUILDERS = {}


def register(fn=None, *, name=None, input_size=224):
    """Register a builder under its function name (or name=). The registered builder also
    accepts dtype= (float32/float64), records the model's name in ``model.arch`` and its
    natural input (in_channels, input_size, input_size) in ``model.default_input``."""
    def wrap(fn):
        key = name or fn.__name__
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def build(*args, dtype=None, **kwargs):
            model = fn(*args, **kwargs)
            if dtype is not None:
                model.astype(np.dtype(dtype))
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            model.arch = key
            model.default_input = (bound.arguments.get("in_channels", 3), input_size, input_size)
            return model

        if key in _BUILDERS:
            raise ValueError(f"zoo: two builders named {key!r}")
        _BUILDERS[key] = build
        return build

    return wrap(fn) if fn is not None else wrap


def list_models():
    """Names of every registered architecture, sorted."""
    return sorted(_BUILDERS)


def get_model(name, **kwargs):
    """Build the architecture registered as name: get_model('resnet20', num_classes=10)."""
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), _BUILDERS, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Known models: "
                         f"{', '.join(list_models())}")
    try:
        return _BUILDERS[name](**kwargs)
    except TypeError as e:
        raise TypeError(f"{name}: {e}") from None
