"""minidl.compat.cs231n has the course's package layout: each module exports the course's
names (the union of the 2017-2024 editions), star imports re-export what the course's do, every
name the single module had still imports from the package, and `import cs231n.X` resolves to
minidl through alias() or the installed forwarder."""
import importlib
import os
import pathlib
import subprocess
import sys

import pytest

import minidl.compat.cs231n as cs

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The course's public names per module (functions and classes the module defines), 2017-2024.
COURSE_NAMES = {
    "layers": ["affine_forward", "affine_backward", "relu_forward", "relu_backward",
               "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
               "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
               "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
               "max_pool_backward_naive", "spatial_batchnorm_forward",
               "spatial_batchnorm_backward", "spatial_groupnorm_forward",
               "spatial_groupnorm_backward", "svm_loss", "softmax_loss"],
    "fast_layers": ["conv_forward_im2col", "conv_forward_strides", "conv_backward_strides",
                    "conv_backward_im2col", "conv_forward_fast", "conv_backward_fast",
                    "conv_forward_pytorch", "conv_backward_pytorch", "max_pool_forward_fast",
                    "max_pool_backward_fast", "max_pool_forward_reshape",
                    "max_pool_backward_reshape", "max_pool_forward_im2col",
                    "max_pool_backward_im2col"],
    "layer_utils": ["affine_relu_forward", "affine_relu_backward", "conv_relu_forward",
                    "conv_relu_backward", "conv_bn_relu_forward", "conv_bn_relu_backward",
                    "conv_relu_pool_forward", "conv_relu_pool_backward"],
    "optim": ["sgd", "sgd_momentum", "rmsprop", "adam"],
    "solver": ["Solver"],
    "gradient_check": ["eval_numerical_gradient", "eval_numerical_gradient_array",
                       "eval_numerical_gradient_blobs", "eval_numerical_gradient_net",
                       "grad_check_sparse"],
    "data_utils": ["load_pickle", "load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data",
                   "load_tiny_imagenet", "load_models", "load_imagenet_val"],
    "vis_utils": ["visualize_grid", "vis_grid", "vis_nn"],
    "im2col": ["get_im2col_indices", "im2col_indices", "col2im_indices"],
    "classifiers.fc_net": ["TwoLayerNet", "FullyConnectedNet"],
    "classifiers.cnn": ["ThreeLayerConvNet"],
}
# What the course's modules re-export through `from .x import *`.
RE_EXPORTS = {
    "fast_layers": ["im2col"],
    "layer_utils": ["layers", "fast_layers", "im2col"],
    "classifiers.fc_net": ["layers", "layer_utils", "fast_layers", "im2col"],
    "classifiers.cnn": ["layers", "fast_layers", "layer_utils", "im2col"],
}
# Every name `from minidl.compat.cs231n import X` gave when it was one module.
SINGLE_MODULE_NAMES = [
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss",
    "svm_loss", "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
    "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward", "conv_forward_fast",
    "conv_backward_fast", "conv_forward_im2col", "conv_backward_im2col", "conv_forward_strides",
    "conv_backward_strides", "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape", "max_pool_forward_im2col",
    "max_pool_backward_im2col", "affine_relu_forward", "affine_relu_backward",
    "conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward",
    "conv_relu_pool_backward", "conv_bn_relu_forward", "conv_bn_relu_backward", "sgd",
    "sgd_momentum", "rmsprop", "adam", "Solver", "TwoLayerNet", "FullyConnectedNet",
    "ThreeLayerConvNet", "eval_numerical_gradient", "eval_numerical_gradient_array",
    "rel_error",
]


def _module(name):
    return importlib.import_module(f"minidl.compat.cs231n.{name}")


@pytest.mark.parametrize("name", sorted(COURSE_NAMES))
def test_each_module_exports_exactly_the_course_names(name):
    module = _module(name)
    expected = list(COURSE_NAMES[name])
    for source in RE_EXPORTS.get(name, []):
        expected += [n for n in COURSE_NAMES[source] if n not in expected]
    assert sorted(module.__all__) == sorted(expected)
    assert module.__all__[:len(COURSE_NAMES[name])] == COURSE_NAMES[name]  # own names first
    for n in module.__all__:
        assert callable(getattr(module, n)), f"{name}.{n}"


def test_star_import_of_fc_net_brings_the_layer_functions_as_the_course_does():
    namespace = {}
    exec("from minidl.compat.cs231n.classifiers.fc_net import *", namespace)
    for n in ("FullyConnectedNet", "batchnorm_forward", "dropout_forward", "layernorm_forward",
              "affine_relu_forward"):
        assert n in namespace
    assert "np" not in namespace and "_cw" not in namespace


@pytest.mark.parametrize("name", SINGLE_MODULE_NAMES)
def test_every_name_of_the_single_module_still_imports_from_the_package(name):
    assert callable(getattr(cs, name))
    assert name in cs.__all__


def test_package_names_are_the_modules_objects():
    assert cs.affine_forward is cs.layers.affine_forward
    assert cs.conv_forward_fast is cs.fast_layers.conv_forward_fast
    assert cs.Solver is cs.solver.Solver
    assert cs.FullyConnectedNet is cs.classifiers.fc_net.FullyConnectedNet
    assert cs.get_CIFAR10_data is cs.data_utils.get_CIFAR10_data


def _run(code, cwd, **env):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        **env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=environment, timeout=120)


COURSE_IMPORTS = """
from cs231n.classifiers.fc_net import *
from cs231n.classifiers.cnn import ThreeLayerConvNet
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.layers import *
from cs231n.fast_layers import *
from cs231n.layer_utils import conv_relu_pool_forward
from cs231n.solver import Solver
from cs231n.vis_utils import visualize_grid
from cs231n.optim import sgd_momentum
from cs231n.im2col import im2col_indices
import cs231n.layers, minidl.compat.cs231n.layers as ours
assert cs231n.layers is ours and FullyConnectedNet.__module__.startswith('minidl.compat')
print('ok')
"""


def test_alias_makes_the_course_imports_resolve_to_minidl(tmp_path):
    r = _run("import minidl.compat.cs231n as c; c.alias()\n" + COURSE_IMPORTS, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_install_writes_a_forwarder_that_unmodified_course_code_imports(tmp_path):
    r = subprocess.run([sys.executable, "-m", "minidl.compat.cs231n", "install", str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert "Undo" in r.stdout
    package = tmp_path / "cs231n"
    assert (package / "__init__.py").is_file()
    assert os.access(package / "datasets" / "get_datasets.sh", os.X_OK)
    r = _run(COURSE_IMPORTS, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    # running it again updates the forwarder; it does not refuse its own files
    assert cs.install(tmp_path) == [str(package / "__init__.py")]


def test_install_refuses_to_shadow_a_students_package_unless_forced(tmp_path):
    package = tmp_path / "cs231n"
    package.mkdir()
    (package / "layers.py").write_text("def affine_forward(x, w, b):\n    pass\n")
    (package / "__init__.py").write_text("# the student's package\n")
    r = subprocess.run([sys.executable, "-m", "minidl.compat.cs231n", "install", str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and "already holds a cs231n package (layers.py)" in r.stderr
    assert (package / "__init__.py").read_text() == "# the student's package\n"
    written = cs.install(tmp_path, force=True)
    assert str(package / "__init__.py.orig") in written
    assert (package / "__init__.py.orig").read_text() == "# the student's package\n"
    assert (package / "layers.py").is_file()  # the student's code is left in place
    r = _run(COURSE_IMPORTS, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
