"""``minidl viz KIND``: draw what a network sees, as a PNG (matplotlib). The arrays come from
minidl.viz; this module picks the model and the input, checks the arguments and plots.

Also used by ``minidl train --viz`` (write_filters) and by docs/make_figures.py.
"""
import argparse
import os
import time

import numpy as np

import minidl
from minidl import viz
from minidl._io import save_png
from minidl.nn import ShapeError

from .args import UsageError, nonneg_float, nonneg_int, num_threads, positive_float, positive_int

HELP = ("draw what a network sees (PNG): filters, activations, saliency, occlusion, class "
        "images, fooling images, deconv")

KINDS = {
    "filters": "a layer's filters tiled into one image (default: the first layer)",
    "activations": "a layer's feature maps for the input images",
    "saliency": "max over channels of |d score / d pixel| (Simonyan et al. 2014)",
    "occlusion": "the class probability while a grey patch slides over the image (ZFNet)",
    "class": "an image the model takes for --class K: gradient ascent on the input (CS231n)",
    "fooling": "the input moved by small gradient steps until the model says --class K",
    "deconv": "a channel's strongest activation projected back to the input\n"
              "               (guided backpropagation)",
}

# Options that only some kinds take: dest -> (flag, kinds). Giving one to another kind is a
# usage error, not something silently ignored.
_ONLY_FOR = {
    "layer": ("--layer", ("filters", "activations", "deconv")),
    "channel": ("--channel", ("deconv",)),
    "class_": ("--class", ("saliency", "occlusion", "class", "fooling")),
    "patch": ("--patch", ("occlusion",)),
    "stride": ("--stride", ("occlusion",)),
    "fill": ("--fill", ("occlusion",)),
    "steps": ("--steps", ("class", "fooling")),
    "lr": ("--lr", ("class", "fooling")),
    "l2_reg": ("--l2-reg", ("class",)),
    "jitter": ("--jitter", ("class",)),
    "blur_every": ("--blur-every", ("class",)),
}

EXAMPLES = """examples:
  minidl train --model deepconvnet --epochs 5 --out runs/dcn      # a trained net to look at
  minidl viz filters --checkpoint runs/dcn/checkpoint.npz -o filters.png
  minidl viz activations --checkpoint runs/dcn/checkpoint.npz --layer relu1 --index 0,1,2
  minidl viz saliency --checkpoint runs/dcn/checkpoint.npz --index 0,1,2,3
  minidl viz occlusion --checkpoint runs/dcn/checkpoint.npz --index 0,1,2,3 --patch 3
  minidl viz class --checkpoint runs/dcn/checkpoint.npz --class 3 --steps 200
  minidl viz fooling --checkpoint runs/dcn/checkpoint.npz --index 5 --class 8
  minidl viz deconv --checkpoint runs/dcn/checkpoint.npz --layer conv2 --index 0,1,2,3
  minidl viz saliency --model resnet18 --size 224 --index 0   # architecture only (untrained)

The model: --checkpoint PATH (a `minidl train` checkpoint: its model and parameters), or
--model NAME (a coursework or zoo name as `minidl train` takes them, built with its initial,
untrained weights for inputs like the given ones: the digits unless --input).
The input: digits test images (--index N or N,N,..., default 0), or --input FILE: a .npy
array (C,H,W) or (N,C,H,W) in the model's input units, or a .png image (pixels scaled to
[0, 1], then standardised as the model's training data were: the digits' mean and std, or
CIFAR-10's per-channel ones). --size S resizes the images to SxS (nearest neighbour) first.
"""


def _indices(text):
    """argparse type: 'N' or 'N,N,...' -> a list of ints >= 0."""
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,... (image indices), got "
                                         f"{text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected indices >= 0, got {text!r}")
    return values


