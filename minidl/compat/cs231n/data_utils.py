"""CS231n ``cs231n/data_utils.py``: CIFAR-10, Tiny ImageNet and the ImageNet sample, loaded
safely.

The CIFAR-10 functions are minidl.data.cifar10's reader (minidl.data.load_cifar10) with the
course's signatures and return values. Nothing here unpickles arbitrary objects by default:
pickles are read with minidl's plain-data unpickler, which accepts dicts, lists, tuples, sets,
strings, bytes, numbers, None and NumPy arrays and refuses everything else (a class instance
or a function could run code when loaded); ``allow_pickle=True`` (load_pickle, load_models)
reads trusted files with Python's pickle instead.

Where the data is looked for (the course keeps it in ``cs231n/datasets/``):
1. the ``datasets`` folder of the ``cs231n`` package written by
   ``python -m minidl.compat.cs231n install DIR`` (DIR/cs231n/datasets), when it is in use;
2. ``cs231n/datasets`` under the current folder (the course's notebooks run from the
   assignment folder);
3. $MINIDL_DATA, else ~/.minidl/data (where minidl.data.load_cifar10 looks).
A missing data set raises FileNotFoundError with the course's download command.
"""
import os as _os
import pickle as _pickle
import zipfile as _zipfile

import numpy as _np

from ...data import cifar10 as _cifar10

__all__ = ["load_pickle", "load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data",
           "load_tiny_imagenet", "load_models", "load_imagenet_val"]

# Set by the forwarding package that `install` writes (see minidl.compat.cs231n.alias).
_datasets_dirs = []

_CIFAR10_COMMANDS = (
    "wget http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz -O cifar-10-python.tar.gz\n"
    "  tar -xzvf cifar-10-python.tar.gz\n"
    "  rm cifar-10-python.tar.gz")
_IMAGENET_VAL_COMMAND = "wget http://cs231n.stanford.edu/imagenet_val_25.npz"


def _datasets_candidates():
    """The course-layout datasets folders, in search order (see the module docstring)."""
    folders = list(_datasets_dirs) + [_os.path.join(_os.getcwd(), "cs231n", "datasets")]
    seen, out = set(), []
    for f in folders:
        f = _os.path.abspath(f)
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _missing(fn, what, searched, commands, script):
    """FileNotFoundError with the searched folders and the course's download command."""
    target = searched[0]
    lines = [f"{fn}: {what} not found. Searched:"] + [f"  {s}" for s in searched]
    lines.append("Download it with the course's command:")
    if _os.path.isfile(_os.path.join(target, script)):
        lines.append(f"  cd {target} && bash {script}")
    else:
        lines.append(f"  mkdir -p {target} && cd {target}")
        lines.append(f"  {commands}")
    lines.append("(or set MINIDL_DATA to a folder that holds it).")
    return FileNotFoundError("\n".join(lines))


def _home_data_dir():
    """$MINIDL_DATA, else ~/.minidl/data: minidl.data.load_cifar10's default folder."""
    (folder,), _ = _cifar10._candidate_roots(None)
    return _os.path.abspath(_os.path.expanduser(folder))


def _find_cifar10_folder(fn, root):
    """The folder with data_batch_1..5 and test_batch: root or root/cifar-10-batches-py if
    root is given, else the same in each folder of the module docstring."""
    bases = [_os.fspath(root)] if root is not None else \
        _datasets_candidates() + [_home_data_dir()]
    for base in bases:
        try:
            return _cifar10.find_cifar10(base)
        except FileNotFoundError:
            pass
    raise _missing(fn, f"the CIFAR-10 python batches ({_cifar10.CIFAR10_FOLDER}/"
                   "data_batch_1..5 and test_batch)", bases, _CIFAR10_COMMANDS,
                   "get_datasets.sh")


def load_pickle(f, allow_pickle=False):
    """Read a pickle from the open binary file f, as the course does (Python 2 strings
    decoded as latin1).

    By default only plain data is accepted: dicts, lists, tuples, sets, strings, bytes,
    numbers, None and NumPy arrays, scalars and dtypes (CIFAR-10 batches, the courses' data
    files); anything else raises minidl.data.cifar10.UnsafePickleError (a
    pickle.UnpicklingError) before it is created. allow_pickle=True uses Python's pickle,
    which can run code: only for files you trust.
    """
    if allow_pickle:
        return _pickle.load(f, encoding="latin1")
    return _cifar10.load_plain_pickle(f, encoding="latin1")


def load_CIFAR_batch(filename):
    """One CIFAR-10 python batch -> X (n, 32, 32, 3) float64 (channels last, RGB, 0..255),
    Y (n,) int64 labels in 0..9. (minidl.data.cifar10.load_cifar10_batch, transposed.)"""
    X, Y = _cifar10.load_cifar10_batch(filename)
    return X.transpose(0, 2, 3, 1).astype(_np.float64), Y


