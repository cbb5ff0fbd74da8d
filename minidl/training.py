"""Training from the command line: ``minidl train`` and the pieces ``minidl demo`` shares.

    minidl train --model resnet20 --data digits --epochs 2

Library pieces, usable from notebooks too:

    ProgressSolver             a Solver with a per-epoch progress bar (tqdm when installed,
                               else a plain-text bar) and one accuracy line per epoch
    stop_on_interrupt(solver)  context manager: Ctrl-C (SIGINT) makes train() stop after the
                               current iteration and write its checkpoint; a second Ctrl-C
                               aborts at once
    save_curves(solver, path)  PNG of the loss and accuracy curves (matplotlib; returns None
                               when matplotlib is not installed)
    build_model(name, ...)     a coursework model or a zoo model wrapped in ClassifierModel
    load_data(name, ...)       digits (embedded) or CIFAR-10 (python batches)

Digits are 8x8x1. Zoo models are built with in_channels=1 and fed the 8x8 images as they
are when the model's shape inference accepts them (the CIFAR ResNets do: 8x8 -> 4x4 -> 2x2
before global average pooling, 16 times cheaper than 32x32); a model that cannot take 8x8
gets the images upsampled (nearest neighbour, integer factor) to its natural input size.
"""
import argparse
import contextlib
import difflib
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from ._io import atomic_open
from ._cli_args import positive_float as _positive_float, positive_int as _positive_int
from .solver import Solver, TrainingDivergedError, read_checkpoint

__all__ = ["ProgressSolver", "stop_on_interrupt", "save_curves", "build_model", "load_data",
           "fit_input", "COURSEWORK_MODELS", "MATPLOTLIB_NOTE"]

MATPLOTLIB_NOTE = "not written: matplotlib is not installed (pip install matplotlib)"
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by SIGINT


# --------------------------------------------------------------------------- progress

def _clock(seconds):
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class PlainBar:
    """A tqdm-like progress bar without tqdm: ``desc: 40%|####      | 10/25 [00:01<00:02,
    8.51it/s, loss=0.53]``. On a terminal it redraws one line (at most 10 times a second);
    otherwise it prints the final line once, when closed (logs stay readable)."""

    def __init__(self, total, desc="", initial=0, file=None, width=10):
        self.total, self.desc, self.n = int(total), desc, int(initial)
        self.file = file if file is not None else sys.stderr
        self.width, self.postfix = width, ""
        self.start, self._last_draw, self._initial = time.perf_counter(), 0.0, int(initial)
        self.tty = bool(getattr(self.file, "isatty", lambda: False)())
        self.closed = False

    def set_postfix_str(self, text, refresh=False):
        self.postfix = text

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if self.tty and now - self._last_draw >= 0.1:
            self._last_draw = now
            self.file.write("\r" + self.line())
            self.file.flush()

    def line(self):
        elapsed = time.perf_counter() - self.start
        done = self.n - self._initial
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        remaining = (self.total - self.n) / rate if rate else None
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + " " * (self.width - filled)
        rate_text = f"{rate:.2f}it/s" if rate else "?it/s"
        post = f", {self.postfix}" if self.postfix else ""
        return (f"{self.desc}: {100 * frac:3.0f}%|{bar}| {self.n}/{self.total} "
                f"[{_clock(elapsed)}<{_clock(remaining)}, {rate_text}{post}]")

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.file.write(("\r" if self.tty else "") + self.line() + "\n")
        self.file.flush()


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def progress_bar(total, desc, initial=0, file=None):
    """A tqdm bar when tqdm is installed, else a PlainBar (same update/set_postfix_str/close)."""
    tqdm = _tqdm()
    if tqdm is None:
        return PlainBar(total, desc, initial=initial, file=file)
    file = file if file is not None else sys.stderr
    size = {}
    try:
        columns, lines = os.get_terminal_size(file.fileno())
    except (AttributeError, ValueError, OSError):  # not a terminal (a pipe, a StringIO)
        pass
    else:
        # tqdm draws nothing on a terminal that reports a size of 0 (some pseudo-terminals).
        if not (columns and lines):
            size = {"ncols": columns or 100, "nrows": lines or 40}
    return tqdm(total=total, desc=desc, initial=initial, file=file, unit="it", leave=True,
                **size)


