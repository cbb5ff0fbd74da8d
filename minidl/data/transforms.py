"""Preprocessing and training augmentation on batches of NCHW NumPy arrays.

Every transform is a small callable ``t(X, rng) -> X`` that takes a whole batch X of shape
(N, C, H, W) and returns a new array (the input is never modified). Random transforms draw
from ``rng``, so the same generator state gives the same output; transforms compose::

    from minidl.data.transforms import Compose, RandomCrop, RandomHorizontalFlip

    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip()])
    rng = np.random.default_rng(0)
    X_batch = augment(X_batch, rng)        # once per training minibatch, never on val/test

Per-channel normalisation is fitted on the training images and applied to every split::

    data, norm = normalize_splits(data)    # mean/std of data['X_train'], per channel

rng may be a numpy Generator, a legacy RandomState, an int seed, or None (NumPy's global
generator, so that ``np.random.seed`` makes a run repeatable, as the Solver does).
"""
import numpy as np

from .._config import get_default_dtype

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "normalize_splits"]


def _rng(rng):
    """A generator with .random(size) and integer draws; see the module docstring."""
    if rng is None:
        return np.random  # the module's random()/randint() draw from the global generator
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"transforms: rng must be a numpy Generator, RandomState, int seed or None, "
                    f"got {type(rng).__name__}")


def _integers(rng, high, size):
    """Uniform ints in [0, high] (inclusive) from either kind of generator."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, high + 1, size=size)
    return rng.randint(0, high + 1, size=size)


def _check_batch(owner, X, ndim=4):
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{owner}: X must be a NumPy array, got {type(X).__name__}")
    if X.ndim != ndim:
        raise ValueError(f"{owner}: X must be a batch of images of shape (N, C, H, W), got "
                         f"shape {X.shape}")


def _size_pair(owner, name, value, minimum):
    """An int or (h, w) pair of ints >= minimum."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if (len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < minimum for v in pair)):
        raise ValueError(f"{owner}: {name} must be an int >= {minimum} or a pair of them, got "
                         f"{value!r}")
    return int(pair[0]), int(pair[1])


class Compose:
    """Apply transforms in order: Compose([t1, t2])(X, rng) == t2(t1(X, rng), rng).

    transforms: a sequence of callables (X, rng) -> X.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable (X, rng) -> X, got "
                                f"{t!r}")

    def __call__(self, X, rng=None):
        rng = _rng(rng)  # resolve once so an int seed is not restarted by every transform
        for t in self.transforms:
            X = t(X, rng)
        return X

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])" if inner else "Compose([])"


class Normalize:
    """Per-channel standardisation: out[:, c] = (X[:, c] - mean[c]) / std[c].

    - mean, std: sequences of C floats (std > 0). Usually fitted: ``Normalize.fit(X_train)``.

    Shape: X (N, C, ...) -> same shape; the channel axis is 1 (NCHW images, or (N, D)
    feature rows, each feature a channel). Float inputs keep their dtype; integer images
    (e.g. uint8 pixels) become minidl.get_default_dtype(). Deterministic: rng is ignored.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean has {self.mean.size} channels but std has "
                             f"{self.std.size}")
        if not np.all(self.std > 0):
            bad = np.flatnonzero(~(self.std > 0)).tolist()
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()} "
                             f"(channels {bad}); a constant channel cannot be standardised")

    @classmethod
    def fit(cls, X):
        """Fit the mean and (population) standard deviation of each channel of X (N, C, ...),
        over the batch and all spatial positions, accumulated in float64."""
        if not isinstance(X, np.ndarray) or X.ndim < 2:
            raise ValueError(f"Normalize.fit: X must be an array of shape (N, C, ...), got "
                             f"{getattr(X, 'shape', type(X).__name__)}")
        if X.shape[0] == 0:
            raise ValueError(f"Normalize.fit: X has no rows (shape {X.shape})")
        axes = (0,) + tuple(range(2, X.ndim))
        mean = X.mean(axis=axes, dtype=np.float64)
        std = X.std(axis=axes, dtype=np.float64)
        return cls(mean, std)

    def _broadcast(self, X, owner):
        if X.ndim < 2 or X.shape[1] != self.mean.size:
            raise ValueError(f"{owner}: X of shape {X.shape} must have {self.mean.size} "
                             "channels on axis 1")
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else get_default_dtype()
        shape = (1, -1) + (1,) * (X.ndim - 2)
        return (dtype, self.mean.astype(dtype).reshape(shape),
                self.std.astype(dtype).reshape(shape))

    def __call__(self, X, rng=None):
        dtype, mean, std = self._broadcast(np.asarray(X), "Normalize")
        return (np.asarray(X, dtype=dtype) - mean) / std

    def inverse(self, X):
        """Undo the normalisation (for showing images): X * std + mean."""
        dtype, mean, std = self._broadcast(np.asarray(X), "Normalize.inverse")
        return np.asarray(X, dtype=dtype) * std + mean

    def __repr__(self):
        def fmt(values):
            return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"

        return f"Normalize(mean={fmt(self.mean)}, std={fmt(self.std)})"