def load_CIFAR10(ROOT):
    """All of CIFAR-10 from the folder ROOT (or its cifar-10-batches-py subfolder) ->
    Xtr (50000, 32, 32, 3), Ytr (50000,), Xte (10000, 32, 32, 3), Yte (10000,):
    float64 images channels last, int64 labels."""
    folder = _find_cifar10_folder("load_CIFAR10", ROOT)
    parts = [load_CIFAR_batch(_os.path.join(folder, name))
             for name in _cifar10.TRAIN_BATCHES]
    Xtr = _np.concatenate([p[0] for p in parts])
    Ytr = _np.concatenate([p[1] for p in parts])
    del parts
    Xte, Yte = load_CIFAR_batch(_os.path.join(folder, _cifar10.TEST_BATCH))
    return Xtr, Ytr, Xte, Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000,
                     subtract_mean=True, *, cifar10_dir=None):
    """CIFAR-10 prepared for the classifiers, as the course's get_CIFAR10_data.

    Inputs:
    - num_training: the first num_training training images (default 49,000);
    - num_validation: the next num_validation training images (default 1,000);
    - num_test: the first num_test test images (default 1,000);
    - subtract_mean: subtract the mean training image from every split (default True);
    - cifar10_dir (minidl, keyword): the batches' folder; default: the search of the module
      docstring.

    Returns {'X_train', 'y_train', 'X_val', 'y_val', 'X_test', 'y_test'}: images float64
    (N, 3, 32, 32), channels first, labels int64 (N,). Built on minidl.data.load_cifar10.
    """
    folder = _find_cifar10_folder("get_CIFAR10_data", cifar10_dir)
    return _cifar10.load_cifar10(root=folder, num_training=num_training,
                                 num_validation=num_validation, num_test=num_test,
                                 dtype=_np.float64, subtract_mean=subtract_mean)


# --------------------------------------------------------------------------- Tiny ImageNet