class ProgressSolver(Solver):
    """A Solver that shows a progress bar per epoch (iterations/s, mean loss of the epoch so
    far, ETA) on stderr and prints one line per epoch with the train and validation accuracy.

    Extra keyword arguments: progress (default True; False: only the epoch lines),
    out (stream for the epoch lines, default sys.stdout), bar_file (default sys.stderr).
    verbose defaults to False here (the course's per-iteration lines are replaced).
    """

    def __init__(self, model, data, progress=True, out=None, bar_file=None, **kwargs):
        kwargs.setdefault("verbose", False)
        super().__init__(model, data, **kwargs)
        self.progress, self.out, self.bar_file = progress, out, bar_file
        self._bar = None
        self._epoch_start = None

    def on_iteration_begin(self, t, num_iterations):
        ipe = self._iterations_per_epoch()
        if self._epoch_start is None:
            self._epoch_start = time.perf_counter()
        if self.progress and self._bar is None:
            self._bar = progress_bar(ipe, f"epoch {t // ipe + 1}/{self.num_epochs}",
                                     initial=t % ipe, file=self.bar_file or sys.stderr)

    def on_iteration(self, t, num_iterations):
        super().on_iteration(t, num_iterations)
        ipe = self._iterations_per_epoch()
        if self._bar is not None:
            epoch_losses = self.loss_history[len(self.loss_history) - (t % ipe) - 1:]
            self._bar.set_postfix_str(f"loss={np.mean(epoch_losses):.4g}", refresh=False)
            self._bar.update(1)
        if (t + 1) % ipe == 0:
            self.close_bar()

    def on_check(self, train_acc, val_acc):
        super().on_check(train_acc, val_acc)
        if self.iteration % self._iterations_per_epoch():
            return  # the check after the very first iteration: no line
        seconds = time.perf_counter() - self._epoch_start if self._epoch_start else 0.0
        self._epoch_start = None
        lr = self.learning_rates()
        lr_text = (f"{lr:.3g}" if isinstance(lr, float) else
                   "-" if lr is None else f"{lr[0]:.3g}..{lr[1]:.3g}")
        best = " *" if self.best_epoch == self.epoch else ""
        print(f"epoch {self.epoch}/{self.num_epochs}: train acc {100 * train_acc:.1f}%, "
              f"val acc {100 * val_acc:.1f}%{best}  (next lr {lr_text}, {seconds:.1f} s)",
              file=self.out or sys.stdout, flush=True)

    def close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            self.close_bar()


@contextlib.contextmanager
def stop_on_interrupt(solver, message=None, file=None):
    """While active, Ctrl-C (SIGINT) calls solver.request_stop() (and prints message): train()
    then stops after the current iteration, with the model, optimizer and checkpoint in a
    consistent state. A second Ctrl-C raises KeyboardInterrupt at once. Outside the main
    thread (where signals cannot be handled) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        solver.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if message:
            print(message, file=file or sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- curves

def save_curves(solver, path, title=None):
    """Write a PNG with the training loss (per iteration, with its moving average) and the
    train/val accuracy (per check: the first iteration, then every epoch) of a Solver, or of
    any object with loss_history, train_acc_history and val_acc_history. Written atomically;
    returns path, or None when matplotlib is not installed (see MATPLOTLIB_NOTE)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    loss = np.asarray(solver.loss_history, dtype=np.float64)
    # The object-oriented API, not pyplot: no global backend is switched (notebooks keep
    # their inline backend) and nothing needs a display.
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    it = np.arange(1, loss.size + 1)
    ax_loss.plot(it, loss, color="tab:blue", alpha=0.35 if loss.size >= 20 else 1.0,
                 linewidth=1, label="minibatch loss")
    if loss.size >= 20:
        k = max(loss.size // 25, 5)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax_loss.plot(it[k - 1:], smooth, color="tab:blue", linewidth=2,
                     label=f"moving average ({k})")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss")
    ax_loss.legend(loc="upper right")
    ax_loss.grid(alpha=0.3)
    epochs = np.arange(len(solver.train_acc_history))
    ax_acc.plot(epochs, 100 * np.asarray(solver.train_acc_history), "o-", label="train")
    ax_acc.plot(epochs, 100 * np.asarray(solver.val_acc_history), "s-", label="val")
    ax_acc.set_xlabel("epoch (0: after the first iteration)")
    ax_acc.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    ax_acc.legend(loc="lower right")
    ax_acc.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_open(path) as f:
        fig.savefig(f, format="png")
    return path


