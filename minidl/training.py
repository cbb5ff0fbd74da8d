"""Training runs: what ``minidl train`` does, as a library that neither parses arguments
nor prints (the command line, with its progress bar and messages, is minidl.cli.train).

    run = TrainingRun({"model": "resnet20", "data": "digits"}, epochs=2,
                      checkpoint_path="runs/r/checkpoint.npz", callbacks=[my_callback])
    run.train(plot_path="runs/r/curves.png")
    run.test_accuracy()

Pieces, usable from notebooks too:

    TrainingRun                data, model and Solver from a settings dict (RUN_SETTINGS);
                               resume(path), train(plot_path), test_accuracy()
    Callback, EpochEnd         the hooks a run calls: epoch begin, every iteration, epoch
                               end (accuracies, best so far, next learning rate, seconds),
                               train end; progress bars and logs are callbacks
    CallbackSolver             a Solver that reports to Callbacks
    stop_on_interrupt(solver)  context manager: Ctrl-C (SIGINT) makes train() stop after the
                               current iteration and write its checkpoint; a second Ctrl-C
                               aborts at once; after the training loop, Ctrl-C raises
                               InterruptedAfterTraining (the checkpoint is written)
    save_curves(solver, path)  PNG of the loss and accuracy curves (matplotlib; returns None
                               when matplotlib is not installed)
    build_model(name, ...)     a coursework model or a zoo model wrapped in ClassifierModel
    load_data(name, ...)       digits (embedded) or CIFAR-10 (python batches)
    read_run_settings(path)    the settings and epoch count a run's checkpoint holds
    load_run_model(path)       the model of a run's checkpoint, rebuilt from its settings
    input_fit, upsample        how a zoo model is fed images of a given size

Digits are 8x8x1. Zoo models are built with in_channels=1 and fed the 8x8 images as they
are when the model's shape inference accepts them (the CIFAR ResNets do: 8x8 -> 4x4 -> 2x2
before global average pooling, 16 times cheaper than 32x32); a model that cannot take 8x8
gets the images upsampled (nearest neighbour, integer factor) to its natural input size.
"""
import contextlib
import difflib
import math
import os
import signal
import threading
import time
from collections import namedtuple

import numpy as np

from ._io import save_png
from .solver import Solver, TrainingDivergedError, load_model_state, read_checkpoint

__all__ = ["TrainingRun", "Callback", "EpochEnd", "CallbackSolver", "stop_on_interrupt",
           "InterruptedAfterTraining", "save_curves", "build_model", "load_data", "fit_input",
           "input_fit", "upsample", "num_params", "read_run_settings", "load_run_model",
           "RUN_SETTINGS",
           "COURSEWORK_MODELS", "DATASETS"]

# The settings that define a run: stored in its checkpoint (see read_run_settings), so that a
# resumed run continues with them. name -> default.
RUN_SETTINGS = {
    "model": None, "data": "digits", "num_train": None, "batch_size": 50, "lr": 1e-3,
    "update_rule": "adam", "lr_schedule": "none", "step_size": None, "gamma": 0.1,
    "lr_decay": 1.0, "reg": 0.0, "augment": False, "dtype": "float32", "seed": 0,
}
# What a run's checkpoint holds under 'extra': {"command": RUN_CHECKPOINT_COMMAND,
# "settings": {...}} (the name of the command that has always written them).
RUN_CHECKPOINT_COMMAND = "minidl train"


# --------------------------------------------------------------------------- callbacks

EpochEnd = namedtuple("EpochEnd", ["epoch", "num_epochs", "train_acc", "val_acc", "best",
                                   "learning_rate", "seconds"])
EpochEnd.__doc__ = """What Callback.on_epoch_end gets: the epoch just finished (1-based) of
num_epochs, its train and validation accuracy, best (True when the validation accuracy is the
best so far), learning_rate (the next epoch's: a float, a (min, max) pair when parameters
differ, or None; see Solver.learning_rates) and the epoch's wall time in seconds."""


