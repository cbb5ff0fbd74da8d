"""Solver (EECS 498-007 A3 training loop): overfitting, histories, RNG, checkpoints, errors."""
import os

import numpy as np
import pytest

from minidl import optim
from minidl.data import load_digits
from minidl.models import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from minidl.solver import Solver, read_checkpoint


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def small(digits):
    """50 training images, as the course's overfitting check uses."""
    return {"X_train": digits["X_train"][:50], "y_train": digits["y_train"][:50],
            "X_val": digits["X_val"], "y_val": digits["y_val"]}


def _tiny_data(seed=0, n_train=40, n_val=20, D=6, C=3):
    rng = np.random.default_rng(seed)
    return {"X_train": rng.standard_normal((n_train, D)), "y_train": rng.integers(0, C, n_train),
            "X_val": rng.standard_normal((n_val, D)), "y_val": rng.integers(0, C, n_val)}


def _tiny_model(seed=0):
    return TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=3, weight_scale=0.1,
                       dtype=np.float64, seed=seed)


def test_overfits_50_images_with_a_small_fully_connected_net(small):
    model = FullyConnectedNet([100, 100], input_dim=64, num_classes=10, weight_scale=5e-2,
                              seed=0)
    solver = Solver(model, small, update_rule=optim.adam, optim_config={"learning_rate": 3e-3},
                    num_epochs=20, batch_size=25, verbose=False, seed=0)
    solver.train()
    assert solver.check_accuracy(small["X_train"], small["y_train"]) == 1.0
    assert solver.train_acc_history[-1] == 1.0


def test_overfits_50_images_with_three_layer_convnet(small):
    model = ThreeLayerConvNet(input_dims=(1, 8, 8), num_filters=8, filter_size=3, hidden_dim=50,
                              weight_scale=1e-1, seed=0)
    solver = Solver(model, small, update_rule="adam", optim_config={"learning_rate": 5e-3},
                    num_epochs=20, batch_size=25, verbose=False, seed=0)
    solver.train()
    assert solver.check_accuracy(small["X_train"], small["y_train"]) == 1.0


def test_histories_have_one_entry_per_iteration_and_per_check():
    data = _tiny_data()
    solver = Solver(_tiny_model(), data, num_epochs=3, batch_size=10, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 3 * (40 // 10)
    assert all(isinstance(v, float) for v in solver.loss_history)
    # First iteration, then the end of each epoch.
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 1 + 3
    assert solver.epoch == 3
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_best_params_are_put_back_into_the_model():
    solver = Solver(_tiny_model(), _tiny_data(), update_rule="sgd",
                    optim_config={"learning_rate": 0.5}, num_epochs=4, batch_size=10,
                    verbose=False, seed=1)
    solver.train()
    assert set(solver.best_params) == set(solver.model.params)
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(solver.model.params[k], v)
        assert solver.model.params[k] is not v  # a copy: later in-place updates stay local


def test_return_best_params_false_keeps_the_last_params():
    def sgd_recording(w, dw, config):
        next_w, config = optim.sgd(w, dw, config)
        config["last"] = next_w.copy()  # each parameter has its own config dict
        return next_w, config

    solver = Solver(_tiny_model(), _tiny_data(), update_rule=sgd_recording,
                    optim_config={"learning_rate": 0.5}, num_epochs=3, batch_size=10,
                    verbose=False, seed=1)
    solver.train(return_best_params=False)
    for k, v in solver.model.params.items():
        np.testing.assert_array_equal(v, solver.optim_configs[k]["last"])


def test_lr_decay_multiplies_every_learning_rate_once_per_epoch():
    solver = Solver(_tiny_model(), _tiny_data(), update_rule="sgd_momentum",
                    optim_config={"learning_rate": 0.1}, lr_decay=0.5, num_epochs=3,
                    batch_size=10, verbose=False, seed=0)
    solver.train()
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.1 * 0.5 ** 3)
        assert "velocity" in config  # each parameter keeps its own optimizer state
    assert solver.optim_config == {"learning_rate": 0.1}  # the template is not modified


def test_update_rule_by_name_equals_update_rule_by_function():
    histories = []
    for rule in ("rmsprop", optim.rmsprop):
        solver = Solver(_tiny_model(), _tiny_data(), update_rule=rule, num_epochs=2,
                        batch_size=10, verbose=False, seed=3)
        solver.train()
        histories.append(solver.loss_history)
    assert histories[0] == histories[1]


def test_seed_makes_minibatch_order_reproducible():
    def run(seed):
        solver = Solver(_tiny_model(), _tiny_data(), num_epochs=2, batch_size=10,
                        verbose=False, seed=seed)
        solver.train()
        return solver.loss_history

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_without_seed_numpy_global_seed_makes_runs_reproducible():
    def run():
        np.random.seed(123)
        solver = Solver(_tiny_model(), _tiny_data(), num_epochs=2, batch_size=10, verbose=False)
        solver.train()
        return solver.loss_history

    assert run() == run()


class _OracleModel:
    """Predicts the true label for the first `n_right` rows of a fixed data set."""

    def __init__(self, X, y, n_right, C=4):
        self.params = {}
        self.X, self.y, self.n_right, self.C = X, y, n_right, C
        self.calls = []

    def loss(self, X, y=None):
        self.calls.append(len(X))
        rows = X[:, 0].astype(int)  # column 0 holds the row index
        pred = np.where(rows < self.n_right, self.y[rows], (self.y[rows] + 1) % self.C)
        return np.eye(self.C)[pred]


def test_check_accuracy_scores_in_batches_and_counts_exactly():
    N = 23
    X = np.arange(N, dtype=np.float64)[:, None]
    y = np.arange(N) % 4
    model = _OracleModel(X, y, n_right=17)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, verbose=False)
    acc = solver.check_accuracy(X, y, batch_size=5)
    assert acc == pytest.approx(17 / 23)
    assert model.calls == [5, 5, 5, 5, 3]