# --------------------------------------------------------------------------- data

DATASETS = ("digits", "cifar10")


def load_data(name, data_dir=None, dtype=np.float32, num_train=None):
    """The data dict (X_train, y_train, X_val, y_val, X_test, y_test; NCHW) for 'digits'
    (embedded, standardised) or 'cifar10' (python batches under data_dir, MINIDL_DATA or
    ~/.minidl/data; per-channel mean/std from the training images). num_train keeps the
    first num_train training images. Returns (data, description)."""
    if name == "digits":
        from .data import load_digits

        if data_dir is not None:
            raise ValueError("--data-dir is only for --data cifar10 (the digits ship with "
                             "minidl)")
        data = load_digits(dtype=dtype)
        desc = "UCI handwritten digits (Alpaydin & Kaynak, CC BY 4.0), 8x8 grey"
    elif name == "cifar10":
        from .data.cifar10 import CIFAR10_ARCHIVE, CIFAR10_URL, load_cifar10
        from .data.transforms import normalize_splits

        try:
            data = load_cifar10(root=data_dir, num_training=num_train, dtype=dtype,
                                subtract_mean=False)
        except FileNotFoundError as e:
            where = data_dir or os.environ.get("MINIDL_DATA") or "~/.minidl/data"
            raise FileNotFoundError(
                f"CIFAR-10 python batches not found in {where}: download {CIFAR10_URL} and "
                f"run `tar -xzf {CIFAR10_ARCHIVE} -C {where}` (or pass --data-dir); "
                f"--data digits needs no download") from e
        data, _ = normalize_splits(data)
        desc = "CIFAR-10 (Krizhevsky 2009), 32x32 RGB, per-channel normalised"
    else:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    if num_train is not None:
        n = len(data["y_train"])
        if num_train > n:
            raise ValueError(f"--num-train {num_train} is more than the {n} training images "
                             f"of {name}")
        data["X_train"], data["y_train"] = data["X_train"][:num_train], \
            data["y_train"][:num_train]
    return data, desc


def fit_input(model, data, arch):
    """Feed the images as they are when the zoo module accepts their shape, else upsample
    them (nearest neighbour, integer factor) to the module's natural input size. Returns
    (data, note)."""
    from .nn import ShapeError

    module = model.module
    shape = tuple(data["X_train"].shape[1:])
    try:
        module.output_shape(shape)
        return data, f"{'x'.join(map(str, shape))} as is ({arch} accepts it)"
    except ShapeError as e:
        first_error = e
    natural = getattr(module, "default_input", (shape[0], 32, 32))[1]
    factor = int(math.ceil(natural / shape[1]))
    new_shape = (shape[0], shape[1] * factor, shape[2] * factor)
    try:
        module.output_shape(new_shape)
    except ShapeError:
        raise ValueError(f"{arch} cannot take {shape} inputs ({first_error}), nor "
                         f"{new_shape} after upsampling") from None
    out = dict(data)
    for key, X in data.items():
        if key.startswith("X_"):
            out[key] = np.ascontiguousarray(np.repeat(np.repeat(X, factor, axis=2), factor,
                                                      axis=3))
    return out, (f"{'x'.join(map(str, shape))} upsampled x{factor} (nearest) to "
                 f"{'x'.join(map(str, new_shape))}: {arch} cannot take "
                 f"{shape[1]}x{shape[2]} inputs")