def add_arguments(parser):
    parser.description = "Draw what a network sees, as a PNG:\n" + "\n".join(
        f"  {k:13s}{v}" for k, v in KINDS.items())
    parser.epilog = EXAMPLES
    parser.add_argument("kind", choices=list(KINDS), help="what to draw")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="NAME",
                        help="a coursework or zoo model by name, untrained (see below)")
    source.add_argument("--checkpoint", metavar="PATH", help="a `minidl train` checkpoint")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--index", type=_indices, metavar="N[,N...]",
                       help="digits test images (default: 0)")
    given.add_argument("--input", metavar="FILE", help="a .npy or .png input image")
    parser.add_argument("--size", type=positive_int, metavar="S",
                        help="resize the input images to SxS (nearest neighbour)")
    parser.add_argument("--layer", metavar="NAME",
                        help="a layer name as in state_dict, e.g. conv1 or layer1.0.conv1 "
                        "(filters: default the first layer; activations: the first "
                        "convolution; deconv: the last convolution)")
    parser.add_argument("--class", dest="class_", type=nonneg_int, metavar="K",
                        help="the class: saliency and occlusion (default: the label, else the "
                        "prediction); class and fooling (required: the target)")
    parser.add_argument("--channel", type=nonneg_int, metavar="C",
                        help="deconv: the channel (default: each image's most active one)")
    parser.add_argument("--patch", type=positive_int, metavar="P",
                        help="occlusion: the patch side (default: a quarter of the image)")
    parser.add_argument("--stride", type=positive_int, metavar="S",
                        help="occlusion: the patch's step (default: half the patch)")
    parser.add_argument("--fill", type=float, metavar="V",
                        help="occlusion: the patch's value (default 0, the data's mean)")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help="class: gradient steps (default 100); fooling: the most steps "
                        "(default 1000)")
    parser.add_argument("--lr", type=positive_float, metavar="X",
                        help="class, fooling: the L2 length of a step (default: CS231n's 25 "
                        "and 1 for 3x224x224 images, scaled to the image's size)")
    parser.add_argument("--l2-reg", type=nonneg_float, metavar="X",
                        help="class: L2 penalty (default 1e-3)")
    parser.add_argument("--jitter", type=nonneg_int, metavar="PIXELS",
                        help="class: the largest random shift in pixels (default: 16 at 224 "
                        "pixels, scaled)")
    parser.add_argument("--blur-every", type=nonneg_int, metavar="N",
                        help="class: blur every N steps (default 10; 0: never)")
    parser.add_argument("--seed", type=int, default=0, help="seed (weights, noise; default 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"),
                        help="--model: dtype of the weights (default float32)")
    parser.add_argument("--num-classes", type=positive_int, metavar="K",
                        help="--model: number of classes (default 10)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads for kernels and BLAS (default: 1 for images up to "
                        "32x32, else all)")
    parser.add_argument("-o", "--output", metavar="FILE.png",
                        help="the PNG to write (default: runs/viz/KIND.png)")


# --------------------------------------------------------------------------- the subject

class _Subject:
    """What a command looks at: the model (module), its description, the input images with
    their descriptions and labels, and the data conventions (display range)."""

    def __init__(self, module, name, images, captions, labels, value_range):
        self.module, self.name = module, name
        self.images, self.captions, self.labels = images, captions, labels
        self.value_range = value_range  # (low, high) of valid inputs, or None

    @property
    def input_shape(self):
        return tuple(self.images.shape[1:])


def _digits():
    from minidl.data import load_digits

    return load_digits(dtype=np.float64), load_digits(dtype=np.float64, normalize=False)


# CIFAR-10's per-channel mean and std of [0, 1] pixels (what normalize_splits computes from
# the training batches), for .png inputs of a CIFAR-10 model.
_CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465])
_CIFAR_STD = np.array([0.2470, 0.2435, 0.2616])


def _read_file(path, data):
    """Images (N, C, H, W) float64 from a .npy or .png file, and a caption."""
    name = os.path.basename(path)
    if not path.lower().endswith((".npy", ".png")):
        raise UsageError(f"--input {path!r}: expected a .npy or .png file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input file {path!r} does not exist")
    if path.lower().endswith(".npy"):
        a = np.load(path, allow_pickle=False)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{path}: expected a numeric array, got {a.dtype}")
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[None]
        elif a.ndim != 4:
            raise ValueError(f"{path}: expected an image (H,W), (C,H,W) or a batch (N,C,H,W), "
                             f"got shape {a.shape}")
        return a.astype(np.float64), name
    if path.lower().endswith(".png"):
        from matplotlib.image import imread

        a = np.asarray(imread(path), dtype=np.float64)
        if a.max() > 1:
            a = a / 255.0
        if a.ndim == 3:
            a = a[..., :3].transpose(2, 0, 1)   # channels first, alpha dropped
        else:
            a = a[None]
        if data == "digits":
            if a.shape[0] == 3:
                a = a.mean(axis=0, keepdims=True)
            _, raw = _digits()
            a = (a - raw["X_train"].mean()) / raw["X_train"].std()
        elif a.shape[0] == 3:
            a = (a - _CIFAR_MEAN.reshape(3, 1, 1)) / _CIFAR_STD.reshape(3, 1, 1)
        return a[None], name


