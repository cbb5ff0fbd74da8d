"""``minidl demo``: train a small ConvNet on the embedded digits and report the test accuracy."""
import os
import sys
import time

import numpy as np

import minidl
from minidl.data import load_digits
from minidl.models import DeepConvNet
from minidl.solver import Solver
from minidl.training import InterruptedAfterTraining, save_curves, stop_on_interrupt

from .args import EXIT_INTERRUPTED, num_threads, positive_float, positive_int
from .train import MATPLOTLIB_NOTE

HELP = "train a small ConvNet on the embedded digits and report test accuracy"

EXAMPLES = """examples:
  minidl demo                 train for 10 epochs (about 98% test accuracy)
  minidl demo --epochs 2      a quicker, less accurate run
  minidl demo --threads 2     two threads for the kernels and BLAS
  minidl demo --out /tmp/d    write the checkpoint and the curves to /tmp/d

The demo writes OUT/checkpoint.npz (the Solver checkpoint of the last epoch; read it with
minidl.solver.read_checkpoint) and OUT/curves.png (loss and accuracy curves; needs
matplotlib: pip install matplotlib). Ctrl-C stops after the current iteration and saves the
checkpoint (exit status 130).
"""


def add_arguments(parser):
    parser.description = (
        "Train a small ConvNet with Solver on the embedded UCI handwritten digits\n"
        "(8x8 grey images, 10 classes; Alpaydin & Kaynak, CC BY 4.0) and report the\n"
        "test accuracy. Runs offline, in float32, with the FastConv kernels.")
    parser.epilog = EXAMPLES
    parser.add_argument("--epochs", type=positive_int, default=10,
                        help="training epochs (default: 10)")
    parser.add_argument("--batch-size", type=positive_int, default=50,
                        help="minibatch size (default: 50)")
    parser.add_argument("--lr", type=positive_float, default=5e-3,
                        help="Adam learning rate (default: 5e-3)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the weights and the minibatch order (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="threads for kernels and BLAS (default: 1; the demo's 8x8 "
                        "tensors are too small to gain from more)")
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "demo"),
                        help="folder for checkpoint.npz and curves.png (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final result and the files written")


def run(args):
    with num_threads(args.threads):
        return _train_demo(args)


def _train_demo(args):
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
                    checkpoint_path=os.path.join(args.out, "checkpoint.npz"))

    def on_interrupt():
        print("\nminidl demo: Ctrl-C: stopping after this iteration (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    train_start = time.perf_counter()
    try:
        with stop_on_interrupt(solver, on_interrupt):
            solver.train()
            return _report(args, data, solver, start, time.perf_counter() - train_start)
    except InterruptedAfterTraining:
        print(f"minidl demo: interrupted after training ({solver.epoch} of {args.epochs} "
              f"epochs complete); the checkpoint was written: {solver.checkpoint_path}",
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _report(args, data, solver, start, train_time):
    """The demo's last lines (or the interruption's); its exit status."""
    if solver.stopped_early:
        print(f"interrupted after {solver.iteration} iterations ({solver.epoch} of "
              f"{args.epochs} epochs complete); checkpoint saved: {solver.checkpoint_path}",
              flush=True)
        return EXIT_INTERRUPTED
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
