"""Solver: learning-rate schedules, the NaN/inf stop, augmentation, best parameters."""
import math

import numpy as np
import pytest

from minidl.models import TwoLayerNet
from minidl.solver import Solver, TrainingDivergedError


def _data(n_train=40, n_val=20, D=6, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"X_train": rng.standard_normal((n_train, D)), "y_train": rng.integers(0, C, n_train),
            "X_val": rng.standard_normal((n_val, D)), "y_val": rng.integers(0, C, n_val)}


def _model():
    return TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=3, weight_scale=0.1,
                       dtype=np.float64, seed=0)


class LrRecorder(Solver):
    """Records the learning rate used by each epoch (read before its first iteration)."""

    def on_iteration_begin(self, t, num_iterations):
        if t % self._iterations_per_epoch() == 0:
            self.lrs_used = getattr(self, "lrs_used", []) + [self.learning_rates()]


def _lrs(**options):
    options.setdefault("optim_config", {"learning_rate": 1.0})
    solver = LrRecorder(_model(), _data(), update_rule="sgd", batch_size=10, verbose=False,
                        seed=0, **options)
    solver.train()
    return solver.lrs_used, solver


def test_step_schedule_multiplies_by_gamma_every_step_size_epochs():
    lrs, _ = _lrs(num_epochs=5, lr_schedule="step", step_size=2, gamma=0.1)
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_cosine_schedule_anneals_from_lr0_to_lr_min():
    E, lr0, lr_min = 4, 1.0, 0.1
    lrs, solver = _lrs(num_epochs=E, lr_schedule="cosine", lr_min=lr_min)
    expected = [lr_min + (lr0 - lr_min) * (1 + math.cos(math.pi * e / E)) / 2 for e in range(E)]
    assert lrs == pytest.approx(expected)
    assert solver.learning_rates() == pytest.approx(lr_min)  # after the last epoch


def test_a_function_schedule_gives_the_factor_of_each_epoch():
    lrs, _ = _lrs(num_epochs=3, lr_schedule=lambda e: 1.0 / (1 + e))
    assert lrs == pytest.approx([1.0, 1 / 2, 1 / 3])


def test_lr_decay_still_works_and_a_schedule_keeps_per_parameter_learning_rates():
    lrs, _ = _lrs(num_epochs=3, lr_decay=0.5)
    assert lrs == pytest.approx([1.0, 0.5, 0.25])
    # The schedule starts from the rule's default when optim_config has no learning rate.
    lrs, _ = _lrs(num_epochs=2, optim_config={}, lr_schedule="step", step_size=1, gamma=0.5)
    assert lrs == [None, pytest.approx(0.5 * 1e-2)]  # sgd's default 1e-2, chosen at step 1


@pytest.mark.parametrize("options, match", [
    (dict(lr_schedule="step"), "needs step_size"),
    (dict(lr_schedule="step", step_size=0), "needs step_size"),
    (dict(lr_schedule="linear"), "lr_schedule must be"),
    (dict(lr_schedule="cosine", lr_decay=0.9), "either lr_decay"),
    (dict(lr_schedule="cosine", lr_min=-1.0), "lr_min"),
    (dict(augment=3), "augment must be a callable"),
])
def test_bad_schedule_options_raise(options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Solver(_model(), _data(), **options)


class NaNAt:
    """A model whose loss is `bad` from iteration `at` (1-based) on."""

    def __init__(self, at, bad=float("nan")):
        self.params = {"w": np.zeros(3)}
        self.at, self.bad, self.calls = at, bad, 0

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), 3))
        self.calls += 1
        loss = self.bad if self.calls >= self.at else 1.0
        return loss, {"w": np.ones(3)}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_loss_stops_training_naming_epoch_iteration_and_lr(bad):
    model = NaNAt(at=7, bad=bad)
    solver = Solver(model, _data(), update_rule="sgd", optim_config={"learning_rate": 0.25},
                    num_epochs=5, batch_size=10, verbose=False, seed=0)
    with pytest.raises(TrainingDivergedError) as info:
        solver.train()
    e = info.value
    msg = str(e)
    assert f"the loss is {bad}" in msg
    assert "epoch 2 / 5" in msg and "iteration 7 / 20" in msg and "learning rate 0.25" in msg
    assert (e.epoch, e.iteration, e.learning_rate) == (2, 7, 0.25)
    # Six updates happened; the seventh (with the bad gradients) did not.
    np.testing.assert_array_equal(model.params["w"], -0.25 * 6 * np.ones(3))
    assert solver.iteration == 6 and len(solver.loss_history) == 7


def test_augmentation_transforms_training_batches_only():
    calls = []

    def augment(X, rng):
        calls.append((X.shape, rng))
        return X * 0.0  # erases the images: the model sees only zeros when training

    class Recorder:
        params = {"w": np.zeros(1)}
        seen = []

        def loss(self, X, y=None):
            self.seen.append((y is not None, float(np.abs(X).sum())))
            if y is None:
                return np.zeros((len(X), 3))
            return 0.0, {"w": np.zeros(1)}

    model = Recorder()
    solver = Solver(model, _data(), augment=augment, num_epochs=2, batch_size=10,
                    verbose=False, seed=0)
    solver.train()
    assert len(calls) == 8 and all(shape == (10, 6) and rng is solver.rng for shape, rng in calls)
    assert all(total == 0.0 for training, total in model.seen if training)
    assert all(total > 0.0 for training, total in model.seen if not training)


def test_best_parameters_and_epoch_are_kept():
    solver = Solver(_model(), _data(), update_rule="sgd", optim_config={"learning_rate": 0.5},
                    num_epochs=4, batch_size=10, verbose=False, seed=1)
    solver.train()
    best = int(np.argmax(solver.val_acc_history))  # check k happens after epoch k
    assert solver.best_epoch == best
    assert solver.best_val_acc == solver.val_acc_history[best]
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(solver.model.params[k], v)