def test_check_accuracy_subsamples_num_samples_rows():
    N = 30
    X = np.arange(N, dtype=np.float64)[:, None]
    y = np.arange(N) % 4
    model = _OracleModel(X, y, n_right=N)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, verbose=False)
    assert solver.check_accuracy(X, y, num_samples=7) == 1.0
    assert sum(model.calls) == 7


def test_checkpoints_are_written_each_check(tmp_path):
    name = str(tmp_path / "run")
    solver = Solver(_tiny_model(), _tiny_data(), num_epochs=2, batch_size=20, verbose=False,
                    seed=0, checkpoint_name=name)
    solver.train()
    files = sorted(os.listdir(tmp_path))
    # The course's <name>_epoch_<k> files, in minidl's checkpoint format (.npz, no pickle).
    assert files == ["run_epoch_0.npz", "run_epoch_1.npz", "run_epoch_2.npz"]
    ckpt = read_checkpoint(tmp_path / "run_epoch_2.npz")
    assert ckpt["epoch"] == 2
    assert ckpt["loss_history"] == solver.loss_history
    assert set(ckpt["params"]) == set(solver.model.params)
    for k, v in ckpt["params"].items():
        np.testing.assert_array_equal(v, solver.optimizer.parameters().param(k))


def test_time_limit_stops_training_early(capsys):
    solver = Solver(_tiny_model(), _tiny_data(), num_epochs=1000, batch_size=10, seed=0,
                    print_every=10**9)
    solver.train(time_limit=0.0)
    assert len(solver.loss_history) == 1
    assert "time limit" in capsys.readouterr().out


def test_verbose_prints_loss_and_accuracy_lines(capsys):
    solver = Solver(_tiny_model(), _tiny_data(), num_epochs=2, batch_size=10, seed=0,
                    print_every=4)
    solver.train()
    out = capsys.readouterr().out
    assert "(Time " in out and "Iteration 1 / 8) loss: " in out
    assert "(Epoch 2 / 2) train acc: " in out


@pytest.mark.parametrize("kwargs, error, match", [
    ({"bogus": 1}, ValueError, "^Solver: Unrecognized arguments \"bogus\"$"),
    ({"num_epoch": 3}, ValueError, 'Solver: Unrecognized arguments "num_epoch" \\(did you mean '
                                   '"num_epochs"\\?\\)'),
    ({"update_rule": "nesterov"}, ValueError, "invalid update_rule \"nesterov\""),
    ({"update_rule": 3}, TypeError, "update_rule must be"),
    ({"device": "cuda"}, ValueError, "CPU only"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"optim_config": [("learning_rate", 1)]}, TypeError, "optim_config must be a dict"),
    ({"checkpoint_extra": {"f": print}}, TypeError, "checkpoint_extra\\['f'\\] is a "
                                                    "builtin_function_or_method"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Solver(_tiny_model(), _tiny_data(), **kwargs)


def test_missing_or_mismatched_data_is_reported():
    data = _tiny_data()
    del data["y_val"]
    with pytest.raises(KeyError, match="y_val"):
        Solver(_tiny_model(), data)
    data = _tiny_data()
    data["y_train"] = data["y_train"][:-1]
    with pytest.raises(ValueError, match="X_train has 40 rows"):
        Solver(_tiny_model(), data)


@pytest.mark.parametrize("key, value", [
    ("num_epochs", -1), ("num_epochs", 0), ("num_epochs", 2.0), ("batch_size", 2.5),
    ("batch_size", 0), ("batch_size", "10"), ("batch_size", True), ("num_train_samples", 0),
    ("num_val_samples", -5), ("print_every", 0), ("print_acc_every", 1.5),
])
def test_non_positive_integer_options_are_refused_when_the_solver_is_made(key, value):
    with pytest.raises(ValueError, match=rf"^Solver: {key} must be a positive integer"
                                         rf"( or None)?, got {value!r}"):
        Solver(_tiny_model(), _tiny_data(), **{key: value})


@pytest.mark.parametrize("kwargs, match", [
    ({"lr_decay": -0.5}, "Solver: lr_decay must be a positive number, got -0.5"),
    ({"lr_decay": 0}, "Solver: lr_decay must be a positive number, got 0"),
    ({"seed": -1}, r"Solver: seed must be None or an integer >= 0, got -1"),
])
def test_other_out_of_range_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Solver(_tiny_model(), _tiny_data(), **kwargs)


def test_numpy_integers_are_accepted_as_counts():
    solver = Solver(_tiny_model(), _tiny_data(), batch_size=np.int64(10), num_epochs=np.int32(1),
                    verbose=False, seed=0)
    solver.train()
    assert solver.batch_size == 10 and type(solver.batch_size) is int
    assert len(solver.loss_history) == 4


def test_an_update_rule_with_an_out_of_range_config_fails_before_training_changes_anything():
    model = _tiny_model()
    before = {k: v.copy() for k, v in model.params.items()}
    solver = Solver(model, _tiny_data(), update_rule="adam", optim_config={"beta1": 1.0},
                    verbose=False, seed=0)
    with pytest.raises(ValueError, match=r"adam: config\['beta1'\] must be in \[0, 1\), got 1.0"):
        solver.train()
    for k, v in before.items():
        np.testing.assert_array_equal(model.params[k], v)
