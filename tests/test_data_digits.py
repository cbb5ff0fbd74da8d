"""The embedded UCI digits data set and its loader (minidl.data.load_digits)."""
import os

import numpy as np
import pytest

from minidl.data import load_digits
from minidl.data import _make_digits
from minidl.data.digits import DIGITS_PATH

SIZES = {"train": 1257, "val": 180, "test": 360}


@pytest.fixture(scope="module")
def raw():
    with np.load(DIGITS_PATH) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def data():
    return load_digits()


def test_the_embedded_file_is_small_and_holds_all_1797_images(raw):
    assert os.path.getsize(DIGITS_PATH) < 100 * 1024
    assert raw["images"].shape == (1797, 8, 8)
    assert raw["labels"].shape == (1797,)
    assert raw["images"].min() == 0 and raw["images"].max() == 16
    assert np.array_equal(np.unique(raw["labels"]), np.arange(10))


def test_default_load_gives_nchw_float32_images_and_int64_labels(data):
    assert set(data) == {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    for split, n in SIZES.items():
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        assert X.shape == (n, 1, 8, 8)
        assert X.dtype == np.float32 and X.flags.c_contiguous
        assert y.shape == (n,) and y.dtype == np.int64
        assert y.min() >= 0 and y.max() <= 9


def test_dtype_and_flatten_options():
    d64 = load_digits(dtype=np.float64, flatten=True)
    d32 = load_digits(dtype=np.float32)
    assert d64["X_train"].shape == (SIZES["train"], 64) and d64["X_train"].dtype == np.float64
    np.testing.assert_allclose(d64["X_test"].reshape(-1, 1, 8, 8), d32["X_test"], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_array_equal(d64["y_val"], d32["y_val"])


def test_normalisation_uses_training_statistics(data):
    X = data["X_train"].astype(np.float64)
    assert abs(X.mean()) < 1e-5
    assert abs(X.std() - 1.0) < 1e-5
    # The val/test images are shifted by the same (training) statistics, not their own.
    assert abs(data["X_test"].mean()) > 1e-4


def test_unnormalised_images_are_pixel_counts_over_16(raw):
    d = load_digits(dtype=np.float64, normalize=False)
    X = d["X_train"]
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    np.testing.assert_array_equal(X[:, 0] * 16, raw["images"][raw["train_idx"]])


def test_splits_are_disjoint_and_cover_every_image(raw):
    idx = [raw[f"{s}_idx"].astype(np.int64) for s in SIZES]
    allidx = np.concatenate(idx)
    assert [len(i) for i in idx] == list(SIZES.values())
    assert len(np.unique(allidx)) == 1797 == len(allidx)


def test_splits_are_stratified_by_class(data):
    total = sum(SIZES.values())
    all_counts = sum(np.bincount(data[f"y_{s}"], minlength=10) for s in SIZES)
    for split, n in SIZES.items():
        counts = np.bincount(data[f"y_{split}"], minlength=10)
        expected = all_counts * n / total
        # Largest-remainder quotas: every class within one image of its exact share.
        assert np.all(np.abs(counts - expected) < 1.0 + 1e-9), (split, counts, expected)


def test_loading_is_deterministic(data):
    again = load_digits()
    for k in data:
        np.testing.assert_array_equal(data[k], again[k])


def test_the_stored_split_is_the_documented_seeded_split(raw):
    split = _make_digits.make_split(raw["labels"].astype(np.int64))
    for s in SIZES:
        np.testing.assert_array_equal(split[s], raw[f"{s}_idx"])


def test_integer_dtype_is_rejected():
    with pytest.raises(TypeError, match="load_digits: dtype"):
        load_digits(dtype=np.int32)
