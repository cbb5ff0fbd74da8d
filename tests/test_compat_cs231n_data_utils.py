"""cs231n.data_utils on minidl's safe CIFAR reader: the course's return values (float64, the
splits, the mean image, channels first) from small CIFAR-format batches written here, safe
pickles by default, and the course's download command when the data is missing."""
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

import minidl.compat.cs231n as cs
from minidl.compat.cs231n import data_utils
from minidl.data.cifar10 import UnsafePickleError

ROOT = pathlib.Path(__file__).resolve().parents[1]
PER_BATCH, N_TEST = 6, 5


def _write_batches(folder, seed=0):
    """CIFAR-10 python batches (data_batch_1..5, test_batch) of a few random images each,
    pickled as the real files are (protocol 2, str keys once loaded with latin1)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = N_TEST if name == "test_batch" else PER_BATCH
        images[name] = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels[name] = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": images[name], "labels": labels[name]},
                        f, protocol=2)
    return images, labels


@pytest.fixture
def cifar(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    return folder, _write_batches(folder)


def _nhwc(rows):
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64)


def test_load_cifar_batch_returns_channels_last_float64(cifar):
    folder, (images, labels) = cifar
    X, Y = cs.load_CIFAR_batch(str(folder / "data_batch_2"))
    assert X.shape == (PER_BATCH, 32, 32, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X, _nhwc(images["data_batch_2"]))
    assert Y.dtype == np.int64 and Y.tolist() == labels["data_batch_2"]


def test_load_cifar10_concatenates_the_five_training_batches(cifar):
    folder, (images, labels) = cifar
    Xtr, Ytr, Xte, Yte = cs.load_CIFAR10(str(folder))
    assert Xtr.shape == (5 * PER_BATCH, 32, 32, 3) and Xte.shape == (N_TEST, 32, 32, 3)
    np.testing.assert_array_equal(Xtr[PER_BATCH:2 * PER_BATCH], _nhwc(images["data_batch_2"]))
    assert Ytr.tolist() == sum((labels[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert Yte.tolist() == labels["test_batch"]


def test_get_cifar10_data_is_the_courses_float64_dict(cifar):
    folder, (images, labels) = cifar
    data = cs.get_CIFAR10_data(num_training=20, num_validation=7, num_test=4,
                               cifar10_dir=str(folder))
    assert list(data) == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
    train_rows = np.concatenate([images[f"data_batch_{i}"] for i in range(1, 6)])
    X_all = _nhwc(train_rows)
    # the course: split, subtract the mean training image (NHWC), then channels first
    mean = X_all[:20].mean(axis=0)
    expected = {"X_train": X_all[:20] - mean, "X_val": X_all[20:27] - mean,
                "X_test": _nhwc(images["test_batch"])[:4] - mean}
    for key, value in expected.items():
        assert data[key].dtype == np.float64 and data[key].shape[1:] == (3, 32, 32)
        np.testing.assert_allclose(data[key], value.transpose(0, 3, 1, 2), atol=1e-12)
    y_all = sum((labels[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert data["y_train"].tolist() == y_all[:20] and data["y_val"].tolist() == y_all[20:27]
    assert data["y_test"].tolist() == labels["test_batch"][:4]
    raw = cs.get_CIFAR10_data(20, 7, 4, subtract_mean=False, cifar10_dir=str(folder))
    np.testing.assert_array_equal(raw["X_train"], X_all[:20].transpose(0, 3, 1, 2))


def test_get_cifar10_data_finds_the_forwarders_datasets_folder(tmp_path):
    cs.install(tmp_path)
    _write_batches(tmp_path / "cs231n" / "datasets" / "cifar-10-batches-py")
    code = ("from cs231n.data_utils import get_CIFAR10_data\n"
            "d = get_CIFAR10_data(num_training=25, num_validation=5, num_test=5)\n"
            "print({k: v.shape for k, v in d.items()})")
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), MINIDL_DATA=str(other)))
    assert r.returncode == 0, r.stderr
    assert "'X_train': (25, 3, 32, 32)" in r.stdout and "'y_test': (5,)" in r.stdout


def test_missing_data_gives_the_courses_download_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError) as info:
        cs.get_CIFAR10_data()
    message = str(info.value)
    assert message.startswith("get_CIFAR10_data: the CIFAR-10 python batches")
    assert str(tmp_path / "cs231n" / "datasets") in message
    assert "cifar-10-python.tar.gz" in message and "tar -xzvf" in message
    # with the installed forwarder, the course's own command
    cs.install(tmp_path)
    monkeypatch.setattr(data_utils, "_datasets_dirs", [str(tmp_path / "cs231n" / "datasets")])
    with pytest.raises(FileNotFoundError, match="bash get_datasets.sh"):
        cs.get_CIFAR10_data()
    with pytest.raises(FileNotFoundError, match="load_CIFAR10: .*not found"):
        cs.load_CIFAR10(str(tmp_path / "nothing"))


class _Anything:
    """An object a pickle could only rebuild by importing and calling code."""


def test_load_pickle_reads_plain_data_and_refuses_objects(tmp_path):
    plain = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, 2],
             "names": ("a", b"b"), "tags": {1, 2}, "scale": 0.5, "none": None}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(plain, protocol=2))
    with open(path, "rb") as f:
        loaded = cs.load_pickle(f)
    assert loaded["labels"] == [1, 2] and loaded["tags"] == {1, 2}
    np.testing.assert_array_equal(loaded["data"], plain["data"])
    bad = tmp_path / "object.pkl"
    bad.write_bytes(pickle.dumps({"model": _Anything()}))
    with open(bad, "rb") as f, pytest.raises(UnsafePickleError, match="refusing to load"):
        cs.load_pickle(f)
    with open(bad, "rb") as f:
        assert isinstance(cs.load_pickle(f, allow_pickle=True)["model"], _Anything)


def test_load_models_skips_non_pickles_and_refuses_objects_unless_allowed(tmp_path):
    (tmp_path / "README.txt").write_text("models live here\n")
    (tmp_path / "weights.pkl").write_bytes(pickle.dumps({"model": {"W": np.ones(2)}}))
    models = cs.load_models(str(tmp_path))
    assert list(models) == ["weights.pkl"] and models["weights.pkl"]["W"].tolist() == [1, 1]
    (tmp_path / "net.pkl").write_bytes(pickle.dumps({"model": _Anything()}))
    with pytest.raises(UnsafePickleError, match="net.pkl.*allow_pickle=True"):
        cs.load_models(str(tmp_path))
    assert isinstance(cs.load_models(str(tmp_path), allow_pickle=True)["net.pkl"], _Anything)


def test_load_imagenet_val_reads_the_label_map_without_pickle(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), np.array([5, 1, 5])
    np.savez(tmp_path / "imagenet_val_25.npz", X=X, y=y,
             label_map=np.array({1: "goldfish", 5: "stingray"}, dtype=object))
    monkeypatch.setattr(data_utils, "_datasets_dirs", [str(tmp_path)])
    X2, y2, names = cs.load_imagenet_val(num=2)
    np.testing.assert_array_equal(X2, X[:2])
    assert y2.tolist() == [5, 1] and names == {1: "goldfish", 5: "stingray"}
    monkeypatch.setattr(data_utils, "_datasets_dirs", [str(tmp_path / "none")])
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="imagenet_val_25.npz"):
        cs.load_imagenet_val()


def test_load_tiny_imagenet_reads_the_folder_layout(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    wnids = ["n01", "n02"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tstingray\n"
                                        "n99\tunused\n")

    def save(path, value, grey=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.full((64, 64) if grey else (64, 64, 3), value, dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG")  # lossless; the reader ignores the name

    for k, wnid in enumerate(wnids):
        names = [f"{wnid}_{i}.JPEG" for i in range(2)]
        (tmp_path / "train" / wnid).mkdir(parents=True)
        (tmp_path / "train" / wnid / f"{wnid}_boxes.txt").write_text(
            "".join(f"{n}\t0\t0\t63\t63\n" for n in names))
        for i, n in enumerate(names):
            save(tmp_path / "train" / wnid / "images" / n, 10 * (k + 1) + i, grey=(i == 1))
    save(tmp_path / "val" / "images" / "val_0.JPEG", 7)
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t63\t63\n")
    save(tmp_path / "test" / "images" / "test_0.JPEG", 3)
    data = cs.load_tiny_imagenet(str(tmp_path), subtract_mean=False)
    assert data["class_names"] == [["goldfish", "Carassius auratus"], ["stingray"]]
    assert data["X_train"].shape == (4, 3, 64, 64) and data["X_train"].dtype == np.float32
    assert data["y_train"].tolist() == [0, 0, 1, 1]
    assert data["X_train"][:, 0, 0, 0].tolist() == [10, 11, 20, 21]   # grey -> every channel
    assert data["X_train"][3, 2, 5, 5] == 21
    assert data["y_val"].tolist() == [1] and data["X_val"][0, 1, 0, 0] == 7
    assert data["X_test"].shape == (1, 3, 64, 64) and data["y_test"] is None
    np.testing.assert_allclose(data["mean_image"], np.full((3, 64, 64), 15.5))
    centred = cs.load_tiny_imagenet(str(tmp_path))
    np.testing.assert_allclose(centred["X_val"], data["X_val"] - 15.5)
