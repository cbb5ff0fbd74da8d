"""load_cifar10 on tiny batches written in the exact CIFAR-10 python format (no download)."""
import os
import pickle

import numpy as np
import pytest

from minidl.data.cifar10 import (CIFAR10_FOLDER, CIFAR10_URL, find_cifar10, load_cifar10,
                                 load_cifar10_batch)

N_PER_BATCH = 6  # the real batches hold 10,000 images; the format is the same


def _write_batch(path, images, labels, protocol=2):
    """A batch as the CIFAR-10 python version stores it: a pickled dict with bytes keys,
    b'data' (n, 3072) uint8 rows of R, G, B planes, b'labels' a list of ints."""
    batch = {
        b"batch_label": b"tiny test batch",
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), -1).astype(np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


def _make_cifar(folder, n=N_PER_BATCH, seed=0):
    """Write data_batch_1..5 and test_batch into folder; return the images and labels."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    train_x, train_y = [], []
    for k in range(1, 6):
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, size=n)
        _write_batch(os.path.join(folder, f"data_batch_{k}"), x, y)
        train_x.append(x)
        train_y.append(y)
    test_x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    test_y = rng.integers(0, 10, size=n)
    _write_batch(os.path.join(folder, "test_batch"), test_x, test_y)
    return np.concatenate(train_x), np.concatenate(train_y), test_x, test_y


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No MINIDL_DATA, and a HOME without data, so nothing real is found by accident."""
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_batch_rows_become_nchw_rgb_planes(tmp_path):
    # Row layout: 1024 red values, then 1024 green, then 1024 blue, each row-major.
    image = np.arange(3 * 32 * 32, dtype=np.int64).reshape(3, 32, 32) % 251
    _write_batch(tmp_path / "b", image[None], [7])
    X, y = load_cifar10_batch(tmp_path / "b")
    assert X.shape == (1, 3, 32, 32) and X.dtype == np.uint8
    np.testing.assert_array_equal(X[0], image)
    assert X[0, 1, 0, 0] == 1024 % 251  # first green pixel is element 1024 of the row
    assert y.dtype == np.int64 and y.tolist() == [7]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batch_reads_every_pickle_protocol(tmp_path, protocol):
    x = np.random.default_rng(1).integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    _write_batch(tmp_path / "b", x, [0, 1, 9], protocol=protocol)
    X, y = load_cifar10_batch(tmp_path / "b")
    np.testing.assert_array_equal(X, x)
    assert y.tolist() == [0, 1, 9]


def test_batch_pickled_by_old_numpy_loads(tmp_path):
    # The real files were written by Python 2 and NumPy 1, whose arrays pickle through
    # numpy.core.multiarray._reconstruct (numpy._core in NumPy 2): both names must load.
    x = np.random.default_rng(2).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    _write_batch(tmp_path / "b", x, [3, 4], protocol=2)
    raw = (tmp_path / "b").read_bytes().replace(b"numpy._core.multiarray",
                                                 b"numpy.core.multiarray")
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw
    (tmp_path / "old").write_bytes(raw)
    X, y = load_cifar10_batch(tmp_path / "old")
    np.testing.assert_array_equal(X, x)
    assert y.tolist() == [3, 4]


def test_splits_follow_cs231n_order_and_subtract_train_mean(tmp_path, no_env):
    train_x, train_y, test_x, test_y = _make_cifar(tmp_path)
    data = load_cifar10(tmp_path, num_training=20, num_validation=5, num_test=4,
                        dtype=np.float64)
    assert sorted(data) == ["X_test", "X_train", "X_val", "y_test", "y_train", "y_val"]
    mean = train_x[:20].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(data["X_train"], train_x[:20] - mean)
    np.testing.assert_allclose(data["X_val"], train_x[20:25] - mean)
    np.testing.assert_allclose(data["X_test"], test_x[:4] - mean)
    np.testing.assert_array_equal(data["y_train"], train_y[:20])
    np.testing.assert_array_equal(data["y_val"], train_y[20:25])
    np.testing.assert_array_equal(data["y_test"], test_y[:4])
    assert data["X_train"].dtype == np.float64 and data["y_train"].dtype == np.int64


def test_defaults_use_the_rest_for_training_and_the_whole_test_batch(tmp_path, no_env):
    train_x, _, test_x, _ = _make_cifar(tmp_path)
    data = load_cifar10(tmp_path, num_validation=4, subtract_mean=False)
    assert data["X_train"].shape == (5 * N_PER_BATCH - 4, 3, 32, 32)
    assert data["X_val"].shape == (4, 3, 32, 32)
    assert data["X_test"].shape == (N_PER_BATCH, 3, 32, 32)
    assert data["X_train"].dtype == np.float32  # minidl's default dtype
    np.testing.assert_array_equal(data["X_val"], train_x[-4:])
    np.testing.assert_array_equal(data["X_test"], test_x)


def test_float32_and_float64_loads_agree(tmp_path, no_env):
    _make_cifar(tmp_path)
    d32 = load_cifar10(tmp_path, num_validation=2, dtype=np.float32)
    d64 = load_cifar10(tmp_path, num_validation=2, dtype=np.float64)
    np.testing.assert_allclose(d32["X_train"], d64["X_train"], rtol=0, atol=1e-4)


def test_parent_folder_with_batches_subfolder_is_accepted(tmp_path, no_env):
    _make_cifar(tmp_path / CIFAR10_FOLDER)
    assert find_cifar10(tmp_path) == str(tmp_path / CIFAR10_FOLDER)
    assert load_cifar10(tmp_path, num_validation=1)["X_val"].shape == (1, 3, 32, 32)


def test_env_var_is_used_when_root_is_not_given(tmp_path, no_env):
    _make_cifar(tmp_path / "data" / CIFAR10_FOLDER)
    no_env.setenv("MINIDL_DATA", str(tmp_path / "data"))
    assert find_cifar10() == str(tmp_path / "data" / CIFAR10_FOLDER)


def test_home_default_is_used_without_root_or_env(tmp_path, no_env):
    _make_cifar(tmp_path / "home" / ".minidl" / "data" / CIFAR10_FOLDER)
    assert find_cifar10() == str(tmp_path / "home" / ".minidl" / "data" / CIFAR10_FOLDER)


def test_missing_data_error_says_where_searched_and_how_to_get_it(tmp_path, no_env):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10()
    msg = str(info.value)
    home = str(tmp_path / "home" / ".minidl" / "data")
    assert home in msg and os.path.join(home, CIFAR10_FOLDER) in msg
    assert CIFAR10_URL in msg and "tar -xzf" in msg


def test_missing_data_error_names_root_and_incomplete_batches(tmp_path, no_env):
    _make_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3") as info:
        load_cifar10(tmp_path)
    assert str(tmp_path) in str(info.value) and "root argument" in str(info.value)


def test_unextracted_archive_gets_the_extract_command(tmp_path, no_env):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not really")
    with pytest.raises(FileNotFoundError, match="not extracted") as info:
        load_cifar10(tmp_path)
    assert f"-C {tmp_path}" in str(info.value)


def test_split_sizes_larger_than_the_data_are_rejected(tmp_path, no_env):
    _make_cifar(tmp_path)
    with pytest.raises(ValueError, match="exceeds the 30 training images"):
        load_cifar10(tmp_path, num_training=28, num_validation=5)
    with pytest.raises(ValueError, match="num_test=7 exceeds the 6 test"):
        load_cifar10(tmp_path, num_test=7, num_validation=1)
    with pytest.raises(ValueError, match="num_validation"):
        load_cifar10(tmp_path, num_validation=-1)


def test_malformed_batch_is_a_clear_error(tmp_path):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"uint8 array of shape \(n, 3072\), got uint8 \(2, 100\)"):
        load_cifar10_batch(tmp_path / "b")
    _write_batch(tmp_path / "c", np.zeros((2, 3, 32, 32), np.uint8), [0, 10])
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        load_cifar10_batch(tmp_path / "c")
    (tmp_path / "d").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable CIFAR-10 python batch"):
        load_cifar10_batch(tmp_path / "d")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_batch_that_would_run_code_is_refused(tmp_path):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        load_cifar10_batch(tmp_path / "b")