class Callback:
    """Hooks a CallbackSolver calls during train(); each does nothing here.

    on_epoch_begin(solver, epoch, done)  before the first iteration of epoch (1-based) that
                                         this train() runs; done > 0 when a resumed run
                                         starts mid-epoch
    on_iteration(solver, t)              after iteration t (0-based; its loss is
                                         solver.loss_history[-1])
    on_epoch_end(solver, end)            after each epoch's accuracy check (end: EpochEnd)
    on_train_end(solver)                 when train() returns or raises
    """

    def on_epoch_begin(self, solver, epoch, done):
        pass

    def on_iteration(self, solver, t):
        pass

    def on_epoch_end(self, solver, end):
        pass

    def on_train_end(self, solver):
        pass


class CallbackSolver(Solver):
    """A Solver that reports to callbacks (a list of Callback) instead of printing.

    verbose defaults to False here (the course's per-iteration lines are left to callbacks).
    """

    def __init__(self, model, data, callbacks=(), **kwargs):
        kwargs.setdefault("verbose", False)
        super().__init__(model, data, **kwargs)
        self.callbacks = list(callbacks)
        self._epoch_start = None

    def on_iteration_begin(self, t, num_iterations):
        super().on_iteration_begin(t, num_iterations)
        if self._epoch_start is None:
            self._epoch_start = time.perf_counter()
            ipe = self._iterations_per_epoch()
            for c in self.callbacks:
                c.on_epoch_begin(self, t // ipe + 1, t % ipe)

    def on_iteration(self, t, num_iterations):
        super().on_iteration(t, num_iterations)
        for c in self.callbacks:
            c.on_iteration(self, t)

    def on_check(self, train_acc, val_acc):
        super().on_check(train_acc, val_acc)
        if self.iteration % self._iterations_per_epoch():
            return  # the check after the very first iteration: not an epoch end
        seconds = time.perf_counter() - self._epoch_start if self._epoch_start else 0.0
        self._epoch_start = None
        end = EpochEnd(self.epoch, self.num_epochs, train_acc, val_acc,
                       self.best_epoch == self.epoch, self.learning_rates(), seconds)
        for c in self.callbacks:
            c.on_epoch_end(self, end)

    def train(self, *args, **kwargs):
        self._epoch_start = None
        try:
            return super().train(*args, **kwargs)
        finally:
            for c in self.callbacks:
                c.on_train_end(self)


class InterruptedAfterTraining(KeyboardInterrupt):
    """Ctrl-C after the Solver's iterations ended (while curves or test accuracy were being
    computed): its checkpoint is already written."""


@contextlib.contextmanager
def stop_on_interrupt(solver, on_interrupt=None):
    """While active, Ctrl-C (SIGINT) during solver.train()'s iterations calls
    solver.request_stop() (then on_interrupt(), if given): train() stops after the current
    iteration, with the model, optimizer and checkpoint in a consistent state. A second
    Ctrl-C there raises KeyboardInterrupt at once. Ctrl-C while no iteration runs (after
    train() returned) raises InterruptedAfterTraining. Outside the main thread (where
    signals cannot be handled) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = []

    def handler(signum, frame):
        if not getattr(solver, "is_running", False):
            raise InterruptedAfterTraining()
        if pressed:
            raise KeyboardInterrupt()
        pressed.append(True)
        solver.request_stop()
        if on_interrupt is not None:
            on_interrupt()

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
    returns path, or None when matplotlib is not installed."""
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
    return save_png(fig, path)


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
            raise ValueError("load_data('digits'): data_dir is only for 'cifar10' (the digits "
                             "ship with minidl)")
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
                f"run `tar -xzf {CIFAR10_ARCHIVE} -C {where}` (or point data_dir, --data-dir "
                f"on the command line, at them); the digits need no download") from e
        data, _ = normalize_splits(data)
        desc = "CIFAR-10 (Krizhevsky 2009), 32x32 RGB, per-channel normalised"
    else:
        raise ValueError(f"load_data: unknown data set {name!r}; expected one of "
                         f"{', '.join(DATASETS)}")
    if num_train is not None:
        n = len(data["y_train"])
        if num_train > n:
            raise ValueError(f"load_data({name!r}): num_train={num_train} is more than the {n} "
                             f"training images of {name}")
        data["X_train"], data["y_train"] = data["X_train"][:num_train], \
            data["y_train"][:num_train]
    return data, desc


