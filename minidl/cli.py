"""The ``minidl`` command (also ``python -m minidl``).

Subcommands live in one table, COMMANDS: name -> Command(help, add_arguments, run).

- add_arguments(parser) adds the subcommand's options to an argparse parser, and
  run(args) gets the parsed namespace and returns an exit status (0 = success).
- add_arguments=None makes a pass-through command: run(argv) gets the remaining command
  line as a list of strings and parses it itself (``minidl summary`` and ``minidl bench``
  hand it to minidl.summary.main and minidl.bench.main).

``train`` lives in minidl.training and ``gradcheck`` in minidl.gradcheck_cli; both are
imported only when the command line is parsed.

Adding a subcommand is one entry in COMMANDS. Errors the user can fix (bad arguments,
bad values, a missing optional module) print one line, ``minidl <cmd>: error: ...``, and
exit non-zero without a traceback; MINIDL_DEBUG=1 shows the traceback instead.
"""
import argparse
import importlib
import os
import sys
import time
from collections import namedtuple

from ._cli_args import ArgumentParser, positive_float, positive_int

Command = namedtuple("Command", ["help", "add_arguments", "run"])


class CLIError(Exception):
    """An error to report to the user as one line (no traceback)."""


# The shared parser and argument types (minidl/_cli_args.py), under the names used here.
_Parser = ArgumentParser
_positive_int = positive_int
_positive_float = positive_float


# --------------------------------------------------------------------------- demo

_DEMO_EXAMPLES = """examples:
  minidl demo                 train for 10 epochs (about 98% test accuracy)
  minidl demo --epochs 2      a quicker, less accurate run
  minidl demo --threads 2     two threads for the kernels and BLAS
  minidl demo --out /tmp/d    write the checkpoint and the curves to /tmp/d

The demo writes OUT/checkpoint.pkl (the Solver checkpoint of the last epoch) and
OUT/curves.png (loss and accuracy curves; needs matplotlib: pip install matplotlib).
"""


def _demo_arguments(parser):
    parser.description = (
        "Train a small ConvNet with Solver on the embedded UCI handwritten digits\n"
        "(8x8 grey images, 10 classes; Alpaydin & Kaynak, CC BY 4.0) and report the\n"
        "test accuracy. Runs offline, in float32, with the FastConv kernels.")
    parser.epilog = _DEMO_EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--epochs", type=_positive_int, default=10,
                        help="training epochs (default: 10)")
    parser.add_argument("--batch-size", type=_positive_int, default=50,
                        help="minibatch size (default: 50)")
    parser.add_argument("--lr", type=_positive_float, default=5e-3,
                        help="Adam learning rate (default: 5e-3)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the weights and the minibatch order (default: 0)")
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="threads for kernels and BLAS (default: 1; the demo's 8x8 "
                        "tensors are too small to gain from more)")
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "demo"),
                        help="folder for checkpoint.pkl and curves.png (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final result and the files written")


def _demo_run(args):
    import minidl

    previous_threads = minidl.get_num_threads()
    minidl.set_num_threads(args.threads)
    try:
        return _train_demo(args)
    finally:  # main() may be called in-process (tests, notebooks): leave no trace
        minidl.set_num_threads(previous_threads)


