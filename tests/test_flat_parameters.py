"""The flat parameter and gradient view (Module.flat_parameters, nn.bind_parameters) and the
one optimizer path over it: elementwise rules on the whole buffer equal the per-parameter
course loop bit for bit, and every way of touching a model's parameters keeps the buffer."""
import copy
import pickle

import numpy as np
import pytest

from minidl import nn, optim
from minidl.compat.cs231n import optim as cs_optim
from minidl.losses import softmax_loss
from minidl.models import FullyConnectedNet, TwoLayerNet
from minidl.solver import Solver

from test_nn_modules import rand, tiny_net

RULES = [optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam]


def train_step(net, x, dout):
    net(x)
    net.backward(dout)


# ---------------------------------------------------------------------------- the view
def test_every_parameter_and_gradient_is_a_view_of_one_contiguous_buffer():
    net = tiny_net()
    flat = net.flat_parameters()
    assert flat.params.ndim == flat.grads.ndim == 1 and flat.params.flags.c_contiguous
    assert flat.size == net.num_params() == flat.params.size == flat.grads.size
    assert list(flat.slices) == list(net.param_shapes())
    offset = 0
    for name, shape in net.param_shapes().items():
        s = flat.slices[name]
        assert (s.start, s.stop) == (offset, offset + int(np.prod(shape)))
        offset = s.stop
        assert net.params[name].base is flat.params and net.params[name].shape == shape
        assert net.grads[name].base is flat.grads
        np.testing.assert_array_equal(flat.params[s].reshape(shape), net.params[name])
    assert net.flat_parameters() is flat  # later calls: the same object, the same buffers


def test_lazily_drawn_parameters_get_the_values_they_would_get_without_the_buffer():
    lazy, flattened = tiny_net(), tiny_net()
    assert flattened.fc._params == {}  # nothing drawn yet
    flat = flattened.flat_parameters()
    for name, value in lazy.params.items():
        np.testing.assert_array_equal(flat.param(name), value)


def test_backward_accumulates_into_the_buffer_and_zero_grad_zeroes_it_in_place():
    net, ref = tiny_net(), tiny_net()
    flat = net.flat_parameters()
    x, dout = rand(3, 2, 4, 4), rand(3, 4, seed=1)
    for _ in range(2):  # two backwards without zero_grad: gradients add up
        train_step(net, x, dout)
        train_step(ref, x, dout)
    for name, g in ref.grads.items():
        np.testing.assert_array_equal(flat.grad(name), g)
        assert np.any(g != 0)
    grads_before = flat.grads
    net.zero_grad()
    assert flat.grads is grads_before and not flat.grads.any()
    assert all(g.base is flat.grads for g in net.grads.values())
    train_step(net, x, dout)
    ref.zero_grad()
    train_step(ref, x, dout)
    for name, g in ref.grads.items():
        np.testing.assert_array_equal(flat.grad(name), g)


def test_assigning_and_loading_parameters_copy_into_the_buffer():
    net = tiny_net()
    flat = net.flat_parameters()
    new_w = rand(4, 12, seed=5)
    net.params["fc.weight"] = new_w                      # the course's Solver does this
    np.testing.assert_array_equal(flat.param("fc.weight"), new_w)
    assert net.params["fc.weight"] is flat.param("fc.weight")
    state = tiny_net(seed=9).state_dict()
    net.load_state_dict(state)
    for name in flat.names:
        np.testing.assert_array_equal(flat.param(name), state[name])
    np.testing.assert_array_equal(net.bn1.running_var, state["bn1.running_var"])
    assert net.flat_parameters() is flat


def test_astype_gives_new_buffers_of_the_new_dtype_with_the_same_values():
    net = tiny_net()
    before = net.flat_parameters().params.copy()
    net.astype(np.float32)
    flat = net.flat_parameters()
    assert flat.dtype == np.float32 and flat.params.dtype == np.float32
    np.testing.assert_array_equal(flat.params, before.astype(np.float32))
    assert net.params["conv1.weight"].base is flat.params


