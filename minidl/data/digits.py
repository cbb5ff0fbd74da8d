"""The embedded default data set: UCI optical recognition of handwritten digits.

1,797 grey 8x8 images of the digits 0-9 (pixel values 0..16), from E. Alpaydin and
C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository
(1998), licensed CC BY 4.0. It ships inside the package (``digits.npz``, about 49 KB)
with a fixed, stratified train/val/test split of 1,257 / 180 / 360 images, so that
``minidl demo`` and the tests work offline. See ``README.txt`` beside this file for the
credit, the licence and how the split was made.
"""
import os

import numpy as np

from .._config import get_default_dtype

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
DIGITS_CLASSES = tuple(str(d) for d in range(10))
_SPLITS = ("train", "val", "test")


def _read_digits():
    """Raw arrays from digits.npz: images uint8 (1797, 8, 8), labels uint8, split indices."""
    try:
        with np.load(DIGITS_PATH) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(
            f"load_digits: the embedded data file {DIGITS_PATH} is missing; the minidl "
            "installation is incomplete (reinstall with `pip install -e .`)") from None


def load_digits(dtype=None, normalize=True, flatten=False):
    """Load the embedded digits data set with its fixed train/val/test split.

    Inputs:
    - dtype: float dtype of the images; None means minidl.get_default_dtype() (float32
      unless changed).
    - normalize: if True (default), pixels are scaled to [0, 1] by dividing by 16 and
      then standardised with the scalar mean and standard deviation of all training
      pixels (the statistics of the training split only, so nothing leaks from val/test).
      If False, images are only scaled to [0, 1].
    - flatten: if True, images are returned as rows of shape (N, 64) instead of
      (N, 1, 8, 8).

    Returns a dict with
    - 'X_train' (1257, 1, 8, 8), 'X_val' (180, 1, 8, 8), 'X_test' (360, 1, 8, 8)
      images in NCHW layout (or (N, 64) with flatten=True), of the requested dtype;
    - 'y_train' (1257,), 'y_val' (180,), 'y_test' (360,): int64 labels in 0..9.

    The split is stratified by class and identical on every call and every machine.
    Data: UCI optical recognition of handwritten digits, Alpaydin & Kaynak, CC BY 4.0.
    """
    dtype = get_default_dtype() if dtype is None else dtype
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"load_digits: dtype must be a floating type, got {np.dtype(dtype)}")
    raw = _read_digits()
    # Compute in float64 so float32 and float64 loads agree to float32 rounding.
    images = raw["images"].astype(np.float64) / 16.0
    labels = raw["labels"].astype(np.int64)
    if normalize:
        train = images[raw["train_idx"]]
        images = (images - train.mean()) / train.std()
    images = images.reshape(-1, 1, 8, 8)
    if flatten:
        images = images.reshape(len(images), -1)
    data = {}
    for split in _SPLITS:
        idx = raw[f"{split}_idx"].astype(np.intp)
        data[f"X_{split}"] = np.ascontiguousarray(images[idx], dtype=dtype)
        data[f"y_{split}"] = labels[idx]
    return data