def input_fit(module, shape, arch):
    """How images of shape (C, H, W) are fed to a zoo module: as they are when its shape
    inference accepts them, else upsampled by an integer factor (nearest neighbour) to its
    natural input size. Returns (factor, note): factor 1 means as is; ValueError when
    neither size fits."""
    from .nn import ShapeError

    shape = tuple(shape)
    try:
        module.output_shape(shape)
        return 1, f"{'x'.join(map(str, shape))} as is ({arch} accepts it)"
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
    return factor, (f"{'x'.join(map(str, shape))} upsampled x{factor} (nearest) to "
                    f"{'x'.join(map(str, new_shape))}: {arch} cannot take "
                    f"{shape[1]}x{shape[2]} inputs")


def upsample(X, factor):
    """Images X (N, C, H, W) -> (N, C, factor*H, factor*W), each pixel repeated (nearest
    neighbour); X itself when factor is 1."""
    if factor == 1:
        return X
    return np.ascontiguousarray(np.repeat(np.repeat(X, factor, axis=2), factor, axis=3))


def fit_input(model, data, arch):
    """Feed the images as they are when the zoo module accepts their shape, else upsample
    them (nearest neighbour, integer factor) to the module's natural input size (see
    input_fit). Returns (data, note)."""
    factor, note = input_fit(model.module, data["X_train"].shape[1:], arch)
    if factor == 1:
        return data, note
    out = dict(data)
    for key, X in data.items():
        if key.startswith("X_"):
            out[key] = upsample(X, factor)
    return out, note


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


def num_params(model):
    """Parameter elements of a model built by build_model (counted without drawing a zoo
    module's parameters)."""
    module = getattr(model, "module", None)
    if module is not None and hasattr(module, "num_params"):
        return module.num_params()
    return int(sum(np.size(v) for v in model.params.values()))


# --------------------------------------------------------------------------- the run

def read_run_settings(path, allow_pickle=False):
    """(settings, num_epochs) from a checkpoint that a TrainingRun wrote; ValueError when the
    checkpoint holds no run settings (a plain Solver checkpoint). allow_pickle: see
    minidl.solver.read_checkpoint."""
    return _run_settings(read_checkpoint(path, allow_pickle=allow_pickle), path)


def _run_settings(ckpt, path):
    extra = ckpt.get("extra") or {}
    if extra.get("command") != RUN_CHECKPOINT_COMMAND:
        raise ValueError(f"{os.fspath(path)!r} was not written by `minidl train` (it has no "
                         "run settings); resume it with Solver.load_checkpoint")
    return dict(extra["settings"]), ckpt["num_epochs"]


def load_run_model(path, allow_pickle=False):
    """(model, settings, input_shape) of a checkpoint that a TrainingRun wrote: the model
    rebuilt from the settings' name and options (build_model) with the checkpoint's
    parameters and running statistics loaded into it (the current parameters, not the best
    ones), the run's settings (RUN_SETTINGS keys), and the (C, H, W) the run fed the model
    (the data's images, upsampled when the model needed larger ones; see input_fit). The
    file runs no code (see minidl.solver.read_checkpoint)."""
    ckpt = read_checkpoint(path, allow_pickle=allow_pickle)
    settings, _ = _run_settings(ckpt, path)
    input_dims = tuple(int(s) for s in ckpt["data_shape"]["X_train"][1:])
    model, _ = build_model(settings["model"], input_dims, 10, np.dtype(settings["dtype"]).type,
                           settings["seed"], settings["reg"])
    load_model_state(model, ckpt)
    return model, settings, input_dims


