"""Small helpers shared by the minidl coursework notebooks in this folder.

Nothing here is course material: it loads the data, switches quick mode on and off, times
functions and draws the training curves, so that the notebooks can stay on the topic.

Quick mode (the environment variable MINIDL_QUICK=1, used by the test that executes every
notebook) shrinks the data and the number of epochs so that each notebook runs in seconds;
the numbers it prints are then not meaningful, only that everything runs.
"""
import os
import time

import numpy as np

QUICK = os.environ.get("MINIDL_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def pick(full, quick):
    """``full`` normally, ``quick`` when MINIDL_QUICK=1."""
    return quick if QUICK else full


def load_data(flatten=False, num_train=None, num_val=None, dtype=None):
    """The embedded digits data (minidl.data.load_digits), optionally subsampled.

    - flatten: rows of 64 pixels (N, 64) for fully-connected nets instead of (N, 1, 8, 8).
    - num_train, num_val: keep the first this many training / validation images; in quick
      mode at most 300 / 90 are kept whatever is asked.
    - dtype: float dtype (None: minidl's default, float32).
    Returns the dict of load_digits: X_train, y_train, X_val, y_val, X_test, y_test.
    """
    from minidl.data import load_digits

    data = load_digits(dtype=dtype, flatten=flatten)
    if QUICK:
        num_train = 300 if num_train is None else min(num_train, 300)
        num_val = 90 if num_val is None else min(num_val, 90)
    for split, n in (("train", num_train), ("val", num_val)):
        if n is not None:
            data[f"X_{split}"] = data[f"X_{split}"][:n]
            data[f"y_{split}"] = data[f"y_{split}"][:n]
    return data


def show_images(X, y, n=10, title=None):
    """Show the first n images of X (N, 1, H, W) or (N, H*W square) with their labels."""
    import matplotlib.pyplot as plt

    n = min(n, len(X))
    side = int(round(np.sqrt(X[0].size)))
    fig, axes = plt.subplots(1, n, figsize=(1.2 * n, 1.5))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(np.asarray(X[i]).reshape(side, side), cmap="gray_r")
        ax.set_title(str(y[i]))
        ax.axis("off")
    if title:
        fig.suptitle(title)
    plt.show()


def best_time(f, repeats=3):
    """The fastest of ``repeats`` calls of f(), in seconds (the least disturbed run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def plot_solvers(solvers, title=None, smooth=10):
    """Training loss and train/val accuracy of several Solvers, one line each.

    solvers: dict label -> a trained minidl Solver. The loss is also drawn as a moving
    average over ``smooth`` iterations, to see the trend through minibatch noise.
    """
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_train, ax_val) = plt.subplots(1, 3, figsize=(15, 4))
    for label, solver in solvers.items():
        loss = np.asarray(solver.loss_history)
        line, = ax_loss.plot(loss, alpha=0.25)
        if len(loss) >= smooth > 1:
            trend = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
            ax_loss.plot(np.arange(smooth - 1, len(loss)), trend, color=line.get_color(),
                         label=label)
        else:
            line.set_label(label)
        ax_train.plot(solver.train_acc_history, "o-", label=label)
        ax_val.plot(solver.val_acc_history, "o-", label=label)
    ax_loss.set(title="training loss", xlabel="iteration")
    ax_train.set(title="training accuracy", xlabel="epoch")
    ax_val.set(title="validation accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_train, ax_val):
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()
