"""Checkpoints that run no code: .npz arrays + JSON with a SHA-256, read without unpickling;
malicious pickles refused (Python and command line), damaged files refused with a clear
message, old pickle checkpoints only on request, and a killed save's temporary file cleaned
up by the next save."""
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from minidl import optim
from minidl._checkpoint import HASH_MEMBER, META_MEMBER
from minidl.data import load_digits
from minidl.models import FullyConnectedNet, TwoLayerNet
from minidl.nn.optimizer import rule_name
from minidl.solver import CheckpointError, Solver, read_checkpoint

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")


@pytest.fixture(scope="module")
def digits():
    d = load_digits(dtype=np.float64)
    return {"X_train": d["X_train"][:60], "y_train": d["y_train"][:60],
            "X_val": d["X_val"][:30], "y_val": d["y_val"][:30]}


def _solver(data, **kwargs):
    model = TwoLayerNet(input_dim=64, hidden_dim=8, seed=0, dtype=np.float64)
    options = dict(num_epochs=2, batch_size=20, verbose=False, seed=0)
    options.update(kwargs)
    return Solver(model, data, **options)


class _CreatesAFile:
    """Unpickling this calls open(path, 'w'): it creates a file, i.e. it runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _malicious(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"format": "minidl.solver.checkpoint/1",
                                   "payload": _CreatesAFile(str(marker))}))
    return path, marker


def test_a_malicious_pickle_runs_no_code_through_read_checkpoint_or_load_checkpoint(
        digits, tmp_path):
    path, marker = _malicious(tmp_path)
    with pytest.raises(CheckpointError, match="is a pickle checkpoint .*can run any code.* "
                                              "allow_pickle=True"):
        read_checkpoint(path)
    solver = _solver(digits)
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        solver.load_checkpoint(path)
    assert not marker.exists()
    assert solver.iteration == 0 and solver.loss_history == []


def test_a_malicious_pickle_runs_no_code_through_minidl_train_resume(tmp_path):
    path, marker = _malicious(tmp_path)
    r = subprocess.run([sys.executable, "-m", "minidl", "train", "--resume", str(path)],
                       capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"minidl train: error: '{path}' is a pickle checkpoint"), r.stderr
    assert "--allow-pickle" in lines[0]
    assert not marker.exists()


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def test_the_file_is_an_npz_with_json_metadata_and_a_sha256(digits, tmp_path):
    path = tmp_path / "c.npz"
    solver = _solver(digits, checkpoint_path=str(path))
    solver.train()
    members = _members(path)
    assert META_MEMBER in members and HASH_MEMBER in members
    meta = json.loads(members[META_MEMBER])
    assert meta["format"] == "minidl.solver.checkpoint/2" and meta["epoch"] == 2
    assert meta["params"] == [["W1", [64, 8]], ["b1", [8]], ["W2", [8, 10]], ["b2", [10]]]
    with np.load(path, allow_pickle=False) as f:     # plain NumPy reads the arrays
        assert f["params"].shape == (64 * 8 + 8 + 8 * 10 + 10,)
        np.testing.assert_array_equal(f["loss_history"], solver.loss_history)
    assert read_checkpoint(path)["sha256"] == members[HASH_MEMBER].decode()


def test_a_flipped_byte_in_the_payload_is_refused_as_corrupted(digits, tmp_path):
    path = tmp_path / "c.npz"
    _solver(digits).save_checkpoint(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"params.npy") + 200          # inside the parameter array's bytes
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checkpoint '.*c.npz' is corrupted") as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_altered_contents_with_valid_zip_checksums_fail_the_sha256(digits, tmp_path):
    path = tmp_path / "c.npz"
    _solver(digits).save_checkpoint(path)
    members = _members(path)
    meta = json.loads(members[META_MEMBER])
    meta["epoch"] = 7                              # a plausible edit: zip's CRC is recomputed
    members[META_MEMBER] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"is corrupted: the SHA-256 of its contents is "
                                              r"[0-9a-f]{16}\.\.\., the file records"):
        read_checkpoint(path)


def test_no_single_flipped_byte_is_resumed_silently(digits, tmp_path):
    path = tmp_path / "c.npz"
    _solver(digits).save_checkpoint(path)
    good = path.read_bytes()
    reference = read_checkpoint(path)
    accepted = 0
    for at in range(0, len(good), 97):
        data = bytearray(good)
        data[at] ^= 0x20
        path.write_bytes(bytes(data))
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError:
            continue
        # Only bytes outside the payload (zip timestamps, version fields) may change.
        accepted += 1
        assert ckpt["sha256"] == reference["sha256"]
        np.testing.assert_array_equal(ckpt["params_flat"], reference["params_flat"])
    assert accepted < len(range(0, len(good), 97)) // 10


def test_the_command_line_refuses_a_corrupted_checkpoint_in_one_line(digits, tmp_path):
    path = tmp_path / "c.npz"
    _solver(digits).save_checkpoint(path)
    data = bytearray(path.read_bytes())
    data[data.index(b"params.npy") + 300] ^= 0xFF
    path.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-m", "minidl", "train", "--resume", str(path)],
                       capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"minidl train: error: checkpoint '{path}' is corrupted")


def _legacy_checkpoint(solver, path):
    """What minidl 0.1 wrote: a pickled dict holding the model object."""
    configs = {k: {kk: (np.array(vv) if isinstance(vv, np.ndarray) else vv)
                   for kk, vv in c.items()} for k, c in solver.optim_configs.items()}
    base = solver._base_lrs.get("*")
    old = {
        "model": solver.model, "update_rule": solver.update_rule, "lr_decay": solver.lr_decay,
        "optim_config": solver.optim_config, "batch_size": solver.batch_size,
        "num_train_samples": solver.num_train_samples,
        "num_val_samples": solver.num_val_samples, "epoch": solver.epoch,
        "loss_history": solver.loss_history, "train_acc_history": solver.train_acc_history,
        "val_acc_history": solver.val_acc_history, "format": "minidl.solver.checkpoint/1",
        "iteration": solver.iteration, "num_epochs": solver.num_epochs,
        "update_rule_name": rule_name(solver.update_rule), "optim_configs": configs,
        "lr_schedule": solver.lr_schedule, "step_size": solver.step_size,
        "gamma": solver.gamma, "lr_min": solver.lr_min,
        "base_lrs": {k: base for k in configs} if base is not None else {},
        "best_val_acc": solver.best_val_acc, "best_epoch": solver.best_epoch,
        "best_params": {k: v.copy() for k, v in solver.best_params.items()},
        "rng_state": solver.rng.bit_generator.state,
        "numpy_global_state": np.random.get_state(),
        "model_class": f"{type(solver.model).__module__}.{type(solver.model).__qualname__}",
        "param_shapes": {}, "data_shape": {"X_train": solver.X_train.shape,
                                           "X_val": solver.X_val.shape},
        "extra": solver.checkpoint_extra, "time": 0.0,
    }
    with open(path, "wb") as f:
        pickle.dump(old, f)


class _StopAt(Solver):
    stop_after = 5

    def on_iteration(self, t, num_iterations):
        super().on_iteration(t, num_iterations)
        if self.iteration == self.stop_after:
            self.request_stop()


def _dropout_fc():
    np.random.seed(4)
    return FullyConnectedNet([16], input_dim=64, dropout=0.3, weight_scale=0.1,
                             normalization="batchnorm", dtype=np.float64)


def test_an_old_pickle_checkpoint_resumes_exactly_only_when_asked(digits, tmp_path):
    options = dict(update_rule=optim.sgd_momentum, optim_config={"learning_rate": 0.05},
                   lr_schedule="cosine", num_epochs=3, batch_size=15, verbose=False, seed=3)
    whole = Solver(_dropout_fc(), digits, **options)
    whole.train()
    first = _StopAt(_dropout_fc(), digits, **options)
    first.train(return_best_params=False)  # the model as it was when the file was written
    path = tmp_path / "old.pkl"
    _legacy_checkpoint(first, path)

    resumed = Solver(_dropout_fc(), digits, **options)
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        resumed.load_checkpoint(path)
    with pytest.warns(UserWarning, match="a pickle can run any code it holds"):
        resumed.load_checkpoint(path, allow_pickle=True)
    resumed.train()
    assert resumed.loss_history == whole.loss_history
    assert resumed.val_acc_history == whole.val_acc_history
    for k, v in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    with pytest.warns(UserWarning):
        ckpt = read_checkpoint(path, allow_pickle=True)
    assert ckpt["format"] == "minidl.solver.checkpoint/1" and ckpt["iteration"] == 5
    assert set(ckpt["params"]) == set(whole.model.params)


def test_minidl_train_resumes_an_old_pickle_checkpoint_only_with_allow_pickle(tmp_path):
    from minidl.training import TrainingRun

    settings = {"model": "fc", "data": "digits", "num_train": 100, "batch_size": 50,
                "update_rule": "adam", "lr": 1e-3}
    run = TrainingRun(settings, epochs=1)
    run.train()
    old = tmp_path / "old.pkl"
    _legacy_checkpoint(run.solver, old)
    cmd = [sys.executable, "-m", "minidl", "train", "--resume", str(old), "--epochs", "2",
           "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 1 and "--allow-pickle" in r.stderr
    r = subprocess.run(cmd + ["--allow-pickle"], capture_output=True, text=True, timeout=300,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"minidl train: warning: loading '{old}' with pickle: a pickle "
                               "can run any code it holds")
    assert f"resumed from {old}: 1 epochs and 2 iterations done" in r.stdout
    assert f"note: {old} will be rewritten in the safe .npz format" in r.stdout
    assert read_checkpoint(old)["epoch"] == 2   # now the safe format, whatever its name


_KILLED_SAVE = """
import os, signal, sys, zipfile
import numpy as np
from minidl.models import TwoLayerNet
from minidl.solver import Solver
rng = np.random.default_rng(0)
data = {"X_train": rng.standard_normal((20, 4)), "y_train": rng.integers(0, 2, 20),
        "X_val": rng.standard_normal((5, 4)), "y_val": rng.integers(0, 2, 5)}
