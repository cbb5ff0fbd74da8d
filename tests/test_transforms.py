"""Preprocessing and augmentation: per-channel normalisation, random crop, horizontal flip."""
import numpy as np
import pytest

from minidl.data.transforms import (Compose, Normalize, RandomCrop, RandomHorizontalFlip,
                                    normalize_splits)


def _images(n=8, c=3, h=6, w=5, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)


# --------------------------------------------------------------------------- Normalize

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_fit_gives_zero_mean_unit_std_per_channel(dtype):
    X = _images(n=20, dtype=dtype) * np.array([1.0, 5.0, 0.1]).reshape(1, 3, 1, 1) + \
        np.array([3.0, -2.0, 100.0]).reshape(1, 3, 1, 1)
    X = X.astype(dtype)
    norm = Normalize.fit(X)
    out = norm(X)
    assert out.dtype == dtype and out.shape == X.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=tol)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=tol)
    np.testing.assert_allclose(norm.inverse(out), X, rtol=tol * 10, atol=tol * 1000)


def test_normalize_splits_uses_train_statistics_for_every_split():
    train, val = _images(n=30, seed=1) + 4.0, _images(n=10, seed=2) * 3.0
    train_copy = train.copy()
    data = {"X_train": train, "y_train": np.arange(30), "X_val": val, "y_val": np.arange(10)}
    out, norm = normalize_splits(data)
    mean, std = train.mean(axis=(0, 2, 3)), train.std(axis=(0, 2, 3))
    np.testing.assert_allclose(out["X_val"], (val - mean[:, None, None]) / std[:, None, None])
    np.testing.assert_allclose(norm.mean, mean)
    assert out["y_val"] is data["y_val"]
    np.testing.assert_array_equal(data["X_train"], train_copy)  # the input is not modified
    np.testing.assert_allclose(out["X_train"].mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_normalize_converts_uint8_pixels_to_the_default_float():
    X = np.random.default_rng(0).integers(0, 256, (4, 3, 2, 2), dtype=np.uint8)
    out = Normalize([127.5] * 3, [127.5] * 3)(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (X / 127.5 - 1).astype(np.float32), atol=1e-6)


def test_normalize_rejects_wrong_channels_and_constant_channels():
    with pytest.raises(ValueError, match=r"X of shape \(8, 3, 6, 5\) must have 2 channels"):
        Normalize([0, 0], [1, 1])(_images())
    X = _images()
    X[:, 1] = 7.0
    with pytest.raises(ValueError, match=r"channels \[1\]"):
        Normalize.fit(X)


# --------------------------------------------------------------------------- RandomCrop

def _find_offset(padded, crop):
    """All (top, left) at which crop (C, h, w) occurs in padded (C, Hp, Wp)."""
    _, h, w = crop.shape
    return [(i, j) for i in range(padded.shape[1] - h + 1) for j in range(padded.shape[2] - w + 1)
            if np.array_equal(padded[:, i:i + h, j:j + w], crop)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_crop_returns_shifted_windows_of_the_zero_padded_image(dtype):
    X = _images(n=40, h=6, w=5, dtype=dtype) + 10.0  # no zeros in the image itself
    out = RandomCrop((6, 5), padding=2)(X, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == dtype and out.flags.c_contiguous
    padded = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = []
    for n in range(len(X)):
        found = _find_offset(padded[n], out[n])
        assert len(found) == 1, f"image {n}: crop is not a window of the padded image"
        offsets.append(found[0])
    # Offsets vary per image and reach both extremes (0 and 2 * padding) in both axes.
    tops, lefts = zip(*offsets)
    assert {0, 4} <= set(tops) and {0, 4} <= set(lefts)


def test_random_crop_to_a_smaller_size_without_padding():
    X = _images(n=10, h=7, w=9)
    out = RandomCrop(4)(X, np.random.default_rng(1))
    assert out.shape == (10, 3, 4, 4)
    for n in range(10):
        assert len(_find_offset(X[n], out[n])) == 1


def test_random_crop_fill_value_is_used_for_padding():
    X = np.ones((50, 1, 3, 3))
    out = RandomCrop(3, padding=1, fill=-5.0)(X, np.random.default_rng(0))
    assert set(np.unique(out)) == {1.0, -5.0}


def test_random_crop_is_deterministic_given_the_rng_and_leaves_input_alone():
    X = _images()
    before = X.copy()
    a = RandomCrop((6, 5), padding=(1, 2))(X, np.random.default_rng(3))
    b = RandomCrop((6, 5), padding=(1, 2))(X, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(X, before)


def test_random_crop_errors_name_the_sizes():
    with pytest.raises(ValueError, match="crop 10x10 is larger than the padded input 8x7"):
        RandomCrop(10, padding=1)(_images(), 0)
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\), got shape \(8, 30\)"):
        RandomCrop(3)(np.zeros((8, 30)), 0)
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        RandomCrop(3, padding=-1)


# --------------------------------------------------------------------------- horizontal flip

def test_flip_outputs_are_exact_mirrors_or_unchanged():
    X = _images(n=64)
    out = RandomHorizontalFlip()(X, np.random.default_rng(0))
    flipped = np.array([np.array_equal(out[n], X[n, :, :, ::-1]) for n in range(64)])
    same = np.array([np.array_equal(out[n], X[n]) for n in range(64)])
    assert np.all(flipped ^ same)  # each image is exactly one of the two
    assert 16 < flipped.sum() < 48  # about half flipped with p=0.5


def test_flip_probability_extremes():
    X = _images()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(X, 0), X[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(X, 0), X)
    with pytest.raises(ValueError, match="p must be a probability"):
        RandomHorizontalFlip(p=1.5)


def test_flip_with_global_rng_is_repeatable_with_np_random_seed():
    X = _images(n=32)
    np.random.seed(5)
    a = RandomHorizontalFlip()(X)
    np.random.seed(5)
    b = RandomHorizontalFlip()(X)
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- Compose

def test_compose_applies_transforms_in_order_from_one_rng():
    X = _images(n=16)
    augment = Compose([RandomCrop((6, 5), padding=1), RandomHorizontalFlip()])
    out = augment(X, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    expected = RandomHorizontalFlip()(RandomCrop((6, 5), padding=1)(X, rng), rng)
    np.testing.assert_array_equal(out, expected)
    # An int seed is one generator for the whole pipeline, the same as default_rng(seed).
    np.testing.assert_array_equal(augment(X, 7), out)
    assert "RandomCrop" in repr(augment) and "RandomHorizontalFlip" in repr(augment)


def test_compose_with_normalize_and_bad_members():
    X = _images(n=10) * 2 + 1
    pipeline = Compose([Normalize.fit(X), RandomHorizontalFlip(p=1.0)])
    out = pipeline(X, 0)
    np.testing.assert_allclose(out[..., ::-1].mean(axis=(0, 2, 3)), 0, atol=1e-12)
    with pytest.raises(TypeError, match="callable"):
        Compose([RandomHorizontalFlip(), "flip"])
    with pytest.raises(TypeError, match="rng must be"):
        RandomHorizontalFlip()(X, "seed")