def _resize(images, size):
    """Nearest-neighbour resize of (N, C, H, W) to (N, C, size, size)."""
    H, W = images.shape[2:]
    rows, cols = (np.arange(size) * H) // size, (np.arange(size) * W) // size
    return np.ascontiguousarray(images[:, :, rows][:, :, :, cols])


def _subject(args):
    """The model and the images from the arguments."""
    from minidl.training import build_model, input_fit, load_run_model, upsample

    if args.checkpoint is not None:
        for flag, value in (("--dtype", args.dtype), ("--num-classes", args.num_classes)):
            if value is not None:
                raise UsageError(f"{flag} is for --model; a checkpoint brings its own")
        model, settings, trained_shape = load_run_model(args.checkpoint)
        data = settings["data"]
        name = f"{settings['model']} ({args.checkpoint})"
        dtype = np.dtype(settings["dtype"]).type
    else:
        data, trained_shape, dtype = "digits", None, np.dtype(args.dtype or "float32").type

    labels = None
    if args.input is not None:
        images, caption = _read_file(args.input, data)
        captions = [caption if len(images) == 1 else f"{caption}[{i}]"
                    for i in range(len(images))]
    else:
        digits, _ = _digits()
        X, y = digits["X_test"], digits["y_test"]
        index = args.index or [0]
        bad = [i for i in index if i >= len(X)]
        if bad:
            raise UsageError(f"--index {bad[0]}: the digits test split has {len(X)} images "
                             f"(0 to {len(X) - 1})")
        images, labels = X[index], [int(y[i]) for i in index]
        captions = [f"digit #{i}" for i in index]
    if args.size is not None:
        images = _resize(images, args.size)

    if args.checkpoint is None:
        model, _ = build_model(args.model, images.shape[1:], args.num_classes or 10, dtype,
                               args.seed)
        name = f"{args.model} (untrained)"
        if hasattr(model, "module"):
            factor, _ = input_fit(model.module, images.shape[1:], args.model)
            images = upsample(images, factor)
    elif images.shape[1:] != tuple(trained_shape) and images.shape[1] == trained_shape[0]:
        # The run upsampled its images by an integer factor: do the same to these.
        factor = trained_shape[1] / images.shape[2]
        if factor > 1 and factor.is_integer() and trained_shape[2] == images.shape[3] * factor:
            images = upsample(images, int(factor))
    module = model.module if hasattr(model, "module") else model.to_module()
    try:
        module.output_shape(images.shape[1:])
    except ShapeError as e:
        trained = (f" (trained on {data} at {'x'.join(map(str, trained_shape))})"
                   if trained_shape else "")
        raise ValueError(f"the model{trained} cannot take the input's shape "
                         f"{tuple(images.shape[1:])}: {e}") from None
    value_range = None  # the valid input values: known for the digits and digit-like PNGs
    if data == "digits" and (args.input is None or args.input.lower().endswith(".png")):
        digits, _ = _digits()
        value_range = (float(digits["X_train"].min()), float(digits["X_train"].max()))
    return _Subject(module, name, np.ascontiguousarray(images, dtype=dtype), captions, labels,
                    value_range)


def _check_kind_options(args):
    for dest, (flag, kinds) in _ONLY_FOR.items():
        if getattr(args, dest) is not None and args.kind not in kinds:
            raise UsageError(f"{flag} is for {', '.join(kinds)}, not {args.kind}")
    if args.kind in ("class", "fooling") and args.class_ is None:
        raise UsageError(f"{args.kind} needs --class K (the target class)")


def _check_layer(subject, layer):
    """layer must name a layer of the model (a usage error listing them otherwise)."""
    try:
        viz.get_layer(subject.module, layer)
    except viz.UnknownLayerError as e:
        hint = f" (did you mean {', '.join(e.close)}?)" if e.close else ""
        raise UsageError(f"--layer {layer!r}: the model has no such layer{hint}; its layers "
                         f"are: {', '.join(e.valid)}") from None


def _first(module, kind, last=False):
    """The name of the first (or last) layer of a kind of module."""
    names = [n for n, m in module.named_modules() if n and isinstance(m, kind)]
    if not names:
        raise ValueError(f"the model has no {kind.__name__} layer: give --layer")
    return names[-1] if last else names[0]


