"""``minidl train``: train a coursework or zoo model with a progress bar, checkpoints and
curves. The run itself is minidl.training.TrainingRun; this module parses the options,
resolves them against a resumed checkpoint, and prints."""
import contextlib
import os
import sys
import time
import warnings

import numpy as np

import minidl
from minidl.solver import TrainingDivergedError
from minidl.optim import UPDATE_RULES
from minidl.training import (DATASETS, RUN_SETTINGS, InterruptedAfterTraining, TrainingRun,
                             num_params, read_run_settings, stop_on_interrupt)

from .args import (EXIT_INTERRUPTED, UsageError, nonneg_float, num_threads, positive_float,
                   positive_int)
from .progress import EpochProgress

HELP = ("train a coursework or zoo model on digits or CIFAR-10, with progress, checkpoints "
        "and curves")
MATPLOTLIB_NOTE = "not written: matplotlib is not installed (pip install matplotlib)"

EXAMPLES = """examples:
  minidl train --model resnet20 --data digits --epochs 2
  minidl train --model deepconvnet --data digits --viz        # + first-layer filters.png
  minidl train --model deepconvnet --data digits --lr 5e-3 --lr-schedule cosine
  minidl train --model fc --data digits --update-rule sgd_momentum --lr 0.05 --num-train 500
  minidl train --model resnet20 --data cifar10 --data-dir ~/data --augment --epochs 30 \\
               --lr-schedule step --step-size 10 --threads 4
  minidl train --resume runs/resnet20-digits/checkpoint.npz --epochs 5   # continue a run

Ctrl-C stops after the current iteration, saves the checkpoint and prints how to resume
(exit status 130); --resume continues exactly where the run stopped: the same seed gives the
same loss history as a run that was never interrupted. Checkpoints are .npz files with JSON
metadata and a SHA-256, and run no code when loaded; the pickle checkpoints of minidl 0.1
load only with --allow-pickle (for files you trust).

models: coursework: fc, twolayer, threelayer (or convnet), deepconvnet; or any zoo name
(minidl.models.zoo.list_models()), best the CIFAR-size ones: resnet20/32/44/56/110,
vgg11_cifar, vgg16_cifar, mobilenet_v1_cifar, mobilenet_v2_cifar. Zoo models take
in_channels=1 on digits and the 8x8 images as they are when they accept them (the CIFAR
ResNets do), else the images are upsampled to the model's natural size.
"""