def _imread(fn, path):
    """An image file as an (H, W) or (H, W, C) uint8 array, through imageio or Pillow."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        imageio = None
    if imageio is not None:
        return _np.asarray(imageio.imread(path))
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{fn}: reading images needs imageio or Pillow "
                          "(pip install pillow)") from None
    with Image.open(path) as img:
        return _np.asarray(img)


def _read_images(fn, files, dtype):
    """Image files (64 x 64, RGB or grey) -> (n, 3, 64, 64) array of dtype."""
    X = _np.zeros((len(files), 3, 64, 64), dtype=dtype)
    for i, path in enumerate(files):
        img = _imread(fn, path)
        if img.ndim == 2:  # a grey image: one channel, broadcast to three
            img = img[:, :, None]
        if img.shape[:2] != (64, 64):
            raise ValueError(f"{fn}: {path} is {img.shape[1]}x{img.shape[0]}; Tiny ImageNet "
                             "images are 64x64")
        X[i] = img[:, :, :3].transpose(2, 0, 1)
    return X


def _tab_lines(path):
    with open(path, "r") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def load_tiny_imagenet(path, dtype=_np.float32, subtract_mean=True):
    """Load TinyImageNet (TinyImageNet-100-A, -100-B or -200: the same folder layout).

    Inputs:
    - path: the data set's folder (wnids.txt, words.txt, train/, val/, test/).
    - dtype: dtype of the images.
    - subtract_mean: subtract the mean training image from every split.

    Returns a dict:
    - class_names: class_names[i] is the list of WordNet names of class i;
    - X_train (N_tr, 3, 64, 64), y_train (N_tr,); X_val (N_val, 3, 64, 64), y_val (N_val,);
    - X_test (N_test, 3, 64, 64), y_test (N_test,) or None when test/test_annotations.txt is
      absent (test images in sorted file order);
    - mean_image (3, 64, 64): the mean training image.
    Grey images are repeated on the three channels. Reading JPEGs needs imageio or Pillow.
    """
    fn = "load_tiny_imagenet"
    with open(_os.path.join(path, "wnids.txt"), "r") as f:
        wnids = [x.strip() for x in f if x.strip()]
    wnid_to_label = {wnid: i for i, wnid in enumerate(wnids)}
    wnid_to_words = {row[0]: [w.strip() for w in row[1].split(",")]
                     for row in _tab_lines(_os.path.join(path, "words.txt"))}
    class_names = [wnid_to_words[wnid] for wnid in wnids]

    X_train, y_train = [], []
    for i, wnid in enumerate(wnids):
        if (i + 1) % 20 == 0:
            print("loading training data for synset %d / %d" % (i + 1, len(wnids)))
        folder = _os.path.join(path, "train", wnid)
        names = [row[0] for row in _tab_lines(_os.path.join(folder, "%s_boxes.txt" % wnid))]
        X_train.append(_read_images(fn, [_os.path.join(folder, "images", n) for n in names],
                                    dtype))
        y_train.append(_np.full(len(names), wnid_to_label[wnid], dtype=_np.int64))
    X_train = _np.concatenate(X_train, axis=0)
    y_train = _np.concatenate(y_train, axis=0)

    val = _tab_lines(_os.path.join(path, "val", "val_annotations.txt"))
    X_val = _read_images(fn, [_os.path.join(path, "val", "images", row[0]) for row in val],
                         dtype)
    y_val = _np.array([wnid_to_label[row[1]] for row in val], dtype=_np.int64)

    test_names = sorted(_os.listdir(_os.path.join(path, "test", "images")))
    X_test = _read_images(fn, [_os.path.join(path, "test", "images", n) for n in test_names],
                          dtype)
    y_test = None
    test_annotations = _os.path.join(path, "test", "test_annotations.txt")
    if _os.path.isfile(test_annotations):
        name_to_wnid = {row[0]: row[1] for row in _tab_lines(test_annotations)}
        y_test = _np.array([wnid_to_label[name_to_wnid[n]] for n in test_names],
                           dtype=_np.int64)

    mean_image = X_train.mean(axis=0)
    if subtract_mean:
        X_train -= mean_image[None]
        X_val -= mean_image[None]
        X_test -= mean_image[None]
    return {"class_names": class_names, "X_train": X_train, "y_train": y_train,
            "X_val": X_val, "y_val": y_val, "X_test": X_test, "y_test": y_test,
            "mean_image": mean_image}


# --------------------------------------------------------------------------- saved models

def load_models(models_dir, allow_pickle=False):
    """{file name: model} for every pickle in models_dir holding a dict with a 'model' entry
    (files that are not pickles, such as a README, are skipped, as the course does).

    A pickled model is a Python object, which the safe reader refuses: such a file raises
    UnsafePickleError naming it, unless allow_pickle=True (trusted files only).
    """
    models = {}
    for model_file in sorted(_os.listdir(models_dir)):
        path = _os.path.join(models_dir, model_file)
        if not _os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            try:
                models[model_file] = load_pickle(f, allow_pickle=allow_pickle)["model"]
            except _cifar10.UnsafePickleError as e:
                raise _cifar10.UnsafePickleError(
                    f"load_models: {path}: {e}; pass allow_pickle=True if you trust the "
                    "file") from None
            except (_pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError):
                continue
    return models


# --------------------------------------------------------------------------- ImageNet sample

def _load_npz_plain(path):
    """The arrays of an .npz file; object arrays (a pickled dict, say) are read with the
    plain-data unpickler instead of np.load's allow_pickle=True."""
    out = {}
    with _np.load(path, allow_pickle=False) as npz:
        keys = list(npz.files)
        for key in keys:
            try:
                out[key] = npz[key]
            except ValueError:  # an object array: np.load would need allow_pickle
                out[key] = None
    with _zipfile.ZipFile(path) as z:
        for key in [k for k, v in out.items() if v is None]:
            with z.open(key + ".npy") as f:
                version = _np.lib.format.read_magic(f)
                if version == (1, 0):
                    _np.lib.format.read_array_header_1_0(f)
                else:
                    _np.lib.format.read_array_header_2_0(f)
                out[key] = _cifar10.load_plain_pickle(f, encoding="latin1")
    return out


def load_imagenet_val(num=None):
    """The 25 ImageNet validation images of the course (datasets/imagenet_val_25.npz).

    num: how many to return (default all). Returns X (num, 224, 224, 3) uint8 images, y (num,)
    integer labels, class_names {label: name}. Searched as the CIFAR-10 data (module
    docstring); a missing file raises FileNotFoundError with the course's download command.
    """
    searched = _datasets_candidates() + [_home_data_dir()]
    for folder in searched:
        path = _os.path.join(folder, "imagenet_val_25.npz")
        if _os.path.isfile(path):
            break
    else:
        raise _missing("load_imagenet_val", "imagenet_val_25.npz", searched,
                       _IMAGENET_VAL_COMMAND, "get_imagenet_val.sh")
    f = _load_npz_plain(path)
    X, y = f["X"], f["y"]
    label_map = f["label_map"]
    class_names = label_map.item() if isinstance(label_map, _np.ndarray) else label_map
    if num is not None:
        X, y = X[:num], y[:num]
    return X, y, class_names
