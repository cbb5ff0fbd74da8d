"""Solver checkpoints: an interrupted and resumed run equals an uninterrupted one, writes are
atomic, and corrupt or mismatched checkpoints give clear errors. (What the file format refuses
to run or to trust: test_checkpoint_safety.py.)"""
import os
import pickle
import zipfile

import numpy as np
import pytest

from minidl.data import load_digits
from minidl.models import DeepConvNet, FullyConnectedNet, TwoLayerNet
from minidl.solver import CheckpointError, Solver, read_checkpoint


@pytest.fixture(scope="module")
def digits():
    d = load_digits(dtype=np.float64)
    return {"X_train": d["X_train"][:60], "y_train": d["y_train"][:60],
            "X_val": d["X_val"][:30], "y_val": d["y_val"][:30]}


def jitter(X, rng):
    """A module-level augmentation (X, rng) -> X that draws from the Solver's generator."""
    return X + 0.05 * rng.standard_normal(X.shape)


class StopAt(Solver):
    """Requests a stop after iteration `stop_after` (1-based count), as Ctrl-C would."""

    stop_after = None

    def on_iteration(self, t, num_iterations):
        super().on_iteration(t, num_iterations)
        if self.iteration == self.stop_after:
            self.request_stop()


def _bn_convnet():
    return DeepConvNet(input_dims=(1, 8, 8), num_filters=[4], max_pools=[0], batchnorm=True,
                       weight_scale="kaiming", dtype=np.float64, seed=0)


def _dropout_fc():
    # No seed: weights and dropout masks come from NumPy's global generator, which the
    # checkpoint must restore too.
    np.random.seed(7)
    return FullyConnectedNet([16], input_dim=64, dropout=0.3, weight_scale=0.1,
                             dtype=np.float64)


def _zoo_resnet():
    # A minidl.nn module (batch-norm buffers live in the module) behind ClassifierModel.
    from minidl.models.zoo import resnet_cifar
    from minidl.nn import ClassifierModel, manual_seed

    manual_seed(0)
    return ClassifierModel(resnet_cifar(num_classes=10, in_channels=1, depth=8, width=4,
                                        dtype=np.float64))


SETUPS = {
    "batchnorm-adam-step-augment": (
        _bn_convnet, dict(update_rule="adam", optim_config={"learning_rate": 3e-3},
                          lr_schedule="step", step_size=1, gamma=0.5, augment=jitter,
                          num_train_samples=20)),
    "dropout-momentum-cosine": (
        _dropout_fc, dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                          lr_schedule="cosine", lr_min=1e-3)),
    "zoo-resnet-rmsprop": (
        _zoo_resnet, dict(update_rule="rmsprop", optim_config={"learning_rate": 1e-3})),
}


def _solver(make_model, data, options, cls=Solver, **extra):
    return cls(make_model(), data, num_epochs=3, batch_size=15, verbose=False, seed=3,
               **options, **extra)


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("stop_after", [6, 4])  # 4 iterations per epoch: mid-epoch, epoch end
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(digits, tmp_path, setup,
                                                                 stop_after):
    make_model, options = SETUPS[setup]
    whole = _solver(make_model, digits, options)
    whole.train()

    path = str(tmp_path / "ckpt.npz")
    first = _solver(make_model, digits, options, cls=StopAt, checkpoint_path=path)
    first.stop_after = stop_after
    first.train()
    assert first.stopped_early and first.iteration == stop_after
    assert len(first.loss_history) == stop_after

    # A fresh process would rebuild the model and the Solver from scratch, then load.
    np.random.seed(12345)  # whatever the global generator holds now must not matter
    resumed = _solver(make_model, digits, options)
    resumed.load_checkpoint(path)
    assert resumed.iteration == stop_after
    resumed.train()

    assert resumed.loss_history == whole.loss_history  # exactly, float for float
    assert resumed.train_acc_history == whole.train_acc_history
    assert resumed.val_acc_history == whole.val_acc_history
    assert resumed.best_val_acc == whole.best_val_acc
    assert resumed.best_epoch == whole.best_epoch
    for k, v in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    for a, b in zip(getattr(whole.model, "bn_params", []), getattr(resumed.model, "bn_params", [])):
        np.testing.assert_array_equal(a["running_mean"], b["running_mean"])
    if hasattr(whole.model, "module"):  # running statistics of the nn modules
        for (k, a), (_, b) in zip(whole.model.module.named_buffers(),
                                  resumed.model.module.named_buffers()):
            np.testing.assert_array_equal(a, b, err_msg=k)


