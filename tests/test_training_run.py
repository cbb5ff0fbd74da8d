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
    run = TrainingRun(SETTINGS, epochs=2, checkpoint_path=tmp_path / "c.pkl",
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
    ckpt = tmp_path / "c.pkl"
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
    path = tmp_path / "plain.pkl"
    run.solver.save_checkpoint(path)
    with pytest.raises(ValueError, match="was not written by `minidl train`"):
        read_run_settings(path)