def add_arguments(parser):
    """The options of ``minidl train`` (defaults None where --resume may supply them)."""
    parser.description = (
        "Train a coursework model or a zoo model with Solver: a progress bar per epoch, "
        "train/val\naccuracy after each epoch, test accuracy at the end, a checkpoint "
        "(rewritten atomically\nevery epoch) and a PNG of the loss and accuracy curves.")
    parser.epilog = EXAMPLES
    d = RUN_SETTINGS
    parser.add_argument("--model", metavar="NAME",
                        help="fc, twolayer, threelayer/convnet, deepconvnet, or a zoo name such "
                        "as resnet20 (required unless --resume)")
    parser.add_argument("--data", choices=DATASETS, help=f"data set (default: {d['data']})")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder with the CIFAR-10 python batches (default: $MINIDL_DATA "
                        "or ~/.minidl/data)")
    parser.add_argument("--num-train", type=positive_int, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--epochs", type=positive_int,
                        help="total epochs (default: 5; with --resume, the checkpoint's)")
    parser.add_argument("--batch-size", type=positive_int,
                        help=f"minibatch size (default: {d['batch_size']})")
    parser.add_argument("--lr", type=positive_float,
                        help=f"initial learning rate (default: {d['lr']:g})")
    parser.add_argument("--update-rule", choices=UPDATE_RULES,
                        help=f"optimizer (default: {d['update_rule']})")
    parser.add_argument("--lr-schedule", choices=("none", "step", "cosine"),
                        help="per-epoch learning rate schedule: step (x gamma every "
                        "--step-size epochs) or cosine (to 0 at the last epoch) "
                        "(default: none)")
    parser.add_argument("--step-size", type=positive_int, metavar="EPOCHS",
                        help="epochs between steps of --lr-schedule step (default: a third of "
                        "--epochs)")
    parser.add_argument("--gamma", type=positive_float,
                        help=f"factor of --lr-schedule step (default: {d['gamma']})")
    parser.add_argument("--lr-decay", type=positive_float,
                        help="multiply the learning rate by this after every epoch (the "
                        "course's lr_decay; not with --lr-schedule) (default: 1)")
    parser.add_argument("--reg", type=nonneg_float,
                        help="L2 regularisation strength, reg * sum(W^2) (default: 0)")
    parser.add_argument("--augment", action="store_const", const=True,
                        help="augment training batches: random crop with padding (digits: "
                        "1 pixel), plus horizontal flips on CIFAR-10")
    parser.add_argument("--dtype", choices=("float32", "float64"),
                        help=f"dtype of data and parameters (default: {d['dtype']})")
    parser.add_argument("--seed", type=int,
                        help=f"seed for the weights, minibatches and augmentation "
                        f"(default: {d['seed']})")
    parser.add_argument("--threads", type=positive_int,
                        help="threads for kernels and BLAS (default: 1 for the 8x8 digits, "
                        "whose small tensors only lose from more; for cifar10 "
                        "MINIDL_NUM_THREADS or all cores)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the checkpoint and the curves (default: "
                        "runs/MODEL-DATA; with --resume, the checkpoint's folder)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="checkpoint file (default: OUT/checkpoint.npz; with --resume, "
                        "the resumed file)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue the run saved in PATH, with its settings; only "
                        "--epochs, --threads, --data-dir and output paths may change")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="let --resume load a pickle checkpoint of minidl 0.1 (unpickling "
                        "can run code: only for files you trust; the run then saves the safe "
                        "format)")
    parser.add_argument("--plot", metavar="PATH",
                        help="PNG of the loss and accuracy curves (default: OUT/curves.png)")
    parser.add_argument("--viz", action="store_true",
                        help="also write the first layer's filters of the trained model "
                        "(filters.png beside the curves; see minidl viz)")
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
    threads = args.threads
    if threads is None:
        threads = 1 if args.data in (None, "digits") else minidl.get_num_threads()
    with num_threads(threads):
        return _train(args)


def _threads_text(n):
    return f"{n} thread" if n == 1 else f"{n} threads"


