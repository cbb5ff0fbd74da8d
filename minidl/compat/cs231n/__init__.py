"""Stanford CS231n assignment 2 names and signatures over minidl's implementations.

A package with the layout of the course's ``cs231n/`` (the union of the 2017-2024 editions):

    layers, fast_layers, layer_utils, im2col      layer functions (minidl.layers)
    optim, solver, gradient_check                 minidl.optim, minidl.solver, minidl.gradcheck
    data_utils, vis_utils                         minidl.data.cifar10, minidl.viz
    classifiers.fc_net, classifiers.cnn           minidl.models.coursework

Each module has the course's public names (its ``__all__``: its own names, then those the
course's module re-exports through ``from .layers import *`` and the like), and every
function calls a minidl implementation: nothing is computed twice. Everything is also
importable from this package itself (``from minidl.compat.cs231n import affine_forward``).

Running the course's own notebooks unchanged: ``python -m minidl.compat.cs231n install DIR``
writes DIR/cs231n/, a package whose ``import cs231n.layers`` (and the rest) resolves to
this one; or call ``alias()`` in the process (see assignments/README.md).

Where CS231n differs from EECS 498 (and so from the rest of minidl), these names follow
CS231n (2018 onwards):

- arrays follow NumPy's type promotion: integer, bool and mixed-precision arrays are accepted
  and computed in the dtype NumPy would give (minidl.layers is strict; see ``_promote``);
- dropout_forward: dropout_param['p'] is the probability of KEEPING a unit;
  FullyConnectedNet takes dropout_keep_ratio (2022) or dropout (2018-2021), the same setting;
- the models' L2 regularisation is 0.5 * reg * sum(W^2) (EECS 498: reg * sum(W^2));
- rel_error is CS231n's elementwise max |x - y| / max(1e-8, |x| + |y|);
- Solver takes update_rule as a name in cs231n.optim and samples minibatches with
  replacement;
- spatial_groupnorm_forward takes gamma and beta of shape (1, C, 1, 1) (or (C,)).

The "fast" convolutions are all minidl's FastConv (no separate build step); the max pool
variants are all FastMaxPool.
"""
import importlib as _importlib
import os as _os
import sys as _sys

from ...gradcheck import rel_error_max as rel_error  # CS231n's definition, not EECS 498's
from . import (classifiers, data_utils, fast_layers, gradient_check, im2col, layer_utils,
               layers, optim, solver, vis_utils)
from .classifiers import cnn as _cnn
from .classifiers import fc_net as _fc_net
from .classifiers.cnn import ThreeLayerConvNet
from .classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from .data_utils import *  # noqa: F401,F403
from .gradient_check import *  # noqa: F401,F403
from .layer_utils import *  # noqa: F401,F403 (also layers, fast_layers, im2col)
from .optim import *  # noqa: F401,F403
from .solver import Solver
from .vis_utils import *  # noqa: F401,F403

# The course's modules, as dotted names under the package.
MODULES = ("layers", "fast_layers", "layer_utils", "optim", "solver", "gradient_check",
           "data_utils", "vis_utils", "im2col", "classifiers", "classifiers.fc_net",
           "classifiers.cnn")


def _all_names():
    names = []
    for module in (layer_utils, optim, solver, gradient_check, data_utils, vis_utils, _fc_net,
                   _cnn):
        names += [n for n in module.__all__ if n not in names]
    return names + ["rel_error", "alias", "install"]


__all__ = _all_names()

_FORWARDER_MARK = "# minidl cs231n forwarder"


def alias(name="cs231n", datasets=None):
    """Make ``import cs231n`` and ``import cs231n.<module>`` (every module of MODULES) resolve
    to this package and its modules, in this process.

    Call it before the first ``import cs231n...``: a module imported earlier keeps what it
    bound. datasets: a folder to search first for the data sets (the course keeps them in
    cs231n/datasets; see data_utils). Returns this package.
    """
    package = _sys.modules[__name__]
    _sys.modules[name] = package
    for module in MODULES:
        _sys.modules[f"{name}.{module}"] = _importlib.import_module(f"{__name__}.{module}")
    if datasets is not None:
        folder = _os.path.abspath(_os.fspath(datasets))
        if folder in data_utils._datasets_dirs:
            data_utils._datasets_dirs.remove(folder)
        data_utils._datasets_dirs.insert(0, folder)
    return package