def test_copies_of_a_flattened_model_have_their_own_arrays():
    net = tiny_net()
    flat = net.flat_parameters()
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        np.testing.assert_array_equal(clone.params["fc.weight"], net.params["fc.weight"])
        clone.params["fc.weight"] = np.zeros((4, 12))
        assert np.any(flat.param("fc.weight") != 0)
        assert clone.flat_parameters() is not flat


def test_the_gradient_check_leaves_a_flattened_model_unchanged():
    net = tiny_net()
    flat = net.flat_parameters()
    before = flat.params.copy()
    nn.check_gradients(net, rand(2, 2, 4, 4)).assert_passed()
    np.testing.assert_array_equal(flat.params, before)
    assert net.params["fc.weight"].base is flat.params


# ---------------------------------------------------------------------------- rules on the buffer
@pytest.mark.parametrize("rule", RULES + [cs_optim.adam],
                         ids=lambda r: f"{r.__module__}.{r.__name__}")
def test_an_elementwise_rule_on_the_flat_buffer_equals_it_per_parameter_bit_for_bit(rule):
    assert rule.elementwise
    rng = np.random.default_rng(0)
    shapes = {"W1": (5, 4), "b1": (4,), "W2": (4, 3, 2), "b2": (1,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    flat_w = np.concatenate([p.ravel() for p in params.values()])
    configs = {k: {"learning_rate": 0.05} for k in shapes}
    flat_config = {"learning_rate": 0.05}
    for _ in range(4):
        grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
        for k in shapes:
            params[k], configs[k] = rule(params[k], grads[k], configs[k])
        flat_w, flat_config = rule(flat_w, np.concatenate([g.ravel() for g in grads.values()]),
                                   flat_config)
    # float64, bit for bit: the weights and every state array.
    assert flat_w.tobytes() == np.concatenate([p.ravel() for p in params.values()]).tobytes()
    for key, value in flat_config.items():
        if isinstance(value, np.ndarray):
            per = np.concatenate([configs[k][key].ravel() for k in shapes])
            assert value.tobytes() == per.tobytes(), key
        else:
            assert all(c[key] == value for c in configs.values()), key


def _course_loop(model, grads, configs, rule):
    """The course's Solver update: one rule call per parameter with its own config."""
    for p, w in list(model.params.items()):
        next_w, configs[p] = rule(w, grads[p], configs[p])
        model.params[p] = next_w


@pytest.mark.parametrize("rule", ["sgd_momentum", "adam"])
def test_the_optimizer_on_a_module_equals_the_course_loop(rule):
    net, ref = tiny_net(), tiny_net()
    opt = nn.Optimizer(net, rule, {"learning_rate": 1e-2})
    assert opt.elementwise and len(opt.groups) == 1
    configs = {k: {"learning_rate": 1e-2} for k in ref.params}
    x, y = rand(4, 2, 4, 4), np.array([0, 1, 2, 3])
    for _ in range(3):
        for model in (net, ref):
            model.zero_grad()
            _, dscores = softmax_loss(model(x), y)
            model.backward(dscores)
        opt.step()
        _course_loop(ref, ref.grads, configs, getattr(optim, rule))
    for name, value in ref.params.items():
        assert net.params[name].tobytes() == value.tobytes(), name
    key = "m" if rule == "adam" else "velocity"
    assert opt.configs["fc.weight"][key].shape == (4, 12)
    np.testing.assert_array_equal(opt.configs["fc.weight"][key], configs["fc.weight"][key])
    with pytest.raises(TypeError):
        opt.configs["fc.weight"]["learning_rate"] = 1.0   # read-only views of one config


def _fc(seed=0):
    return FullyConnectedNet([7, 6], input_dim=5, num_classes=3, weight_scale=0.3,
                             normalization="batchnorm", dtype=np.float64, seed=seed)


def test_a_coursework_model_trains_on_the_buffer_exactly_as_with_the_course_loop():
    rng = np.random.default_rng(1)
    data = {"X_train": rng.standard_normal((40, 5)), "y_train": rng.integers(0, 3, 40),
            "X_val": rng.standard_normal((10, 5)), "y_val": rng.integers(0, 3, 10)}

    def adam_per_parameter(w, dw, config):  # not marked elementwise: one call per parameter
        return optim.adam(w, dw, config)

    runs = []
    for rule in (optim.adam, adam_per_parameter):
        solver = Solver(_fc(), data, update_rule=rule, optim_config={"learning_rate": 1e-2},
                        num_epochs=3, batch_size=10, verbose=False, seed=0)
        solver.train(return_best_params=False)
        runs.append(solver)
    flat_run, per_parameter = runs
    assert flat_run.optimizer.elementwise and not per_parameter.optimizer.elementwise
    assert len(per_parameter.optimizer.groups) == len(flat_run.model.params)
    assert flat_run.loss_history == per_parameter.loss_history
    for name, value in per_parameter.model.params.items():
        assert flat_run.model.params[name].tobytes() == value.tobytes(), name
    flat = flat_run.optimizer.parameters()
    assert all(v.base is flat.params for v in flat_run.model.params.values())


def test_a_dict_model_whose_arrays_are_replaced_is_bound_again():
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2, dtype=np.float64, seed=0)
    opt = nn.Optimizer(model, "sgd", {"learning_rate": 0.5})
    flat = opt.parameters()
    assert model.params["W1"] is flat.param("W1")
    model.params["W1"] = np.ones((4, 3))                       # assignment, as users do
    grads = {k: np.ones_like(v) for k, v in model.params.items()}
    opt.step(grads)
    np.testing.assert_array_equal(model.params["W1"], np.full((4, 3), 0.5))
    assert model.params["W1"] is flat.param("W1") and opt.parameters() is flat
    model.params = {k: np.zeros_like(v) for k, v in model.params.items()}  # a new dict
    opt.step(grads)
    np.testing.assert_array_equal(flat.params, np.full(flat.size, -0.5))
    assert all(v.base is flat.params for v in model.params.values())


def test_a_classifier_model_with_l2_updates_through_the_module_buffer():
    net, ref = tiny_net(), tiny_net()
    model, ref_model = nn.ClassifierModel(net, reg=0.1), nn.ClassifierModel(ref, reg=0.1)
    opt = nn.Optimizer(model, "rmsprop", {"learning_rate": 1e-2})
    configs = {k: {"learning_rate": 1e-2} for k in ref.params}
    X, y = rand(5, 2, 4, 4), np.array([0, 1, 2, 3, 1])
    for _ in range(2):
        _, grads = model.loss(X, y)
        assert grads["fc.bias"] is opt.parameters().grad("fc.bias")   # already in the buffer
        opt.step(grads)
        _, ref_grads = ref_model.loss(X, y)
        _course_loop(ref_model, ref_grads, configs, optim.rmsprop)
    for name, value in ref.params.items():
        assert net.params[name].tobytes() == value.tobytes(), name


def test_the_optimizer_names_what_is_wrong():
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2, dtype=np.float64, seed=0)
    opt = nn.Optimizer(model, "sgd")
    with pytest.raises(KeyError, match=r"Optimizer: no gradient for parameter 'b2'"):
        opt.step({k: np.zeros_like(v) for k, v in model.params.items() if k != "b2"})
    with pytest.raises(ValueError, match=r"the gradient of 'W1' has shape \(3, 4\), the "
                                         r"parameter has shape \(4, 3\)"):
        opt.step({k: np.zeros_like(v.T) for k, v in model.params.items()})
    model.params = {"W1": np.zeros((2, 2))}
    with pytest.raises(ValueError, match="the model's parameters changed since the optimizer"):
        opt.step()
    mixed = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2, dtype=np.float64, seed=0)
    mixed.params["b1"] = mixed.params["b1"].astype(np.float32)
    with pytest.raises(TypeError, match=r"model.params mixes float64 \('W1'\) and float32 "
                                        r"\('b1'\)"):
        nn.Optimizer(mixed)
    mixed.params["b1"] = np.zeros(3, dtype=np.int64)
    with pytest.raises(TypeError, match=r"model.params\['b1'\] is int64"):
        nn.Optimizer(mixed)
