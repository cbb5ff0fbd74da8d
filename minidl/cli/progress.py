"""Progress on the terminal for ``minidl train``: a per-epoch progress bar (tqdm when
installed, else PlainBar) and one line per epoch, as a minidl.training.Callback."""
import math
import os
import sys
import time

import numpy as np

from minidl.training import Callback


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


def _lr_text(lr):
    if lr is None:
        return "-"
    if isinstance(lr, tuple):
        return f"{lr[0]:.3g}..{lr[1]:.3g}"
    return f"{lr:.3g}"


class EpochProgress(Callback):
    """A progress bar per epoch (iterations/s, mean loss of the epoch so far, ETA) on
    bar_file (default stderr; none when progress=False) and one line per epoch with the
    train and validation accuracy on out (default stdout)."""

    def __init__(self, progress=True, out=None, bar_file=None):
        self.progress, self.out, self.bar_file = progress, out, bar_file
        self._bar = None

    def on_epoch_begin(self, solver, epoch, done):
        if self.progress:
            self._bar = progress_bar(solver._iterations_per_epoch(),
                                     f"epoch {epoch}/{solver.num_epochs}", initial=done,
                                     file=self.bar_file or sys.stderr)

    def on_iteration(self, solver, t):
        ipe = solver._iterations_per_epoch()
        if self._bar is not None:
            epoch_losses = solver.loss_history[len(solver.loss_history) - (t % ipe) - 1:]
            self._bar.set_postfix_str(f"loss={np.mean(epoch_losses):.4g}", refresh=False)
            self._bar.update(1)
        if (t + 1) % ipe == 0:
            self.close_bar()

    def on_epoch_end(self, solver, end):
        best = " *" if end.best else ""
        print(f"epoch {end.epoch}/{end.num_epochs}: train acc {100 * end.train_acc:.1f}%, "
              f"val acc {100 * end.val_acc:.1f}%{best}  (next lr {_lr_text(end.learning_rate)}, "
              f"{end.seconds:.1f} s)", file=self.out or sys.stdout, flush=True)

    def on_train_end(self, solver):
        self.close_bar()

    def close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