class TrainingRun:
    """One training run from its settings (keys of RUN_SETTINGS; missing ones take the
    defaults there): the data, the model (fed the data's images as is, or upsampled when it
    needs larger ones; see fit_input), optional augmentation and a CallbackSolver.

    epochs: total epochs; data_dir: CIFAR-10 folder; checkpoint_path: the Solver's checkpoint
    (rewritten every epoch, with the settings, so that the run can be resumed);
    callbacks: Callback instances (progress, logs).

    Attributes: settings, epochs, data, data_description, model, model_description,
    input_note (None, or how the images were fitted to the model), augmented,
    iterations_per_epoch, solver, curves_path (after train()).
    """

    def __init__(self, settings, epochs, data_dir=None, checkpoint_path=None, callbacks=()):
        unknown = sorted(set(settings) - set(RUN_SETTINGS))
        if unknown:
            raise ValueError(f"TrainingRun: unknown settings {', '.join(unknown)}; known: "
                             f"{', '.join(RUN_SETTINGS)}")
        s = dict(RUN_SETTINGS)
        s.update(settings)
        if s["model"] is None:
            raise ValueError("TrainingRun: settings['model'] is required")
        self.settings, self.epochs = s, epochs
        dtype = np.dtype(s["dtype"]).type
        np.random.seed(s["seed"])  # NumPy's global generator: dropout masks

        self.data, self.data_description = load_data(s["data"], data_dir, dtype,
                                                     s["num_train"])
        self.model, self.model_description = build_model(
            s["model"], self.data["X_train"].shape[1:], 10, dtype, s["seed"], s["reg"])
        self.input_note = None
        if hasattr(self.model, "module"):
            self.data, self.input_note = fit_input(self.model, self.data, s["model"])
        augment = None
        if s["augment"]:
            from .data.transforms import Compose, RandomCrop, RandomHorizontalFlip

            H = self.data["X_train"].shape[2]
            steps = [RandomCrop(H, padding=max(H // 8, 1))]
            if s["data"] == "cifar10":
                steps.append(RandomHorizontalFlip())
            augment = Compose(steps)
        self.augmented = augment is not None
        self.solver = CallbackSolver(
            self.model, self.data, callbacks=callbacks, update_rule=s["update_rule"],
            optim_config={"learning_rate": s["lr"]}, lr_decay=s["lr_decay"],
            lr_schedule=None if s["lr_schedule"] == "none" else s["lr_schedule"],
            step_size=s["step_size"], gamma=s["gamma"], batch_size=s["batch_size"],
            num_epochs=epochs, augment=augment, seed=s["seed"], checkpoint_path=checkpoint_path,
            checkpoint_extra={"command": RUN_CHECKPOINT_COMMAND, "settings": s})
        self.iterations_per_epoch = self.solver._iterations_per_epoch()
        self.curves_path = None

    @property
    def num_iterations(self):
        return self.epochs * self.iterations_per_epoch

    @property
    def finished(self):
        """True when every iteration of the run's epochs is done (e.g. after resume)."""
        return self.solver.iteration >= self.num_iterations

    def resume(self, path, allow_pickle=False):
        """Continue from a checkpoint of this run (Solver.load_checkpoint)."""
        self.solver.load_checkpoint(path, allow_pickle=allow_pickle)

    def train(self, plot_path=None, title=None):
        """Train to the last epoch (or until stop_on_interrupt/request_stop stops it), then
        write the curves to plot_path (also when the loss diverges, before the
        TrainingDivergedError propagates). Returns True when the run finished, False when
        it was stopped early."""
        title = title or f"{self.settings['model']} on {self.settings['data']}"
        try:
            # A diverging run overflows before its loss turns NaN: the TrainingDivergedError
            # says so in one line instead of NumPy's warnings.
            with np.errstate(over="ignore", invalid="ignore"):
                self.solver.train()
        except TrainingDivergedError:
            if plot_path is not None:
                self.curves_path = save_curves(self.solver, plot_path, f"{title} (diverged)")
            raise
        if plot_path is not None:
            self.curves_path = save_curves(self.solver, plot_path, title)
        return not self.solver.stopped_early

    def test_accuracy(self):
        """(accuracy, number of test images) with the model's current parameters, or None
        when the data has no test split."""
        X, y = self.data.get("X_test"), self.data.get("y_test")
        if y is None or not len(y):
            return None
        return self.solver.check_accuracy(X, y), len(y)