solver = Solver(TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2, seed=0), data,
                verbose=False, seed=0)
writestr = zipfile.ZipFile.writestr
def killed(self, name, payload, *args, **kwargs):
    if name.endswith(".npy"):
        writestr(self, name, payload[: len(payload) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return writestr(self, name, payload, *args, **kwargs)
zipfile.ZipFile.writestr = killed
solver.save_checkpoint(sys.argv[1])
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_killed_save_leaves_the_old_checkpoint_and_the_next_save_removes_its_stray_file(
        digits, tmp_path):
    path = tmp_path / "c.npz"
    solver = _solver(digits)
    solver.save_checkpoint(path)
    good = path.read_bytes()
    r = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(path)], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    strays = [n for n in os.listdir(tmp_path) if n.startswith(".tmp_c.npz.")]
    assert len(strays) == 1 and not strays[0].endswith(".npz")   # never taken for a checkpoint
    assert path.read_bytes() == good
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / strays[0])
    # Files the next save must leave alone: another checkpoint's, and a live writer's.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".tmp_c.npz.{sleeper.pid}.abcd1234"
        other = tmp_path / ".tmp_d.npz.1.abcd1234"
        live.write_bytes(b"in progress")
        other.write_bytes(b"another file's")
        solver.train()
        solver.save_checkpoint(path)
        assert sorted(os.listdir(tmp_path)) == sorted(["c.npz", live.name, other.name])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert read_checkpoint(path)["epoch"] == 2


def test_checkpoint_json_holds_no_python_objects(digits, tmp_path):
    def schedule(epoch):
        return 0.5 ** epoch

    path = tmp_path / "c.npz"
    solver = _solver(digits, lr_schedule=schedule, checkpoint_extra={"note": [1, 2.5, None]})
    solver.train()
    solver.save_checkpoint(path)
    meta = json.loads(_members(path)[META_MEMBER])
    assert meta["lr_schedule"].startswith("function ") and "schedule" in meta["lr_schedule"]
    assert meta["update_rule"] == "minidl.optim.sgd" and meta["extra"] == {"note": [1, 2.5, None]}
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as f:
        arrays = [k for k in f.files if k not in (META_MEMBER, HASH_MEMBER)]
        assert "params" in arrays and all(f[k].dtype != object for k in arrays)


def test_what_json_cannot_hold_is_named_when_the_checkpoint_is_written(digits, tmp_path):
    solver = _solver(digits, optim_config={"learning_rate": 1e-2, "note": {1, 2}})
    with pytest.raises(TypeError, match=r"Solver: the checkpoint\['optim_config'\]\['note'\] is "
                                        r"a set, which a checkpoint \(JSON\) cannot hold"):
        solver.save_checkpoint(tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []
