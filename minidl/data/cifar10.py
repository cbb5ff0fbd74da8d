"""CIFAR-10 from the standard "CIFAR-10 python version" batches, as the courses load it.

The data set (A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009)
is not shipped with minidl: download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
(163 MB) and extract it into the data folder, e.g.::

    mkdir -p ~/.minidl/data
    tar -xzf cifar-10-python.tar.gz -C ~/.minidl/data    # creates cifar-10-batches-py/

The archive holds ``data_batch_1`` .. ``data_batch_5`` (training, 10,000 images each) and
``test_batch`` (10,000 images): pickled dicts with b'data', a (10000, 3072) uint8 array whose
rows are one image's red, green and blue 32x32 planes, and b'labels', a list of ints in 0..9.

``load_cifar10()`` returns the same dict as CS231n's ``get_CIFAR10_data()``: X_train,
y_train, X_val, y_val, X_test, y_test, with images in NCHW float and the mean training
image subtracted. The batches are pickles, so they are read with an unpickler that accepts
only the NumPy array and bytes constructors a CIFAR batch contains: a file that would run
anything else is refused instead of executed.
"""
import importlib
import os
import pickle

import numpy as np

from .._config import get_default_dtype

__all__ = ["load_cifar10", "load_cifar10_batch", "find_cifar10", "load_plain_pickle",
           "UnsafePickleError", "CIFAR10_CLASSES", "CIFAR10_URL", "CIFAR10_FOLDER"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_IMAGE_SHAPE = (3, 32, 32)
_DEFAULT_HOME = os.path.join("~", ".minidl", "data")


# --------------------------------------------------------------------------- locating the data

def _candidate_roots(root):
    """The folders to search, in order: root, or $MINIDL_DATA, or ~/.minidl/data."""
    if root is not None:
        return [os.fspath(root)], "from the root argument"
    env = os.environ.get("MINIDL_DATA")
    if env:
        return [env], "from the MINIDL_DATA environment variable"
    return [_DEFAULT_HOME], "the default; neither root nor MINIDL_DATA was given"


def _has_batches(folder):
    return all(os.path.isfile(os.path.join(folder, name))
               for name in TRAIN_BATCHES + (TEST_BATCH,))


def find_cifar10(root=None):
    """The folder that holds the CIFAR-10 python batches.

    Searches ``root`` if given, else the environment variable MINIDL_DATA, else
    ~/.minidl/data; in each, both the folder itself and its ``cifar-10-batches-py``
    subfolder are accepted. Returns the absolute path of the folder that contains
    data_batch_1..5 and test_batch.

    Raises FileNotFoundError naming the folders searched, the files missing, the download
    address and where to extract the archive.
    """
    bases, source = _candidate_roots(root)
    searched, partial, archives = [], [], []
    for base in bases:
        base = os.path.abspath(os.path.expanduser(base))
        for folder in (base, os.path.join(base, CIFAR10_FOLDER)):
            searched.append(folder)
            if _has_batches(folder):
                return folder
            present = [n for n in TRAIN_BATCHES + (TEST_BATCH,)
                       if os.path.isfile(os.path.join(folder, n))]
            if present:
                missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if n not in present]
                partial.append(f"{folder} has {', '.join(present)} but lacks "
                               f"{', '.join(missing)}")
        archive = os.path.join(base, CIFAR10_ARCHIVE)
        if os.path.isfile(archive):
            archives.append((archive, base))

    target = os.path.abspath(os.path.expanduser(bases[0]))
    lines = ["load_cifar10: CIFAR-10 python batches (data_batch_1..5, test_batch) not found.",
             f"Searched ({source}):"]
    lines += [f"  {folder}" for folder in searched]
    lines += [f"Incomplete: {p}" for p in partial]
    if archives:
        archive, base = archives[0]
        lines.append(f"The archive {archive} is there but not extracted; run:")
        lines.append(f"  tar -xzf {archive} -C {base}")
    else:
        lines.append(f"Download {CIFAR10_URL} (163 MB) and extract it into that folder:")
        lines.append(f"  mkdir -p {target} && tar -xzf {CIFAR10_ARCHIVE} -C {target}")
    lines.append(f"which creates {os.path.join(target, CIFAR10_FOLDER)}/. Pass root=... or set "
                 "MINIDL_DATA to use another folder; minidl.data.load_digits() needs no download.")
    raise FileNotFoundError("\n".join(lines))


# --------------------------------------------------------------------------- reading a batch

# The only globals a CIFAR batch needs: NumPy's array and dtype constructors (their module is
# numpy.core in NumPy 1 pickles and numpy._core in NumPy 2 ones) and codecs.encode, which
# protocol-2 pickles use for bytes. Dicts, lists, tuples, strings, numbers and None are pickle
# opcodes of their own and need no global.
_NUMPY_GLOBALS = {("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                  ("numeric", "_frombuffer")}
# Plain containers that protocols below 4 pickle through a global.
_PLAIN_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle refers to a Python object other than plain data and NumPy arrays (it could
    run code when loaded), so the safe reader refused it."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        if module in ("builtins", "__builtin__") and name in _PLAIN_BUILTINS:
            return _PLAIN_BUILTINS[name]
        parts = module.split(".")
        if (len(parts) == 3 and parts[0] == "numpy" and parts[1] in ("core", "_core")
                and (parts[2], name) in _NUMPY_GLOBALS):
            # Import from whichever of numpy._core / numpy.core this NumPy has.
            core = "numpy._core" if hasattr(np, "_core") else "numpy.core"
            return getattr(importlib.import_module(f"{core}.{parts[2]}"), name)
        raise UnsafePickleError(f"refusing to load {module}.{name}: only plain data (dicts, "
                                "lists, tuples, strings, bytes, numbers, None) and NumPy arrays "
                                "are read by the safe unpickler")


def load_plain_pickle(file, encoding="bytes"):
    """Unpickle plain data from an open binary file, refusing everything that could run code.

    Accepted: dicts, lists, tuples, sets, strings, bytes, numbers, bools, None, and NumPy
    arrays, scalars and dtypes (what CIFAR-10 batches and the courses' data files hold).
    Anything else (class instances, functions, other modules' globals) raises
    UnsafePickleError (a pickle.UnpicklingError) before it is created. ``encoding`` decodes
    Python 2 strings, as for pickle.load ('bytes' keeps them bytes, 'latin1' makes str).
    """
    return _PlainDataUnpickler(file, encoding=encoding).load()


def _get(batch, key):
    """batch[b'key'] (bytes keys: the files are Python 2 pickles) or batch['key']."""
    if key.encode() in batch:
        return batch[key.encode()]
    if key in batch:
        return batch[key]
    raise KeyError(key)


def load_cifar10_batch(path):
    """Read one CIFAR-10 python batch file.

    Inputs:
    - path: a batch file (data_batch_k or test_batch): a pickled dict with b'data', a
      (n, 3072) uint8 array, and b'labels', n ints in 0..9.

    Returns (X, y): X uint8 of shape (n, 3, 32, 32) (NCHW, RGB), y int64 of shape (n,).
    Raises FileNotFoundError if path is missing and ValueError if it is not a CIFAR-10
    batch (unreadable, other keys, wrong shapes or dtype, labels out of range).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            batch = load_plain_pickle(f)
        except Exception as e:  # any unpickling failure means "not a CIFAR batch"
            raise ValueError(f"load_cifar10: {path} is not a readable CIFAR-10 python batch "
                             f"({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise ValueError(f"load_cifar10: {path} holds a {type(batch).__name__}, expected the "
                         "dict of a CIFAR-10 python batch")
    try:
        data, labels = _get(batch, "data"), _get(batch, "labels")
    except KeyError as e:
        keys = ", ".join(repr(k) for k in batch)
        raise ValueError(f"load_cifar10: {path} has no {e.args[0]!r} entry (keys: {keys}); "
                         "expected b'data' and b'labels'") from None
    data = np.asarray(data)
    n_pixels = int(np.prod(_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_pixels:
        raise ValueError(f"load_cifar10: {path}: b'data' must be a uint8 array of shape "
                         f"(n, {n_pixels}), got {data.dtype} {data.shape}")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != data.shape[0]:
        raise ValueError(f"load_cifar10: {path}: {y.shape[0]} labels for {data.shape[0]} "
                         "images")
    if y.size and (y.min() < 0 or y.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(f"load_cifar10: {path}: labels must be in 0..9, got "
                         f"{y.min()}..{y.max()}")
    # Each row is the R plane, then G, then B, each row-major: exactly C, H, W order.
    return data.reshape((-1,) + _IMAGE_SHAPE), y


# --------------------------------------------------------------------------- the loader

def _count(name, value, available):
    """Validate a split size: None means all that is available."""
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"load_cifar10: {name} must be a non-negative int or None, got "
                         f"{value!r}")
    return int(value)


def load_cifar10(root=None, num_training=None, num_validation=1000, num_test=None, dtype=None,
                 subtract_mean=True):
    """Load CIFAR-10 as CS231n's get_CIFAR10_data does: a dict of NCHW float arrays.

    Inputs:
    - root: the folder with data_batch_1..5 and test_batch, or its parent holding
      cifar-10-batches-py/. None: the environment variable MINIDL_DATA, else
      ~/.minidl/data (see find_cifar10).
    - num_training: training images, the first ones of the training batches; None (default)
      takes every training image not used for validation (49,000 with the defaults).
    - num_validation: validation images, the ones right after the training images (as
      CS231n: rows num_training .. num_training + num_validation). Default 1000.
    - num_test: test images, the first of test_batch; None (default) takes all 10,000.
      (CS231n's get_CIFAR10_data defaults to 1000: pass num_test=1000 to match it.)
    - dtype: float dtype of the images; None means minidl.get_default_dtype() (float32
      unless changed).
    - subtract_mean: if True (default), subtract the mean training image (one value per
      channel and pixel, computed over the X_train returned; skipped when num_training is
      0) from every split, as CS231n does. Pixels keep the 0..255 scale; for per-channel mean/std normalisation use
      minidl.data.transforms.normalize_splits on the result.

    Returns a dict with
    - 'X_train' (num_training, 3, 32, 32), 'X_val' (num_validation, 3, 32, 32),
      'X_test' (num_test, 3, 32, 32): images in NCHW layout (RGB), of the requested dtype;
    - 'y_train', 'y_val', 'y_test': int64 labels in 0..9 (names in CIFAR10_CLASSES).

    Raises FileNotFoundError (with where to download and extract the data) when the
    batches are missing, ValueError for a malformed batch or split sizes that exceed the
    50,000 training / 10,000 test images.
    """
    dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"load_cifar10: dtype must be a floating type, got {np.dtype(dtype)}")
    folder = find_cifar10(root)
    parts = [load_cifar10_batch(os.path.join(folder, name)) for name in TRAIN_BATCHES]
    X_all = np.concatenate([p[0] for p in parts])
    y_all = np.concatenate([p[1] for p in parts])
    del parts
    X_test_all, y_test_all = load_cifar10_batch(os.path.join(folder, TEST_BATCH))

    n_all, n_test_all = len(X_all), len(X_test_all)
    num_validation = _count("num_validation", num_validation, n_all)
    num_training = _count("num_training", num_training, max(n_all - num_validation, 0))
    num_test = _count("num_test", num_test, n_test_all)
    if num_training + num_validation > n_all:
        raise ValueError(f"load_cifar10: num_training={num_training} + num_validation="
                         f"{num_validation} exceeds the {n_all} training images in {folder}")
    if num_test > n_test_all:
        raise ValueError(f"load_cifar10: num_test={num_test} exceeds the {n_test_all} test "
                         f"images in {folder}")

    # Slice the uint8 arrays first and convert only what is returned: the full training set
    # in float64 would be 1.2 GB.
    val_end = num_training + num_validation
    data = {
        "X_train": X_all[:num_training].astype(dtype),
        "y_train": y_all[:num_training].copy(),
        "X_val": X_all[num_training:val_end].astype(dtype),
        "y_val": y_all[num_training:val_end].copy(),
        "X_test": X_test_all[:num_test].astype(dtype),
        "y_test": y_test_all[:num_test].copy(),
    }
    if subtract_mean and num_training > 0:
        # Mean in float64 so float32 and float64 loads agree to float32 rounding.
        mean_image = data["X_train"].mean(axis=0, dtype=np.float64).astype(dtype)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    return data