# --------------------------------------------------------------------------- models

def _fc(dims, num_classes, dtype, seed, reg):
    from .models import FullyConnectedNet

    return FullyConnectedNet([100, 100], input_dim=int(np.prod(dims)), num_classes=num_classes,
                             weight_scale=5e-2, reg=reg, dtype=dtype, seed=seed)


def _twolayer(dims, num_classes, dtype, seed, reg):
    from .models import TwoLayerNet

    return TwoLayerNet(input_dim=int(np.prod(dims)), hidden_dim=100, num_classes=num_classes,
                       weight_scale=5e-2, reg=reg, dtype=dtype, seed=seed)


def _threelayer(dims, num_classes, dtype, seed, reg):
    from .models import ThreeLayerConvNet

    return ThreeLayerConvNet(input_dims=dims, num_filters=32,
                             filter_size=3 if dims[1] < 16 else 7, hidden_dim=100,
                             num_classes=num_classes, weight_scale=5e-2, reg=reg, dtype=dtype,
                             seed=seed)


def _deepconvnet(dims, num_classes, dtype, seed, reg):
    from .models import DeepConvNet

    filters, pools = ([16, 32], [0, 1]) if dims[1] < 16 else ([32, 64, 128], [0, 1, 2])
    return DeepConvNet(input_dims=dims, num_filters=filters, max_pools=pools, batchnorm=True,
                       num_classes=num_classes, weight_scale="kaiming", reg=reg, dtype=dtype,
                       seed=seed)


# name -> (builder, description)
COURSEWORK_MODELS = {
    "fc": (_fc, "FullyConnectedNet, hidden [100, 100]"),
    "twolayer": (_twolayer, "TwoLayerNet, hidden 100"),
    "threelayer": (_threelayer, "ThreeLayerConvNet: conv(32, 3x3 on digits / 7x7 on CIFAR)-"
                                "relu-pool-linear(100)-relu-linear"),
    "convnet": (_threelayer, "alias of threelayer"),
    "deepconvnet": (_deepconvnet, "DeepConvNet with batch norm, kaiming init: conv [16, 32] "
                                  "on digits, [32, 64, 128] on CIFAR, each followed by a pool"),
}


def build_model(name, input_dims, num_classes=10, dtype=np.float32, seed=0, reg=0.0):
    """A model with the coursework interface (params, loss(X, y=None)). Coursework names:
    see COURSEWORK_MODELS; any other name is looked up in minidl.models.zoo and wrapped in
    minidl.nn.ClassifierModel (reg: L2 on conv/linear weights, EECS 498 convention).
    Returns (model, description)."""
    if name in COURSEWORK_MODELS:
        builder, desc = COURSEWORK_MODELS[name]
        return builder(tuple(input_dims), num_classes, dtype, seed, reg), desc
    from .models import zoo
    from .nn import ClassifierModel, manual_seed

    if name not in zoo.list_models():
        known = list(COURSEWORK_MODELS) + zoo.list_models()
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (coursework: "
                         f"{', '.join(COURSEWORK_MODELS)}; zoo: {', '.join(zoo.list_models())})")
    manual_seed(seed)
    module = zoo.get_model(name, num_classes=num_classes, in_channels=input_dims[0],
                           dtype=dtype)
    return ClassifierModel(module, reg=reg), (f"{name} from minidl.models.zoo (in_channels="
                                              f"{input_dims[0]}, {num_classes} classes)")


def _threads_text(n):
    return f"{n} thread" if n == 1 else f"{n} threads"


def _num_params(model):
    module = getattr(model, "module", None)
    if module is not None and hasattr(module, "num_params"):
        return module.num_params()
    return int(sum(np.size(v) for v in model.params.values()))


# --------------------------------------------------------------------------- the command