_INIT_TEMPLATE = '''{mark}: written by `python -m minidl.compat.cs231n install`.
"""The course's `cs231n` package, answered by minidl: `import cs231n.layers` (and every
other module of the course's package) resolves to minidl.compat.cs231n. Data sets are looked
for in the datasets/ folder beside this file first. To undo, delete this file (and rename
__init__.py.orig back, if the installer left one)."""
import os as _os

import minidl.compat.cs231n as _cs231n

_cs231n.alias(__name__, datasets=_os.path.join(_os.path.dirname(__file__), "datasets"))
'''

_DOWNLOAD_SCRIPTS = {
    "get_datasets.sh": ("CIFAR-10 (python version)", "cifar-10-batches-py",
                        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "get_imagenet_val.sh": ("the course's 25 ImageNet validation images",
                            "imagenet_val_25.npz",
                            "http://cs231n.stanford.edu/imagenet_val_25.npz"),
}


def _download_script(what, result, url):
    archive = url.rsplit("/", 1)[1]
    unpack = (f"tar -xzf {archive} && rm {archive}\n" if archive.endswith(".tar.gz") else "")
    return (f"#!/bin/sh\n# Downloads {what} into the folder of this script, as the course's\n"
            f"# script of the same name does. Written by minidl's cs231n installer.\n"
            f"set -e\ncd \"$(dirname \"$0\")\"\n"
            f"if [ -e {result} ]; then echo \"{result} is already here\"; exit 0; fi\n"
            f"if command -v wget >/dev/null 2>&1; then wget -O {archive} {url}\n"
            f"else curl -L -o {archive} {url}; fi\n{unpack}")


def install(directory, force=False):
    """Write DIR/cs231n/, a package that forwards the course's ``import cs231n.X`` to this
    package, so that a course notebook run from DIR uses minidl unchanged.

    Writes DIR/cs231n/__init__.py (it calls ``alias``) and, when absent,
    DIR/cs231n/datasets/get_datasets.sh and get_imagenet_val.sh (the course's download
    commands; the data sets are looked for in that datasets/ folder first). An existing
    forwarder is rewritten. When DIR/cs231n already holds another package (the course's
    own, with a student's code), nothing is written unless force=True: the forwarder would
    shadow that code (its __init__.py, if not empty, is kept as __init__.py.orig).

    Returns the list of paths written.
    """
    package = _os.path.join(_os.fspath(directory), "cs231n")
    init = _os.path.join(package, "__init__.py")
    existing = None
    if _os.path.isfile(init):
        with open(init, encoding="utf-8", errors="replace") as f:
            existing = f.read()
    is_forwarder = existing is not None and existing.startswith(_FORWARDER_MARK)
    others = sorted(n for n in (_os.listdir(package) if _os.path.isdir(package) else [])
                    if n.endswith(".py") and n != "__init__.py")
    if not is_forwarder and (others or (existing or "").strip()) and not force:
        held = ", ".join(others[:4] + (["..."] if len(others) > 4 else [])) or "__init__.py"
        raise FileExistsError(
            f"install: {package} already holds a cs231n package ({held}). The forwarder "
            "would make `import cs231n...` use minidl instead of that code. Install into "
            "another folder (and run the notebook from there), or pass --force to write the "
            "forwarder into this one (a non-empty __init__.py is kept as __init__.py.orig; "
            "delete the new __init__.py to undo).")
    written = []
    _os.makedirs(_os.path.join(package, "datasets"), exist_ok=True)
    if existing is not None and existing.strip() and not is_forwarder:
        _os.replace(init, init + ".orig")
        written.append(init + ".orig")
    with open(init, "w", encoding="utf-8") as f:
        f.write(_INIT_TEMPLATE.format(mark=_FORWARDER_MARK))
    written.append(init)
    for script, spec in _DOWNLOAD_SCRIPTS.items():
        path = _os.path.join(package, "datasets", script)
        if not _os.path.exists(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(_download_script(*spec))
            _os.chmod(path, 0o755)
            written.append(path)
    return written
