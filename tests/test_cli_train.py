"""`minidl train` as a user runs it (subprocess): training, progress, checkpoints, curves,
Ctrl-C, exact resume, and one-line errors."""
import os
import pickle
import re
import signal
import subprocess
import sys

import pytest

from minidl.cli import progress
from minidl.cli.args import EXIT_INTERRUPTED
from minidl.solver import read_checkpoint

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")
# A small, fast run: 200 images in batches of 20 (10 iterations per epoch).
FC = ["--model", "fc", "--data", "digits", "--num-train", "200", "--batch-size", "20"]


def _cmd(*args):
    return [sys.executable, "-m", "minidl", "train", *args]


def _run(*args, cwd=None):
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=300, env=ENV,
                          cwd=cwd)


def _history(path):
    return read_checkpoint(path)


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_train_a_coursework_model_reports_accuracy_and_writes_checkpoint_and_curves(tmp_path):
    r = _run(*FC, "--epochs", "2", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "fc on digits" in out and "train/val/test 200/180/360" in out
    assert re.search(r"^epoch 1/2: train acc [\d.]+%, val acc [\d.]+%", out, re.M)
    assert re.search(r"^epoch 2/2: train acc", out, re.M)
    assert re.search(r"test accuracy: [\d.]+% \(\d+/360\)", out)
    # The progress bar (tqdm or the plain fallback) goes to stderr: count, rate, loss.
    assert re.search(r"epoch 2/2: 100%.*10/10 \[.*it/s, loss=[\d.e+-]+\]", r.stderr), r.stderr
    ckpt_path = tmp_path / "run" / "checkpoint.npz"
    assert f"checkpoint: {ckpt_path}" in out
    ckpt = _history(ckpt_path)
    assert ckpt["epoch"] == 2 and len(ckpt["loss_history"]) == 20
    assert ckpt["extra"]["settings"]["model"] == "fc"
    png = tmp_path / "run" / "curves.png"
    if _has_matplotlib():
        assert f"curves: {png}" in out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "pip install matplotlib" in out


def test_train_a_zoo_resnet20_on_digits(tmp_path):
    r = _run("--model", "resnet20", "--data", "digits", "--epochs", "1", "--num-train", "100",
             "--batch-size", "50", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "resnet20 from minidl.models.zoo (in_channels=1, 10 classes)" in r.stdout
    assert "input 1x8x8 as is" in r.stdout
    assert "269,434 params" in r.stdout  # ResNet-20's 269,722 with a 1-channel stem
    assert re.search(r"epoch 1/1: train acc", r.stdout)
    assert (tmp_path / "checkpoint.npz").exists()


def test_step_schedule_and_lr_are_applied_per_epoch(tmp_path):
    r = _run(*FC, "--epochs", "3", "--lr", "0.01", "--lr-schedule", "step", "--step-size", "1",
             "--gamma", "0.5", "--out", str(tmp_path), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert re.findall(r"next lr ([\d.e-]+)", r.stdout) == ["0.005", "0.0025", "0.00125"]
    assert r.stderr == ""  # --no-progress: no bar


def test_ctrl_c_saves_a_checkpoint_and_the_resumed_run_matches_an_uninterrupted_one(tmp_path):
    ckpt = tmp_path / "stopped.npz"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(_cmd(*FC, "--epochs", "1000", "--checkpoint", str(ckpt),
                                     "--out", str(tmp_path)),
                                stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
        lines = []
        for line in proc.stdout:  # wait until training is under way
            lines.append(line)
            if line.startswith("epoch 1/1000:"):
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == EXIT_INTERRUPTED, out + stderr
    assert "Traceback" not in stderr
    assert "Ctrl-C: stopping after this iteration" in stderr
    assert f"checkpoint saved: {ckpt}" in out
    assert f"resume with: minidl train --resume {ckpt}" in out
    stopped = _history(ckpt)
    done = stopped["iteration"]
    assert 10 <= done < 10000

    # Resume (settings from the checkpoint) up to one epoch past the stop, and compare with
    # a run of that length that was never interrupted.
    epochs = done // 10 + 1
    r = _run("--resume", str(ckpt), "--epochs", str(epochs), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"resumed from {ckpt}: {stopped['epoch']} epochs and {done} iterations done" in r.stdout
    whole = tmp_path / "whole.npz"
    r = _run(*FC, "--epochs", str(epochs), "--checkpoint", str(whole), "--out", str(tmp_path),
             "--no-progress")
    assert r.returncode == 0, r.stderr
    resumed, uninterrupted = _history(ckpt), _history(whole)
    assert len(uninterrupted["loss_history"]) == 10 * epochs
    assert resumed["loss_history"] == uninterrupted["loss_history"]
    assert resumed["val_acc_history"] == uninterrupted["val_acc_history"]


def test_a_diverging_run_stops_with_one_line_naming_epoch_iteration_and_lr(tmp_path):
    r = _run("--model", "fc", "--data", "digits", "--num-train", "200", "--batch-size", "10",
             "--update-rule", "sgd", "--lr", "1e12", "--epochs", "2", "--out", str(tmp_path),
             "--no-progress")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert re.match(r"minidl train: error: training diverged: the loss is (nan|inf) at epoch "
                    r"1 / 2, iteration \d+ / 40 .*learning rate 1e\+12", lines[0]), lines[0]


def test_a_corrupt_checkpoint_gives_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    r = _run("--resume", str(bad))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"minidl train: error: checkpoint '{bad}' is corrupted: the file is damaged or "
        "truncated (BadZipFile: "), r.stderr


def test_resume_refuses_settings_that_differ_from_the_run(tmp_path):
    ckpt = tmp_path / "c.npz"
    r = _run(*FC, "--epochs", "1", "--checkpoint", str(ckpt), "--out", str(tmp_path),
             "--no-progress")
    assert r.returncode == 0, r.stderr
    r = _run("--resume", str(ckpt), "--model", "threelayer", "--epochs", "2")
    assert r.returncode == 1
    assert r.stderr.startswith("minidl train: error: --model threelayer differs from the "
                               "resumed run's fc")
    r = _run("--resume", str(ckpt))
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_train_help_has_every_option_and_examples():
    r = _run("--help")
    assert r.returncode == 0
    for option in ("--model", "--data", "--data-dir", "--epochs", "--batch-size", "--lr",
                   "--update-rule", "--threads", "--dtype", "--seed", "--checkpoint",
                   "--resume", "--plot", "--lr-schedule", "--num-train", "--augment"):
        assert option in r.stdout
    assert "examples:" in r.stdout and "minidl train --model resnet20 --data digits" in r.stdout


@pytest.mark.parametrize("args, fragment", [
    ([], "--model is required"),
    (["--model", "fc", "--data", "mnist"], "invalid choice: 'mnist'"),
    (["--model", "fc", "--epochs", "0"], "expected a positive integer, got '0'"),
    (["--model", "resnet2"], "unknown model 'resnet2'; did you mean"),
    (["--model", "fc", "--lr-schedule", "cosine", "--lr-decay", "0.9"], "not both"),
    (["--model", "fc", "--data-dir", "/tmp"], "data_dir is only for 'cifar10'"),
    (["--model", "fc", "--data", "cifar10", "--data-dir", "/nonexistent/minidl"],
     "CIFAR-10 python batches not found in /nonexistent/minidl: download https://"),
    (["--model", "fc", "--num-train", "5000"], "num_train=5000 is more than the 1257"),
    (["--resume", "/nonexistent/c.npz"], "checkpoint '/nonexistent/c.npz' does not exist"),
    (["--model", "fc", "--allow-pickle"], "--allow-pickle only applies to --resume"),
])
def test_bad_arguments_give_one_line_and_a_nonzero_exit(args, fragment, tmp_path):
    r = _run(*args, cwd=tmp_path)
    assert r.returncode in (1, 2)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert lines[0].startswith("minidl train: error: ")
    assert not (tmp_path / "runs").exists()  # nothing written


def test_without_tqdm_a_plain_bar_prints_one_line_per_epoch(monkeypatch):
    import io

    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `from tqdm import tqdm` fail
    stream = io.StringIO()
    bar = progress.progress_bar(10, "epoch 1/3", file=stream)
    assert isinstance(bar, progress.PlainBar)
    for i in range(10):
        bar.set_postfix_str(f"loss={1.0 / (i + 1):.4g}")
        bar.update(1)
    assert stream.getvalue() == ""  # not a terminal: nothing until the epoch ends
    bar.close()
    bar.close()  # closing twice prints once
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"epoch 1/3: 100%\|#{10}\| 10/10 \[\d\d:\d\d<00:00, [\d.]+it/s, "
                        r"loss=0\.1\]", lines[0]), lines[0]


def test_a_plain_bar_resumed_mid_epoch_starts_from_its_position():
    import io

    stream = io.StringIO()
    bar = progress.PlainBar(10, "epoch 2/3", initial=4, file=stream)
    bar.update(1)
    assert "50%|#####     | 5/10" in bar.line()


def _write_cifar(folder, n_per_batch=250, n_test=50, seed=0):
    """Five training batches and a test batch in the CIFAR-10 python format (random images)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_per_batch
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_train_on_cifar10_batches_with_augmentation(tmp_path):
    _write_cifar(tmp_path / "cifar")
    r = _run("--model", "fc", "--data", "cifar10", "--data-dir", str(tmp_path / "cifar"),
             "--num-train", "100", "--batch-size", "50", "--epochs", "1", "--augment",
             "--dtype", "float64", "--out", str(tmp_path / "run"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "fc on cifar10: CIFAR-10" in r.stdout and "train/val/test 100/1000/50" in r.stdout
    assert "float64" in r.stdout and "augmented" in r.stdout
    assert re.search(r"test accuracy: [\d.]+% \(\d+/50\)", r.stdout)
    settings = _history(tmp_path / "run" / "checkpoint.npz")["extra"]["settings"]
    assert settings["augment"] is True and settings["data"] == "cifar10"