def normalize_splits(data, fit_key="X_train"):
    """Fit per-channel mean/std on data[fit_key] and apply them to every 'X_*' entry.

    data: a dict as load_cifar10 / load_digits return (X_train, y_train, X_val, ...).
    Returns (new_data, normalize): a new dict (labels and other entries shared, images
    normalised) and the fitted Normalize, to apply to new images or undo with .inverse.
    Statistics come from the training split only, so nothing leaks from val/test.
    """
    if fit_key not in data:
        raise KeyError(f"normalize_splits: data has no {fit_key!r} (keys: {', '.join(data)})")
    norm = Normalize.fit(data[fit_key])
    out = dict(data)
    for key, value in data.items():
        if key.startswith("X_"):
            out[key] = norm(value)
    return out, norm


class RandomCrop:
    """Random crop of each image, after zero padding: the translation augmentation.

    - size: output height and width, an int or (h, w).
    - padding: pixels added on every side before cropping, an int or (ph, pw). With
      size = input size and padding p, each image is shifted by -p..p pixels in each
      direction, uncovered pixels taking ``fill``.
    - fill: value of the padded pixels (default 0: black for raw pixels, the mean colour
      for mean-subtracted or normalised images).

    Shape: X (N, C, H, W) -> (N, C, h, w); needs h <= H + 2 ph and w <= W + 2 pw. Each
    image gets its own offset, uniform over the valid positions: row offsets are drawn
    first, then column offsets, from rng. dtype is preserved.
    """

    def __init__(self, size, padding=0, fill=0.0):
        self.size = _size_pair("RandomCrop", "size", size, 1)
        self.padding = _size_pair("RandomCrop", "padding", padding, 0)
        self.fill = fill

    def __call__(self, X, rng=None):
        _check_batch("RandomCrop", X)
        rng = _rng(rng)
        (h, w), (ph, pw) = self.size, self.padding
        N, C, H, W = X.shape
        Hp, Wp = H + 2 * ph, W + 2 * pw
        if h > Hp or w > Wp:
            raise ValueError(f"RandomCrop: crop {h}x{w} is larger than the padded input "
                             f"{Hp}x{Wp} (input {H}x{W}, padding {ph}x{pw})")
        if ph or pw:
            Xp = np.full((N, C, Hp, Wp), self.fill, dtype=X.dtype)
            Xp[:, :, ph:ph + H, pw:pw + W] = X
        else:
            Xp = X
        top = _integers(rng, Hp - h, N)
        left = _integers(rng, Wp - w, N)
        # windows[n, c, i, j] is the h x w crop at (i, j): a view, nothing is copied until
        # the fancy index below picks one window per image. The advanced indices (n, i, j)
        # are split by the channel slice, so NumPy puts their axis first: (N, C, h, w).
        windows = np.lib.stride_tricks.sliding_window_view(Xp, (h, w), axis=(2, 3))
        return np.ascontiguousarray(windows[np.arange(N), :, top, left])

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability p (default 0.5).

    Shape: X (N, C, H, W) -> same shape and dtype; flipped images are X[n, :, :, ::-1]
    exactly. One uniform draw per image from rng decides.
    """

    def __init__(self, p=0.5):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got "
                             f"{p!r}")
        self.p = float(p)

    def __call__(self, X, rng=None):
        _check_batch("RandomHorizontalFlip", X)
        flip = _rng(rng).random(X.shape[0]) < self.p
        out = X.copy()
        out[flip] = X[flip][:, :, :, ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
