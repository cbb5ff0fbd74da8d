"""Ctrl-C at the edges of a run: while the command is still importing (one line, exit 130,
no traceback), and after the last epoch (the message says the checkpoint was written)."""
import os
import signal
import subprocess
import sys

import pytest

from minidl.cli.args import EXIT_INTERRUPTED
from minidl.solver import read_checkpoint

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")
TRAIN = ["train", "--model", "fc", "--data", "digits", "--num-train", "200", "--batch-size", "20",
         "--no-progress"]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def _interrupt_while_importing(args, after_module, tmp_path):
    """Start `python -X importtime -m minidl ARGS`, send SIGINT as soon as after_module has
    been imported (importtime reports each import on stderr as it finishes)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "minidl", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tmp_path)
    other = []
    for line in proc.stderr:
        if not line.startswith("import time:"):
            other.append(line)
        elif line.rsplit("|", 1)[-1].strip() == after_module:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    lines = other + [ln for ln in err.splitlines(keepends=True)
                     if not ln.startswith("import time:")]
    return proc.returncode, out, "".join(lines)


@pytest.mark.parametrize("command", ["train", "demo"])
@pytest.mark.parametrize("after_module", ["numpy", "minidl.training"])
def test_ctrl_c_during_the_imports_is_one_line_and_exit_130(command, after_module, tmp_path):
    # numpy: inside minidl/__init__'s imports; minidl.training: inside minidl.cli's.
    args = TRAIN if command == "train" else ["demo", "--epochs", "1"]
    code, out, err = _interrupt_while_importing(args, after_module, tmp_path)
    assert code == EXIT_INTERRUPTED, (code, out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == [f"minidl {command}: interrupted"], err
    assert not (tmp_path / "runs").exists()


def test_a_program_that_imports_minidl_keeps_pythons_own_ctrl_c():
    import minidl._command_startup as startup

    assert not startup.started_as_command()   # pytest imported minidl here
    code = ("import sys, minidl; print(sys.excepthook is sys.__excepthook__, flush=True)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert r.stdout.strip() == "True", r.stderr


def test_ctrl_c_after_the_last_epoch_says_the_checkpoint_was_written(tmp_path):
    ckpt = tmp_path / "c.npz"
    proc = subprocess.Popen([sys.executable, "-m", "minidl", *TRAIN, "--epochs", "2",
                             "--checkpoint", str(ckpt), "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tmp_path)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("epoch 2/2:"):  # printed after the last checkpoint was written
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == EXIT_INTERRUPTED, out + err
    assert "Traceback" not in err
    # Either the loop was still finishing (it stops there and says so) or it had ended
    # (the after-training message): both name the checkpoint, which holds both epochs.
    said = (f"(2 of 2 epochs complete); checkpoint saved: {ckpt}" in out
            or f"interrupted after training (2 of 2 epochs complete); the checkpoint was "
               f"written: {ckpt}" in err)
    assert said, out + err
    assert "minidl train: interrupted\n" not in err
    assert read_checkpoint(ckpt)["epoch"] == 2