def test_the_checkpoint_holds_what_a_resume_needs(digits, tmp_path):
    make_model, options = SETUPS["batchnorm-adam-step-augment"]
    path = tmp_path / "c.npz"
    solver = _solver(make_model, digits, options, checkpoint_path=str(path),
                     checkpoint_extra={"note": "hello"})
    solver.train()
    ckpt = read_checkpoint(path)
    assert ckpt["format"] == "minidl.solver.checkpoint/2" and len(ckpt["sha256"]) == 64
    assert ckpt["epoch"] == 3 and ckpt["iteration"] == 12 and ckpt["num_epochs"] == 3
    assert ckpt["loss_history"] == solver.loss_history
    assert ckpt["val_acc_history"] == solver.val_acc_history
    assert list(ckpt["params"]) == list(solver.model.params)
    np.testing.assert_array_equal(ckpt["params_flat"],
                                  np.concatenate([v.ravel() for v in ckpt["params"].values()]))
    for k, v in ckpt["best_params"].items():  # train() put the best parameters back
        np.testing.assert_array_equal(solver.model.params[k], v)
    # Adam's state: one config for the whole flat buffer (an elementwise rule).
    (group,) = ckpt["optimizer"]["groups"]
    assert group["name"] == "*" and group["config"]["t"] == 12 and group["arrays"] == ["m", "v"]
    np.testing.assert_array_equal(ckpt["optimizer_arrays"]["0/m"],
                                  solver.optimizer.groups[0].config["m"])
    assert ckpt["base_lrs"] == {"*": 3e-3}  # the step schedule's starting point
    assert ckpt["rng_state"] == solver.rng.bit_generator.state
    keys = ckpt["numpy_global_state"][1]
    np.testing.assert_array_equal(keys, np.random.get_state()[1])
    assert ckpt["extra"] == {"note": "hello"}
    assert set(ckpt["best_params"]) == set(solver.model.params)
    assert ckpt["model_settings"]["batchnorm"] is True and ckpt["model_settings"]["reg"] == 0.0
    running = ckpt["model_state"]["bn_params"][0]
    assert running["mode"] == "test"
    np.testing.assert_array_equal(running["running_mean"],
                                  solver.model.bn_params[0]["running_mean"])


def test_loading_restores_the_model_in_place(digits, tmp_path):
    path = str(tmp_path / "c.npz")
    a = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
               num_epochs=2, batch_size=20, verbose=False, seed=0, checkpoint_path=path)
    a.train(return_best_params=False)
    model = TwoLayerNet(input_dim=64, hidden_dim=8, seed=1, dtype=np.float64)
    b = Solver(model, digits, num_epochs=2, batch_size=20, verbose=False, seed=0)
    b.load_checkpoint(path)
    assert b.model is model  # the caller's reference stays valid
    for k, v in a.model.params.items():
        np.testing.assert_array_equal(model.params[k], v)
    assert b.epoch == 2 and b.best_val_acc == a.best_val_acc


def test_a_failed_write_leaves_the_previous_checkpoint_intact(digits, tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    solver = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
                    num_epochs=1, batch_size=20, verbose=False, seed=0)
    solver.save_checkpoint(str(path))
    good = path.read_bytes()

    writestr = zipfile.ZipFile.writestr

    def disk_full(self, name, data, *args, **kwargs):
        if name.endswith(".npy"):
            writestr(self, name, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    solver.epoch = 99
    with pytest.raises(OSError, match="No space left"):
        solver.save_checkpoint(str(path))
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind


def _garbage(path):
    path.write_bytes(b"this is neither a zip nor a pickle")


def _truncated(path, solver):
    solver.save_checkpoint(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage, message", [
    ("garbage", "is not a minidl checkpoint"),
    ("truncated", "is corrupted: the file is damaged or truncated"),
    ("other pickle", "is a pickle checkpoint .* allow_pickle=True"),
    ("other zip", "is not a minidl Solver checkpoint .*without checkpoint.json"),
    ("missing", "does not exist"),
])
def test_corrupt_checkpoints_give_a_clear_error(digits, tmp_path, damage, message):
    path = tmp_path / "c.npz"
    solver = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
                    verbose=False, seed=0)
    if damage == "garbage":
        _garbage(path)
    elif damage == "truncated":
        _truncated(path, solver)
    elif damage == "other pickle":
        path.write_bytes(pickle.dumps({"model": 1}))
    elif damage == "other zip":
        np.savez(path, W1=np.ones(3))
    with pytest.raises(CheckpointError, match=message) as info:
        solver.load_checkpoint(str(path))
    assert "c.npz" in str(info.value) and "\n" not in str(info.value)


def test_a_checkpoint_of_another_model_is_refused_and_nothing_changes(digits, tmp_path):
    path = str(tmp_path / "c.npz")
    Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
           num_epochs=1, batch_size=20, verbose=False, seed=0, checkpoint_path=path).train()
    model = TwoLayerNet(input_dim=64, hidden_dim=16, seed=0, dtype=np.float64)
    before = {k: v.copy() for k, v in model.params.items()}
    solver = Solver(model, digits, num_epochs=1, batch_size=20, verbose=False, seed=0)
    with pytest.raises(CheckpointError, match=r"parameter 'W1' is \(64, 8\) float64 in the "
                                              r"checkpoint but \(64, 16\) float64 in the model"):
        solver.load_checkpoint(path)
    for k, v in before.items():
        np.testing.assert_array_equal(model.params[k], v)
    assert solver.iteration == 0 and solver.loss_history == []


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=10), "batch_size was 20, now 10"),
    (dict(update_rule="adam"), "update_rule was minidl.optim.sgd, now minidl.optim.adam"),
])
def test_a_checkpoint_of_another_setup_is_refused(digits, tmp_path, change, message):
    path = str(tmp_path / "c.npz")
    Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
           num_epochs=1, batch_size=20, verbose=False, seed=0, checkpoint_path=path).train()
    options = dict(num_epochs=1, batch_size=20, verbose=False, seed=0)
    options.update(change)
    solver = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
                    **options)
    with pytest.raises(CheckpointError, match=message):
        solver.load_checkpoint(path)


def test_resuming_a_finished_run_with_more_epochs_trains_on(digits, tmp_path):
    path = str(tmp_path / "c.npz")
    whole = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
                   num_epochs=3, batch_size=20, verbose=False, seed=0)
    whole.train()
    Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
           num_epochs=2, batch_size=20, verbose=False, seed=0, checkpoint_path=path).train()
    more = Solver(TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64), digits,
                  num_epochs=3, batch_size=20, verbose=False, seed=0).load_checkpoint(path)
    more.train()
    assert more.loss_history == whole.loss_history
    assert more.epoch == 3