EXAMPLES = """examples:
  minidl train --model resnet20 --data digits --epochs 2
  minidl train --model deepconvnet --data digits --lr 5e-3 --lr-schedule cosine
  minidl train --model fc --data digits --update-rule sgd_momentum --lr 0.05 --num-train 500
  minidl train --model resnet20 --data cifar10 --data-dir ~/data --augment --epochs 30 \\
               --lr-schedule step --step-size 10 --threads 4
  minidl train --resume runs/resnet20-digits/checkpoint.pkl --epochs 5   # continue a run

Ctrl-C stops after the current iteration, saves the checkpoint and prints how to resume
(exit status 130); --resume continues exactly where the run stopped: the same seed gives the
same loss history as a run that was never interrupted.

models: coursework: fc, twolayer, threelayer (or convnet), deepconvnet; or any zoo name
(minidl.models.zoo.list_models()), best the CIFAR-size ones: resnet20/32/44/56/110,
vgg11_cifar, vgg16_cifar, mobilenet_v1_cifar, mobilenet_v2_cifar. Zoo models take
in_channels=1 on digits and the 8x8 images as they are when they accept them (the CIFAR
ResNets do), else the images are upsampled to the model's natural size.
"""

# The settings that define a run: stored in its checkpoint, and taken from there on --resume
# (given explicitly, they must agree). name -> default.
RUN_SETTINGS = {
    "model": None, "data": "digits", "num_train": None, "batch_size": 50, "lr": 1e-3,
    "update_rule": "adam", "lr_schedule": "none", "step_size": None, "gamma": 0.1,
    "lr_decay": 1.0, "reg": 0.0, "augment": False, "dtype": "float32", "seed": 0,
}