def _train(args):
    start = time.perf_counter()
    saved, ckpt_epochs = None, None
    if args.allow_pickle and args.resume is None:
        raise UsageError("--allow-pickle only applies to --resume")
    if args.resume is not None:
        with _warnings_as_lines():
            saved, ckpt_epochs = read_run_settings(args.resume, allow_pickle=args.allow_pickle)
    s = _resolve_settings(args, saved)
    if s["model"] is None:
        raise ValueError("--model is required (or --resume PATH)")
    epochs = args.epochs or ckpt_epochs or 5
    if s["lr_schedule"] != "none" and s["lr_decay"] != 1.0:
        raise ValueError("give either --lr-decay or --lr-schedule, not both")
    if s["lr_schedule"] == "step" and s["step_size"] is None:
        s["step_size"] = max(epochs // 3, 1)

    if args.out:
        out_dir = args.out
    elif args.resume:  # keep a resumed run's files together
        out_dir = os.path.dirname(args.resume) or "."
    else:
        out_dir = os.path.join("runs", f"{s['model']}-{s['data']}")
    ckpt_path = args.checkpoint or args.resume or os.path.join(out_dir, "checkpoint.npz")
    plot_path = args.plot or os.path.join(out_dir, "curves.png")

    progress = EpochProgress(progress=not args.no_progress)
    run = TrainingRun(s, epochs, data_dir=args.data_dir, checkpoint_path=ckpt_path,
                      callbacks=[progress])
    n = {k: len(v) for k, v in run.data.items() if k.startswith("y_")}
    print(f"minidl train: {s['model']} on {s['data']}: {run.data_description}; train/val/test "
          f"{n['y_train']}/{n['y_val']}/{n.get('y_test', 0)}")
    print(f"model: {run.model_description}, {num_params(run.model):,} params, "
          f"{np.dtype(s['dtype']).name}" + (f"; input {run.input_note}" if run.input_note else ""))
    sched = {"none": "", "step": f", step schedule x{s['gamma']:g} every {s['step_size']} "
             "epochs", "cosine": ", cosine schedule"}[s["lr_schedule"]]
    decay = f", lr decay {s['lr_decay']:g}/epoch" if s["lr_decay"] != 1.0 else ""
    print(f"training: {s['update_rule']} lr {s['lr']:g}{sched}{decay}, batch {s['batch_size']}, "
          f"{epochs} epoch{'s' if epochs != 1 else ''} x {run.iterations_per_epoch} iterations, "
          f"seed {s['seed']}" + (", augmented" if run.augmented else "")
          + f"; {minidl.kernels_info()['path']}, {_threads_text(minidl.get_num_threads())}",
          flush=True)
    if args.resume is not None:
        with warnings.catch_warnings():  # the pickle warning was printed above
            warnings.simplefilter("ignore", UserWarning)
            run.resume(args.resume, allow_pickle=args.allow_pickle)
        if ckpt_path == args.resume and args.allow_pickle:
            print(f"note: {ckpt_path} will be rewritten in the safe .npz format", flush=True)
        print(f"resumed from {args.resume}: {run.solver.epoch} epochs and "
              f"{run.solver.iteration} iterations done", flush=True)
        if run.finished:
            print(f"nothing to do: the run has finished its {epochs} epochs; pass --epochs N "
                  f"with N > {epochs} to train further")
            return 0

    def on_interrupt():
        print("\nminidl train: Ctrl-C: stopping after this iteration (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    try:
        with stop_on_interrupt(run.solver, on_interrupt):
            finished = run.train(plot_path)
            filters_text = _write_filters(run, plot_path, s) if args.viz else None
            return _report(run, finished, ckpt_path, epochs, start, filters_text)
    except TrainingDivergedError as e:
        note = f" Curves so far: {run.curves_path}" if run.curves_path else ""
        raise ValueError(f"training diverged: {e.detail}{note}") from None
    except InterruptedAfterTraining:
        print(f"minidl train: interrupted after training ({run.solver.epoch} of {epochs} epochs "
              f"complete); the checkpoint was written: {ckpt_path}", file=sys.stderr,
              flush=True)
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _warnings_as_lines():
    """Warnings (the pickle one) as one line each on stderr: 'minidl train: warning: ...'."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"minidl train: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


def _report(run, finished, ckpt_path, epochs, start, filters_text=None):
    """Print the end of a run (stopped early, or test accuracy and files); its exit status.
    filters_text: where --viz wrote the filter grid (None without --viz)."""
    curves_text = run.curves_path or MATPLOTLIB_NOTE
    if not finished:
        solver = run.solver
        print(f"interrupted after {solver.iteration} of {run.num_iterations} iterations "
              f"({solver.epoch} of {epochs} epochs complete); checkpoint saved: {ckpt_path}")
        print(f"curves: {curves_text}")
        if filters_text:
            print(f"filters: {filters_text}")
        print(f"resume with: minidl train --resume {ckpt_path}", flush=True)
        return EXIT_INTERRUPTED

    test = run.test_accuracy()
    if test is not None:
        acc, n_test = test
        print(f"test accuracy: {100 * acc:.1f}% ({round(acc * n_test)}/{n_test}) with the best "
              f"parameters (val acc {100 * run.solver.best_val_acc:.1f}% at epoch "
              f"{run.solver.best_epoch})")
    print(f"checkpoint: {ckpt_path}")
    print(f"curves: {curves_text}")
    if filters_text:
        print(f"filters: {filters_text}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0


def _write_filters(run, plot_path, s):
    """--viz: the first layer's filter grid of the trained model, beside the curves; returns
    what to print after 'filters:'."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return MATPLOTLIB_NOTE
    from .viz import write_filters

    model = run.model
    module = model.module if hasattr(model, "module") else model.to_module()
    path = os.path.join(os.path.dirname(plot_path), "filters.png")
    title = (f"{s['model']} on {s['data']}: best validation parameters (epoch "
             f"{run.solver.best_epoch})")
    written, layer = write_filters(module, path, title,
                                   input_shape=run.data["X_train"].shape[1:])
    return f"{written} ({layer})"
