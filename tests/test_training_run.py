"""minidl.training as a library: a TrainingRun reports to callbacks and prints nothing."""
import pytest

from minidl.solver import read_checkpoint
from minidl.training import Callback, TrainingRun, read_run_settings

# 100 digits in batches of 50: two iterations per epoch.
SETTINGS = {"model": "fc", "data": "digits", "num_train": 100, "batch_size": 50,
            "update_rule": "sgd_momentum", "lr": 0.05}


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_epoch_begin(self, solver, epoch, done):
        self.events.append(("begin", epoch, done))

    def on_iteration(self, solver, t):
        self.events.append(("iteration", t, solver.loss_history[-1]))

    def on_epoch_end(self, solver, end):
        self.events.append(("end", end))

    def on_train_end(self, solver):
        self.events.append(("train end",))


def test_a_run_reports_every_epoch_and_iteration_to_its_callbacks_and_prints_nothing(
        tmp_path, capsys):
    recorder = Recorder()
    run = TrainingRun(SETTINGS, epochs=2, checkpoint_path=tmp_path / "c.npz",
                      callbacks=[recorder])
    assert run.iterations_per_epoch == 2 and run.num_iterations == 4
    assert run.finished is False
    assert run.train(plot_path=None) is True and run.finished
    assert capsys.readouterr() == ("", "")                    # the library prints nothing
    kinds = [e[0] for e in recorder.events]
    assert kinds == ["begin", "iteration", "iteration", "end",
                     "begin", "iteration", "iteration", "end", "train end"]
    assert [e[1:] for e in recorder.events if e[0] == "begin"] == [(1, 0), (2, 0)]
    losses = [e[2] for e in recorder.events if e[0] == "iteration"]
    assert losses == run.solver.loss_history
    ends = [e[1] for e in recorder.events if e[0] == "end"]
    assert [(e.epoch, e.num_epochs) for e in ends] == [(1, 2), (2, 2)]
    assert [e.val_acc for e in ends] == run.solver.val_acc_history[1:]
    assert all(e.learning_rate == pytest.approx(0.05) and e.seconds >= 0 for e in ends)
    assert sum(e.best for e in ends) >= 1
    acc, n = run.test_accuracy()
    assert n == 360 and 0 <= acc <= 1


def test_a_run_checkpoint_holds_its_settings_and_resumes_mid_epoch(tmp_path):
    ckpt = tmp_path / "c.npz"
    first = TrainingRun(SETTINGS, epochs=1, checkpoint_path=ckpt)
    first.solver.request_stop()                  # stops after the first iteration
    assert first.train() is False
    assert read_checkpoint(ckpt)["iteration"] == 1
    settings, epochs = read_run_settings(ckpt)
    assert epochs == 1 and settings["model"] == "fc" and settings["lr"] == 0.05
    recorder = Recorder()
    second = TrainingRun(settings, epochs=1, checkpoint_path=ckpt, callbacks=[recorder])
    second.resume(ckpt)
    second.train()
    assert recorder.events[0] == ("begin", 1, 1)   # a resumed, partly done epoch
    assert [e[0] for e in recorder.events].count("iteration") == 1


def test_a_run_rejects_unknown_settings_and_a_missing_model():
    with pytest.raises(ValueError, match="unknown settings lr_rate"):
        TrainingRun({"model": "fc", "lr_rate": 1}, epochs=1)
    with pytest.raises(ValueError, match=r"settings\['model'\] is required"):
        TrainingRun({"data": "digits"}, epochs=1)
    with pytest.raises(ValueError, match=r"load_data\('digits'\): data_dir is only for"):
        TrainingRun(SETTINGS, epochs=1, data_dir="/tmp")


def test_read_run_settings_refuses_a_plain_solver_checkpoint(tmp_path):
    run = TrainingRun(SETTINGS, epochs=1)
    run.solver.checkpoint_extra = None
    path = tmp_path / "plain.npz"
    run.solver.save_checkpoint(path)
    with pytest.raises(ValueError, match="was not written by `minidl train`"):
        read_run_settings(path)


def test_ctrl_c_stops_a_running_solver_and_raises_after_training(tmp_path):
    import os
    import signal

    import numpy as np

    from minidl.training import InterruptedAfterTraining, stop_on_interrupt

    class InterruptAt(Callback):
        def __init__(self, t):
            self.t = t

        def on_iteration(self, solver, t):
            if t == self.t:
                os.kill(os.getpid(), signal.SIGINT)   # as the terminal sends Ctrl-C

    run = TrainingRun(SETTINGS, epochs=2, checkpoint_path=tmp_path / "c.npz",
                      callbacks=[InterruptAt(0)])
    calls = []
    with pytest.raises(InterruptedAfterTraining):
        with stop_on_interrupt(run.solver, on_interrupt=lambda: calls.append(1)):
            assert run.train() is False            # stopped after iteration 1, not aborted
            assert run.solver.iteration == 1 and calls == [1]
            assert read_checkpoint(tmp_path / "c.npz")["iteration"] == 1
            os.kill(os.getpid(), signal.SIGINT)    # no iteration runs now
    assert isinstance(InterruptedAfterTraining(), KeyboardInterrupt)
    # A second Ctrl-C during the iterations aborts at once.
    run = TrainingRun(SETTINGS, epochs=2, callbacks=[InterruptAt(0), InterruptAt(1)])
    with pytest.raises(KeyboardInterrupt) as info:
        with stop_on_interrupt(run.solver):
            run.solver.request_stop = lambda: None   # the first press must not end the loop
            run.train()
    assert not isinstance(info.value, InterruptedAfterTraining)
    assert run.solver.iteration == 2 and not run.solver.is_running  # during on_iteration(1)
    assert np.isfinite(run.solver.loss_history).all()


def test_load_run_model_rebuilds_the_model_from_the_checkpoints_settings(tmp_path):
    import numpy as np

    from minidl.training import load_run_model

    settings = dict(SETTINGS, model="deepconvnet", update_rule="adam", lr=1e-3)
    run = TrainingRun(settings, epochs=1, checkpoint_path=tmp_path / "c.npz")
    run.train()
    model, saved, input_shape = load_run_model(tmp_path / "c.npz")
    assert saved == run.settings and type(model) is type(run.model)
    assert input_shape == run.data["X_train"].shape[1:]
    ckpt = read_checkpoint(tmp_path / "c.npz")
    for k, v in ckpt["params"].items():
        np.testing.assert_array_equal(model.params[k], v)
    np.testing.assert_array_equal(model.bn_params[0]["running_var"],
                                  ckpt["model_state"]["bn_params"][0]["running_var"])
    X = run.data["X_test"][:20]
    run.solver.optimizer.parameters().set_params(ckpt["params"])   # the last, not the best
    np.testing.assert_array_equal(model.loss(X), run.model.loss(X))