def _nonneg_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_arguments(parser):
    """The options of ``minidl train`` (defaults None where --resume may supply them)."""
    parser.description = (
        "Train a coursework model or a zoo model with Solver: a progress bar per epoch, "
        "train/val\naccuracy after each epoch, test accuracy at the end, a checkpoint "
        "(rewritten atomically\nevery epoch) and a PNG of the loss and accuracy curves.")
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    d = RUN_SETTINGS
    parser.add_argument("--model", metavar="NAME",
                        help="fc, twolayer, threelayer/convnet, deepconvnet, or a zoo name such "
                        "as resnet20 (required unless --resume)")
    parser.add_argument("--data", choices=DATASETS, help=f"data set (default: {d['data']})")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder with the CIFAR-10 python batches (default: $MINIDL_DATA "
                        "or ~/.minidl/data)")
    parser.add_argument("--num-train", type=_positive_int, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--epochs", type=_positive_int,
                        help="total epochs (default: 5; with --resume, the checkpoint's)")
    parser.add_argument("--batch-size", type=_positive_int,
                        help=f"minibatch size (default: {d['batch_size']})")
    parser.add_argument("--lr", type=_positive_float,
                        help=f"initial learning rate (default: {d['lr']:g})")
    parser.add_argument("--update-rule", choices=("sgd", "sgd_momentum", "rmsprop", "adam"),
                        help=f"optimizer (default: {d['update_rule']})")
    parser.add_argument("--lr-schedule", choices=("none", "step", "cosine"),
                        help="per-epoch learning rate schedule: step (x gamma every "
                        "--step-size epochs) or cosine (to 0 at the last epoch) "
                        "(default: none)")
    parser.add_argument("--step-size", type=_positive_int, metavar="EPOCHS",
                        help="epochs between steps of --lr-schedule step (default: a third of "
                        "--epochs)")
    parser.add_argument("--gamma", type=_positive_float,
                        help=f"factor of --lr-schedule step (default: {d['gamma']})")
    parser.add_argument("--lr-decay", type=_positive_float,
                        help="multiply the learning rate by this after every epoch (the "
                        "course's lr_decay; not with --lr-schedule) (default: 1)")
    parser.add_argument("--reg", type=_nonneg_float,
                        help="L2 regularisation strength, reg * sum(W^2) (default: 0)")
    parser.add_argument("--augment", action="store_const", const=True,
                        help="augment training batches: random crop with padding (digits: "
                        "1 pixel), plus horizontal flips on CIFAR-10")
    parser.add_argument("--dtype", choices=("float32", "float64"),
                        help=f"dtype of data and parameters (default: {d['dtype']})")
    parser.add_argument("--seed", type=int,
                        help=f"seed for the weights, minibatches and augmentation "
                        f"(default: {d['seed']})")
    parser.add_argument("--threads", type=_positive_int,
                        help="threads for kernels and BLAS (default: 1 for the 8x8 digits, "
                        "whose small tensors only lose from more; for cifar10 "
                        "MINIDL_NUM_THREADS or all cores)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the checkpoint and the curves (default: "
                        "runs/MODEL-DATA; with --resume, the checkpoint's folder)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="checkpoint file (default: OUT/checkpoint.pkl; with --resume, "
                        "the resumed file)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue the run saved in PATH, with its settings; only "
                        "--epochs, --threads, --data-dir and output paths may change")
    parser.add_argument("--plot", metavar="PATH",
                        help="PNG of the loss and accuracy curves (default: OUT/curves.png)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (the per-epoch lines stay)")


def _resolve_settings(args, saved):
    """Explicit options, else the resumed checkpoint's, else the defaults."""
    settings = {}
    for key, default in RUN_SETTINGS.items():
        given = getattr(args, key)
        if saved is not None and key in saved:
            if given is not None and given != saved[key]:
                flag = "--" + key.replace("_", "-")
                raise ValueError(f"{flag} {given} differs from the resumed run's "
                                 f"{saved[key]}: --resume continues a run with its own "
                                 "settings (only --epochs, --threads, --data-dir and output "
                                 "paths may change)")
            settings[key] = saved[key]
        else:
            settings[key] = default if given is None else given
    return settings


def run(args):
    """``minidl train``: returns the exit status (0, or 130 when stopped by Ctrl-C)."""
    import minidl

    previous_threads = minidl.get_num_threads()
    threads = args.threads
    if threads is None:
        threads = 1 if args.data in (None, "digits") else previous_threads
    minidl.set_num_threads(threads)
    try:
        return _train(args)
    finally:  # main() may be called in-process (tests, notebooks): leave no trace
        minidl.set_num_threads(previous_threads)


def _train(args):
    import minidl

    start = time.perf_counter()
    saved, ckpt_epochs = None, None
    if args.resume is not None:
        ckpt = read_checkpoint(args.resume)
        extra = ckpt.get("extra") or {}
        if extra.get("command") != "minidl train":
            raise ValueError(f"{args.resume!r} was not written by `minidl train` (it has no "
                             "run settings); resume it with Solver.load_checkpoint")
        saved, ckpt_epochs = extra["settings"], ckpt["num_epochs"]
        del ckpt
    s = _resolve_settings(args, saved)
    if s["model"] is None:
        raise ValueError("--model is required (or --resume PATH)")
    epochs = args.epochs or ckpt_epochs or 5
    if s["lr_schedule"] != "none" and s["lr_decay"] != 1.0:
        raise ValueError("give either --lr-decay or --lr-schedule, not both")
    if s["lr_schedule"] == "step" and s["step_size"] is None:
        s["step_size"] = max(epochs // 3, 1)
    dtype = np.dtype(s["dtype"]).type
    np.random.seed(s["seed"])  # NumPy's global generator: dropout masks

    data, data_desc = load_data(s["data"], args.data_dir, dtype, s["num_train"])
    model, model_desc = build_model(s["model"], data["X_train"].shape[1:], 10, dtype,
                                    s["seed"], s["reg"])
    input_note = None
    if hasattr(model, "module"):
        data, input_note = fit_input(model, data, s["model"])
    augment = None
    if s["augment"]:
        from .data.transforms import Compose, RandomCrop, RandomHorizontalFlip

        H = data["X_train"].shape[2]
        steps = [RandomCrop(H, padding=max(H // 8, 1))]
        if s["data"] == "cifar10":
            steps.append(RandomHorizontalFlip())
        augment = Compose(steps)

    if args.out:
        out_dir = args.out
    elif args.resume:  # keep a resumed run's files together
        out_dir = os.path.dirname(args.resume) or "."
    else:
        out_dir = os.path.join("runs", f"{s['model']}-{s['data']}")
    ckpt_path = args.checkpoint or args.resume or os.path.join(out_dir, "checkpoint.pkl")
    plot_path = args.plot or os.path.join(out_dir, "curves.png")

    solver = ProgressSolver(
        model, data, update_rule=s["update_rule"], optim_config={"learning_rate": s["lr"]},
        lr_decay=s["lr_decay"], lr_schedule=None if s["lr_schedule"] == "none" else
        s["lr_schedule"], step_size=s["step_size"], gamma=s["gamma"],
        batch_size=s["batch_size"], num_epochs=epochs, augment=augment, seed=s["seed"],
        checkpoint_path=ckpt_path, progress=not args.no_progress,
        checkpoint_extra={"command": "minidl train", "settings": s})
    ipe = solver._iterations_per_epoch()

    n = {k: len(v) for k, v in data.items() if k.startswith("y_")}
    print(f"minidl train: {s['model']} on {s['data']}: {data_desc}; train/val/test "
          f"{n['y_train']}/{n['y_val']}/{n.get('y_test', 0)}")
    print(f"model: {model_desc}, {_num_params(model):,} params, {np.dtype(dtype).name}"
          + (f"; input {input_note}" if input_note else ""))
    sched = {"none": "", "step": f", step schedule x{s['gamma']:g} every {s['step_size']} "
             "epochs", "cosine": ", cosine schedule"}[s["lr_schedule"]]
    decay = f", lr decay {s['lr_decay']:g}/epoch" if s["lr_decay"] != 1.0 else ""
    print(f"training: {s['update_rule']} lr {s['lr']:g}{sched}{decay}, batch {s['batch_size']}, "
          f"{epochs} epoch{'s' if epochs != 1 else ''} x {ipe} iterations, seed {s['seed']}"
          + (", augmented" if augment else "")
          + f"; {minidl.kernels_info()['path']}, {_threads_text(minidl.get_num_threads())}",
          flush=True)
    if args.resume is not None:
        solver.load_checkpoint(args.resume)
        print(f"resumed from {args.resume}: {solver.epoch} epochs and {solver.iteration} "
              f"iterations done", flush=True)
        if solver.iteration >= epochs * ipe:
            print(f"nothing to do: the run has finished its {epochs} epochs; pass --epochs N "
                  f"with N > {epochs} to train further")
            return 0

    stop_msg = "\nminidl train: Ctrl-C: stopping after this iteration (Ctrl-C again to abort)"
    try:
        # A diverging run overflows before its loss turns NaN: TrainingDivergedError says so
        # in one line instead of NumPy's warnings.
        with stop_on_interrupt(solver, stop_msg), np.errstate(over="ignore", invalid="ignore"):
            solver.train()
    except TrainingDivergedError as e:
        solver.close_bar()
        curves = save_curves(solver, plot_path, f"{s['model']} on {s['data']} (diverged)")
        note = f" Curves so far: {curves}" if curves else ""
        raise ValueError(f"training diverged: {e.detail}{note}") from None

    curves = save_curves(solver, plot_path, f"{s['model']} on {s['data']}")
    curves_text = curves if curves else MATPLOTLIB_NOTE
    if solver.stopped_early:
        print(f"interrupted after {solver.iteration} of {epochs * ipe} iterations "
              f"({solver.epoch} of {epochs} epochs complete); checkpoint saved: {ckpt_path}")
        print(f"curves: {curves_text}")
        print(f"resume with: minidl train --resume {ckpt_path}", flush=True)
        return EXIT_INTERRUPTED

    X_test, y_test = data.get("X_test"), data.get("y_test")
    if y_test is not None and len(y_test):
        acc = solver.check_accuracy(X_test, y_test)
        print(f"test accuracy: {100 * acc:.1f}% ({round(acc * len(y_test))}/{len(y_test)}) with "
              f"the best parameters (val acc {100 * solver.best_val_acc:.1f}% at epoch "
              f"{solver.best_epoch})")
    print(f"checkpoint: {ckpt_path}")
    print(f"curves: {curves_text}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0