def _train_demo(args):
    import numpy as np

    import minidl
    from minidl.data import load_digits
    from minidl.models import DeepConvNet
    from minidl.solver import Solver
    from minidl.training import MATPLOTLIB_NOTE, save_curves

    verbose = not args.quiet
    start = time.perf_counter()
    data = load_digits(dtype=np.float32)
    # conv3x3(16)-BN-ReLU-pool -> conv3x3(32)-BN-ReLU-pool -> linear: 8x8 -> 4x4 -> 2x2.
    model = DeepConvNet(input_dims=(1, 8, 8), num_filters=[16, 32], max_pools=[0, 1],
                        batchnorm=True, num_classes=10, weight_scale="kaiming",
                        dtype=np.float32, seed=args.seed)
    if verbose:
        n = {k: len(v) for k, v in data.items() if k.startswith("y_")}
        n_params = sum(p.size for p in model.params.values())
        print("minidl demo: UCI handwritten digits (Alpaydin & Kaynak, CC BY 4.0), 8x8 grey, "
              f"train/val/test {n['y_train']}/{n['y_val']}/{n['y_test']}")
        print(f"model: DeepConvNet [conv3x3(16)-bn-relu-pool, conv3x3(32)-bn-relu-pool, "
              f"linear(10)], {n_params} params, float32; {minidl.kernels_info()['path']}, "
              f"{minidl.get_num_threads()} thread{'s' if minidl.get_num_threads() > 1 else ''}")
        print(f"training: Adam lr {args.lr:g}, lr decay 0.9/epoch, batch {args.batch_size}, "
              f"{args.epochs} epochs, seed {args.seed}")
    iters_per_epoch = max(len(data["y_train"]) // args.batch_size, 1)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": args.lr},
                    lr_decay=0.9, batch_size=args.batch_size, num_epochs=args.epochs,
                    num_train_samples=None, print_every=iters_per_epoch * max(args.epochs // 5, 1),
                    verbose=verbose, seed=args.seed,
                    checkpoint_path=os.path.join(args.out, "checkpoint.pkl"))
    train_start = time.perf_counter()
    solver.train()
    train_time = time.perf_counter() - train_start
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    curves = save_curves(solver, os.path.join(args.out, "curves.png"),
                         "minidl demo: DeepConvNet on the UCI digits")
    total = time.perf_counter() - start
    n_test = len(data["y_test"])
    print(f"test accuracy: {100 * test_acc:.1f}% ({round(test_acc * n_test)}/{n_test}), "
          f"best val accuracy {100 * solver.best_val_acc:.1f}%")
    print(f"checkpoint: {solver.checkpoint_path}")
    print(f"curves: {curves or MATPLOTLIB_NOTE}")
    print(f"time: {total:.1f} s ({train_time:.1f} s training)")
    return 0


# --------------------------------------------------------------------------- summary, bench


def _pass_through(module_name):
    """run(argv) for a command whose module parses its own arguments: module.main(argv)."""
    def run(argv):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            raise CLIError(f"{module_name} is not available in this installation") from None
        if not callable(getattr(module, "main", None)):
            raise CLIError(f"{module_name} has no command-line entry point (main)")
        status = module.main(argv)
        return 0 if status is None else status

    return run


_summary_run = _pass_through("minidl.summary")
_bench_run = _pass_through("minidl.bench")


# --------------------------------------------------------------------------- train, gradcheck
# Their code lives in minidl.training and minidl.gradcheck_cli, imported when used.


def _train_arguments(parser):
    from minidl import training

    training.add_arguments(parser)


def _train_run(args):
    from minidl import training

    return training.run(args)


def _gradcheck_arguments(parser):
    from minidl import gradcheck_cli

    gradcheck_cli.add_arguments(parser)


def _gradcheck_run(args):
    from minidl import gradcheck_cli

    return gradcheck_cli.run(args)


# --------------------------------------------------------------------------- the table

COMMANDS = {
    "demo": Command("train a small ConvNet on the embedded digits and report test accuracy",
                    _demo_arguments, _demo_run),
    "train": Command("train a coursework or zoo model on digits or CIFAR-10, with progress, "
                     "checkpoints and curves", _train_arguments, _train_run),
    "gradcheck": Command("check a built-in layer, or a student's forward/backward pair, against "
                         "numeric gradients and minidl's layers", _gradcheck_arguments,
                         _gradcheck_run),
    "summary": Command("print a model's per-layer table (shapes, memory, params, FLOPs)",
                       None, _summary_run),
    "bench": Command("time the convolution and pooling kernels (against PyTorch when "
                     "installed)", None, _bench_run),
}


def build_parser():
    """The top-level parser with one subparser per entry of COMMANDS."""
    parser = _Parser(prog="minidl", description="minidl: a from-scratch NumPy deep-learning "
                     "engine for CNN coursework.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, cmd in COMMANDS.items():
        if cmd.add_arguments is None:
            p = sub.add_parser(name, help=cmd.help, add_help=False)
            p.add_argument("argv", nargs=argparse.REMAINDER)
        else:
            p = sub.add_parser(name, help=cmd.help, description=cmd.help)
            cmd.add_arguments(p)
    return parser


def _version():
    from minidl import __version__

    return f"minidl {__version__}"


def _run(name, cmd, payload):
    """Run one command; user-facing errors become one line and a non-zero status."""
    try:
        return int(cmd.run(payload) or 0)
    except KeyboardInterrupt:
        print(f"minidl {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `minidl demo | head -1`): stop quietly, and point
        # stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, TypeError, KeyError, OSError, ArithmeticError) as e:
        if os.environ.get("MINIDL_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"minidl {name}: error: {msg}", file=sys.stderr)
        return 1


def main(argv=None):
    """Entry point of the ``minidl`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Pass-through commands parse their own arguments (including --help).
    if argv and argv[0] in COMMANDS and COMMANDS[argv[0]].add_arguments is None:
        return _run(argv[0], COMMANDS[argv[0]], argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a one-line argument error
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if args.command is None:
        parser.print_help()
        return 2
    return _run(args.command, COMMANDS[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