# --------------------------------------------------------------------------- drawing

def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # The object-oriented API, not pyplot: no global backend is switched, no display needed.
    fig = Figure(figsize=(width, height), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _tiles(a, normalize, ncols=None):
    """filter_grid of a (F, C, KH, KW) with the padding and empty cells set apart: NaN (drawn
    white) in a grey grid, 1 (white) in an RGB one."""
    grid = viz.filter_grid(a, normalize=normalize, ncols=ncols).astype(np.float64)
    blank = viz.filter_grid(np.ones(a.shape), normalize=False, ncols=ncols) == 0
    if grid.ndim == 3 and grid.shape[2] == 3 and a.shape[1] == 3:
        if not normalize:
            low, high = np.nanmin(grid), np.nanmax(grid)
            grid = (grid - low) / (high - low if high > low else 1)
        grid[blank] = 1.0
        return grid
    grid[blank] = np.nan
    return grid[0]


def _suptitle(fig, text):
    """The figure's title, each line wrapped to the figure's width (about 11 characters per
    inch at 10 points)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")),
                 fontsize=10)


def _cmap(name):
    """A colormap whose NaN (grid padding) shows apart from its colours: white, or blue for
    grey maps (whose white is a value)."""
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#a9c1e6" if name == "gray" else "white")


def _show(ax, image, subject=None, title=None, cmap="gray", **kwargs):
    """One image (C, H, W) or (H, W) on ax, without ticks: grey for one channel, RGB
    (scaled to [0, 1]) for three, the channel mean otherwise."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] == 3:
        low, high = image.min(), image.max()
        image = ((image - low) / (high - low if high > low else 1)).transpose(1, 2, 0)
        artist = ax.imshow(image, interpolation="nearest")
    else:
        if image.ndim == 3:
            image = image.mean(axis=0)
        if subject is not None and subject.value_range and "vmin" not in kwargs:
            kwargs["vmin"], kwargs["vmax"] = subject.value_range
        artist = ax.imshow(image, cmap=_cmap(cmap), interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return artist


def _caption(subject, i, predicted=None):
    parts = [subject.captions[i]]
    if subject.labels is not None:
        parts.append(f"label {subject.labels[i]}")
    if predicted is not None:
        parts.append(f"predicted {predicted}")
    return ", ".join(parts)


def _predict(module, images):
    with module.inspecting():
        return module.forward(images).argmax(axis=1)


def _classes(subject, args):
    """--class, else each image's label, else its prediction."""
    if args.class_ is not None:
        return np.full(len(subject.images), args.class_)
    if subject.labels is not None:
        return np.array(subject.labels)
    return _predict(subject.module, subject.images)


def write_filters(module, path, title, layer=None, input_shape=None):
    """Write the filter grid of one layer (default: the first Conv2d or Linear) of a
    minidl.nn module as a PNG at path; returns (path, the layer's name)."""
    if layer is None:
        layer = _first(module, (minidl.nn.Conv2d, minidl.nn.Linear))
    w = viz.filters(module, layer, input_shape=input_shape)
    F, C, KH, KW = w.shape
    if C in (1, 3):
        grid = _tiles(w, normalize=True)
        what = f"{F} filters of {C}x{KH}x{KW}"
    else:
        # One row per filter, one column per input channel (at most 32 of each).
        f, c = min(F, 32), min(C, 32)
        grid = _tiles(w[:f, :c].reshape(f * c, 1, KH, KW), normalize=True, ncols=c)
        what = (f"filters (rows) x input channels (columns), {f} of {F} x {c} of {C}, "
                f"{KH}x{KW}")
    side = max(3.0, min(8.0, grid.shape[1] / 12))
    fig = _figure(side + 0.6, side + 0.9)
    ax = fig.add_subplot()
    if grid.ndim == 3:
        ax.imshow(grid, interpolation="nearest")
    else:
        ax.imshow(grid, cmap=_cmap("gray"), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\n{layer}: {what},\neach scaled to [0, 1] on its own", fontsize=9)
    return save_png(fig, path), layer


def _draw_activations(subject, args):
    layer = args.layer or _first(subject.module, minidl.nn.Conv2d)
    maps = viz.activations(subject.module, subject.images, [layer])[layer]
    n = len(maps)
    fig = _figure(7.5, 3.2 * n + 0.4)
    for i in range(n):
        ax_in, ax_map = fig.add_subplot(n, 2, 2 * i + 1), fig.add_subplot(n, 2, 2 * i + 2)
        _show(ax_in, subject.images[i], subject, _caption(subject, i))
        a = maps[i]
        if a.ndim == 3:
            c = min(a.shape[0], 64)
            grid = _tiles(a[:c, None], normalize=False)
            artist = ax_map.imshow(grid, cmap=_cmap("viridis"), interpolation="nearest")
            ax_map.set_xticks([])
            ax_map.set_yticks([])
            ax_map.set_title(f"{layer}: {c} of {a.shape[0]} channels of {a.shape[1]}x"
                             f"{a.shape[2]}", fontsize=9)
            fig.colorbar(artist, ax=ax_map, shrink=0.8, label="activation")
        else:
            values = a.reshape(-1)
            ax_map.bar(np.arange(values.size), values)
            ax_map.set_xlabel("unit")
            ax_map.set_ylabel("activation")
            ax_map.set_title(f"{layer}: {values.size} values", fontsize=9)
    _suptitle(fig, f"activations of {layer}: {subject.name}")
    return fig


def _columns(subject, rows, title):
    """A figure with one column per input image: the image on top, then one panel per entry
    of rows, a function (ax, i) that draws image i's panel."""
    n = len(subject.images)
    fig = _figure(max(2.3 * n, 4.6), 2.45 * (len(rows) + 1) + 0.4)
    axes = np.array(fig.subplots(len(rows) + 1, n, squeeze=False))
    for i in range(n):
        _show(axes[0, i], subject.images[i], subject, _caption(subject, i))
        for r, draw in enumerate(rows, start=1):
            draw(axes[r, i], i)
    _suptitle(fig, title)
    return fig


def _colorbar(fig, artist, ax, label=None):
    fig.colorbar(artist, ax=ax, orientation="horizontal", shrink=0.9, pad=0.02, label=label)


def _draw_saliency(subject, args):
    classes = _classes(subject, args)
    maps = viz.saliency(subject.module, subject.images, classes)
    predicted = _predict(subject.module, subject.images)

    def draw(ax, i):
        artist = _show(ax, maps[i], cmap="hot",
                       title=f"class {int(classes[i])} (predicted {int(predicted[i])})")
        _colorbar(ax.figure, artist, ax, "|d score / d pixel|")

    return _columns(subject, [draw], "saliency maps (Simonyan et al. 2014), max over channels "
                    f"of |d score / d pixel|:\n{subject.name}")


def _draw_occlusion(subject, args):
    classes = _classes(subject, args)
    N, C, H, W = subject.images.shape
    patch = args.patch or max(1, min(H, W) // 4)
    stride = args.stride or max(1, patch // 2)
    fill = 0.0 if args.fill is None else args.fill
    maps = viz.occlusion(subject.module, subject.images, classes, patch=patch, stride=stride,
                         fill=fill)
    ho, wo = maps.shape[1:]
    # Cell (r, c) drawn over the centre of the patch it stands for, in image pixels.
    half = (patch - 1) / 2
    extent = (half - stride / 2, half + (wo - 0.5) * stride,
              half + (ho - 0.5) * stride, half - stride / 2)

    def draw(ax, i):
        artist = ax.imshow(maps[i], cmap="viridis", vmin=0, vmax=1, extent=extent,
                           interpolation="nearest")
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"p(class {int(classes[i])}), min {maps[i].min():.2f}", fontsize=9)
        _colorbar(ax.figure, artist, ax, "at the patch's centre")

    return _columns(subject, [draw], f"occlusion (Zeiler & Fergus 2014): the class probability "
                    f"with a {patch}x{patch} patch of {fill:g}, stride {stride}:\n"
                    f"{subject.name}")


def _draw_class(subject, args):
    options = {k: v for k, v in (("steps", args.steps), ("lr", args.lr),
                                 ("l2_reg", args.l2_reg), ("jitter", args.jitter),
                                 ("blur_every", args.blur_every)) if v is not None}
    image, scores = viz.class_visualization(
        subject.module, args.class_, input_shape=subject.input_shape,
        clip=subject.value_range, seed=args.seed, return_scores=True, **options)
    fig = _figure(7.0, 3.4)
    _show(fig.add_subplot(1, 2, 1), image, subject, f"class {args.class_}")
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(np.arange(1, scores.size + 1), scores)
    ax.set_xlabel("step")
    ax.set_ylabel(f"score of class {args.class_}")
    ax.grid(alpha=0.3)
    ax.set_title("the target score during the ascent", fontsize=9)
    _suptitle(fig, f"class visualisation (gradient ascent on the input): {subject.name}")
    return fig


def _draw_fooling(subject, args):
    options = {k: v for k, v in (("max_steps", args.steps), ("lr", args.lr)) if v is not None}
    try:
        fooled = viz.fooling_image(subject.module, subject.images, args.class_, **options)
    except viz.NotFooledError as e:
        raise ValueError(str(e)) from None
    before = _predict(subject.module, subject.images)
    after = _predict(subject.module, fooled)
    diff = fooled - subject.images

    def draw_fooled(ax, i):
        ax.set_xlabel(f"predicted {int(before[i])} before", fontsize=9)
        _show(ax, fooled[i], subject, f"fooling image: predicted {int(after[i])}")

    def draw_difference(ax, i):
        distance = float(np.sqrt(np.sum(diff[i].astype(np.float64) ** 2)))
        relative = distance / max(float(np.linalg.norm(subject.images[i])), 1e-12)
        bound = float(np.abs(diff[i]).max()) or 1.0
        artist = _show(ax, diff[i], cmap="RdBu_r", vmin=-bound, vmax=bound,
                       title=f"difference: L2 {distance:.3g}\n({100 * relative:.0f}% of the "
                       "image's)")
        _colorbar(ax.figure, artist, ax)

    return _columns(subject, [draw_fooled, draw_difference],
                    f"fooling image for class {args.class_}:\n{subject.name}")


def _draw_deconv(subject, args):
    layer = args.layer or _first(subject.module, minidl.nn.Conv2d, last=True)
    maps = viz.activations(subject.module, subject.images, [layer])[layer]
    if maps.ndim < 3:
        raise ValueError(f"deconv: layer {layer!r} outputs {maps.shape[1:]} per image; "
                         "choose a layer with channels (a convolution, pool or ReLU)")
    if args.channel is not None and args.channel >= maps.shape[1]:
        raise UsageError(f"--channel {args.channel}: layer {layer!r} has {maps.shape[1]} "
                         "channels")
    flat = maps.reshape(len(maps), maps.shape[1], -1)
    channels = (np.full(len(maps), args.channel) if args.channel is not None
                else flat.max(axis=2).argmax(axis=1))
    recon = np.concatenate([viz.deconv(subject.module, subject.images[i:i + 1], layer,
                                       int(channels[i])) for i in range(len(maps))])

    def draw(ax, i):
        r = recon[i] if recon.shape[1] == 3 else recon[i].mean(axis=0)
        bound = float(np.abs(r).max()) or 1.0
        top = float(flat[i, channels[i]].max())
        artist = _show(ax, r, cmap="RdBu_r", vmin=-bound, vmax=bound,
                       title=f"channel {int(channels[i])}, top value {top:.3g}")
        if recon.shape[1] != 3:
            _colorbar(ax.figure, artist, ax)

    return _columns(subject, [draw], f"guided backpropagation of the strongest activation of "
                    f"a {layer} channel:\n{subject.name}")


_DRAW = {"activations": _draw_activations, "saliency": _draw_saliency,
         "occlusion": _draw_occlusion, "class": _draw_class, "fooling": _draw_fooling,
         "deconv": _draw_deconv}


# --------------------------------------------------------------------------- the command

def run(args):
    """``minidl viz KIND``: returns the exit status."""
    start = time.perf_counter()
    _check_kind_options(args)
    import matplotlib  # noqa: F401  (fail early, with the package's name, when missing)

    subject = _subject(args)
    if args.layer is not None:
        _check_layer(subject, args.layer)
    classes = subject.module.output_shape(subject.input_shape)[0]
    if args.class_ is not None and args.class_ >= classes:
        raise UsageError(f"--class {args.class_}: the model has {classes} classes (0 to "
                         f"{classes - 1})")
    path = args.output or os.path.join("runs", "viz", f"{args.kind}.png")
    H = subject.input_shape[-1]
    threads = args.threads or (1 if H <= 32 else minidl.get_num_threads())
    with num_threads(threads):
        if args.kind == "filters":
            _, layer = write_filters(subject.module, path, subject.name, args.layer,
                                     input_shape=subject.input_shape)
        else:
            save_png(_DRAW[args.kind](subject, args), path)
    shape = "x".join(map(str, subject.input_shape))
    print(f"minidl viz {args.kind}: {subject.name}, input {shape}: wrote {path} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0
