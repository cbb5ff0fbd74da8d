"""Rebuild ``digits.npz`` (the embedded data set) from the UCI digits CSV.

This is a maintainer script, not part of the runtime API; minidl never needs it to
run. It documents exactly how the shipped file was made, so the split can be
audited and reproduced::

    pip download scikit-learn --no-deps -d /tmp/skl
    unzip -o /tmp/skl/scikit_learn-*.whl 'sklearn/datasets/data/digits.csv.gz' -d /tmp/skl
    python -m minidl.data._make_digits /tmp/skl/sklearn/datasets/data/digits.csv.gz

The CSV is the test part of the UCI "Optical Recognition of Handwritten Digits"
data set (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), as redistributed by
scikit-learn: 1,797 rows of 64 pixel counts in 0..16 followed by the label.

The split is stratified by class and fixed by ``SPLIT_SEED``: inside each class the
indices are shuffled, then the first ``round(n_c * 360 / 1797)`` go to the test set,
the next ``round(n_c * 180 / 1797)`` to the validation set and the rest to the
training set, where rounding is by largest remainder so that the totals are exactly
``SPLIT_SIZES``. Each split's index list is then shuffled once more (same generator)
so that classes are interleaved.
"""
import gzip
import os
import sys

import numpy as np

SPLIT_SEED = 20240607
SPLIT_SIZES = {"train": 1257, "val": 180, "test": 360}
NUM_CLASSES = 10


def _largest_remainder(counts, total):
    """Integer quotas proportional to ``counts`` that sum exactly to ``total``."""
    exact = counts * (total / counts.sum())
    quota = np.floor(exact).astype(np.int64)
    short = total - quota.sum()
    # Ties are broken by class index (stable sort), so the result is deterministic.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:short]] += 1
    return quota


def make_split(labels, seed=SPLIT_SEED, sizes=SPLIT_SIZES):
    """Stratified (train, val, test) index arrays for ``labels`` of shape (N,)."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    n_test = _largest_remainder(counts, sizes["test"])
    n_val = _largest_remainder(counts, sizes["val"])
    parts = {"train": [], "val": [], "test": []}
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        parts["test"].append(idx[: n_test[c]])
        parts["val"].append(idx[n_test[c]: n_test[c] + n_val[c]])
        parts["train"].append(idx[n_test[c] + n_val[c]:])
    return {k: rng.permutation(np.concatenate(v)).astype(np.uint16) for k, v in parts.items()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m minidl.data._make_digits path/to/digits.csv.gz", file=sys.stderr)
        return 2
    with gzip.open(argv[0], "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65) or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise ValueError("unexpected digits table: shape %s" % (table.shape,))
    images = table[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = table[:, 64].astype(np.uint8)
    split = make_split(table[:, 64])
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
    np.savez_compressed(out, images=images, labels=labels, train_idx=split["train"],
                        val_idx=split["val"], test_idx=split["test"])
    print("wrote %s (%d bytes)" % (out, os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
