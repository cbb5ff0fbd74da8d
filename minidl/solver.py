"""Solver: the training loop of the coursework (UMich EECS 498-007 A3), on NumPy arrays.

A Solver runs minibatch gradient descent on a model, records the loss and the train/val
accuracy, keeps the best parameters, and can write a checkpoint every epoch::

    data = minidl.data.load_digits()
    model = ThreeLayerConvNet(input_dims=(1, 8, 8), num_filters=16, filter_size=3)
    solver = Solver(model, data, update_rule=minidl.optim.adam,
                    optim_config={'learning_rate': 1e-3}, lr_decay=0.95,
                    num_epochs=10, batch_size=100, print_every=100)
    solver.train()

The model must have
- ``model.params``: a dict mapping names to parameter arrays;
- ``model.loss(X, y=None)``: with y None, return scores (N, C); otherwise return
  (loss, grads) where grads has the same keys as model.params.

Differences from the course code, all backward compatible:

- ``update_rule`` may also be a name looked up in minidl.optim ('sgd', 'sgd_momentum',
  'rmsprop', 'adam').
- ``seed`` gives the Solver its own random generator for minibatch sampling (without it
  the generator is seeded from NumPy's global RNG, so ``np.random.seed`` still makes runs
  repeatable).
- ``lr_schedule`` ('step', 'cosine' or a function of the epoch) as an alternative to
  ``lr_decay``; ``augment`` transforms every training minibatch.
- A NaN or infinite loss stops training with a TrainingDivergedError that names the epoch,
  the iteration and the learning rate.
- Checkpoints are written atomically (temporary file, then os.replace) and hold everything
  a run needs to continue *exactly*: ``solver.load_checkpoint(path)`` followed by
  ``solver.train()`` gives the same loss history as a run that was never interrupted.
  ``request_stop()`` (e.g. from a SIGINT handler) ends train() cleanly after the current
  iteration and writes the checkpoint there.

Checkpoints are pickles (as the course's): load only checkpoints you trust.
"""
import math
import os
import pickle
import time

import numpy as np

from ._io import atomic_open

__all__ = ["Solver", "CheckpointError", "TrainingDivergedError", "read_checkpoint",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "minidl.solver.checkpoint/1"
_SCHEDULES = ("step", "cosine")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (missing, truncated, corrupt, not a Solver
    checkpoint) or that does not fit the Solver that loads it."""


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite. Attributes: epoch (1-based, the epoch
    being trained), iteration (1-based, counted over the whole run), num_iterations, loss,
    learning_rate (a float, or a (min, max) pair when parameters differ, or None)."""

    def __init__(self, message, epoch, iteration, num_iterations, loss, learning_rate,
                 detail=None):
        super().__init__(message)
        self.detail = detail or message  # the message without the "Solver: " prefix
        self.epoch, self.iteration, self.num_iterations = epoch, iteration, num_iterations
        self.loss, self.learning_rate = loss, learning_rate


def _resolve_update_rule(rule, owner="Solver"):
    """An update function (w, dw, config) -> (next_w, config), from a callable or a name."""
    if callable(rule):
        return rule
    if isinstance(rule, str):
        from . import optim

        fn = getattr(optim, rule, None) if not rule.startswith("_") else None
        if not callable(fn):
            names = ", ".join(repr(n) for n in ("sgd", "sgd_momentum", "rmsprop", "adam"))
            raise ValueError(f'{owner}: invalid update_rule "{rule}"; expected one of {names} '
                             "or an update function (w, dw, config) -> (next_w, config)")
        return fn
    raise TypeError(f"{owner}: update_rule must be a function or a name in minidl.optim, "
                    f"got {type(rule).__name__}")


def _rule_name(rule):
    return f"{getattr(rule, '__module__', '?')}.{getattr(rule, '__qualname__', repr(rule))}"


def _picklable(obj):
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # local functions, lambdas, open files, ...
        return False


def read_checkpoint(path):
    """Read a checkpoint written by Solver and return its dict.

    Raises CheckpointError with a one-line reason when the file is missing, truncated,
    corrupt or not a minidl Solver checkpoint. The dict has the course's keys ('model',
    'epoch', 'loss_history', ...) and minidl's ('format', 'iteration', 'optim_configs',
    'rng_state', 'best_params', 'extra', ...).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
    except Exception as e:  # unpickling can raise almost anything on a damaged file
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path!r}: the file is truncated, "
                              f"corrupt or not a pickle ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path!r} is not a minidl Solver checkpoint (expected format "
                              f"{CHECKPOINT_FORMAT!r}, found {found!r})")
    return ckpt


def _write_atomically(path, obj):
    """Pickle obj to path atomically (see minidl._io.atomic_open)."""
    with atomic_open(path) as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


class Solver:
    """Train a classification model with minibatch gradient descent.

    Required arguments:
    - model: an object with ``params`` (dict name -> array) and
      ``loss(X, y=None)`` (scores (N, C) when y is None, else (loss, grads)).
    - data: a dict with 'X_train' (N_train, d_1, ..., d_k), 'y_train' (N_train,),
      'X_val' (N_val, d_1, ..., d_k) and 'y_val' (N_val,); other keys are ignored.

    Optional keyword arguments (the course's, with its defaults):
    - update_rule: update function (w, dw, config) -> (next_w, config), or its name in
      minidl.optim. Default: minidl.optim.sgd.
    - optim_config: dict of hyperparameters for the update rule (e.g. 'learning_rate');
      each parameter gets its own copy.
    - lr_decay: after each epoch every learning rate is multiplied by this (default 1.0).
    - batch_size: minibatch size (default 100).
    - num_epochs: epochs to train (default 10).
    - num_train_samples: training images used to estimate train accuracy (default 1000;
      None uses the whole training set).
    - num_val_samples: validation images used for val accuracy (default None: all).
    - checkpoint_name: if not None, write ``<checkpoint_name>_epoch_<k>.pkl`` at each
      accuracy check.
    - print_every: print the training loss every this many iterations (default 10).
    - print_acc_every: print accuracies every this many epochs (default 1).
    - verbose: if False, print nothing (default True).
    - device: accepted for compatibility with the course notebooks; only 'cpu'.

    minidl additions:
    - seed: seed of the Solver's own numpy Generator (default None).
    - lr_schedule: None (default: lr_decay alone), or a schedule applied at the end of each
      epoch e (e = 1, 2, ...) to every parameter's initial learning rate lr0:
        'step':   lr = lr0 * gamma ** (e // step_size)          (PyTorch's StepLR)
        'cosine': lr = lr_min + (lr0 - lr_min) * (1 + cos(pi * e / num_epochs)) / 2
                                                                (CosineAnnealingLR)
        a function f(e) -> factor:  lr = lr0 * f(e)
      A schedule replaces lr_decay (giving both is an error).
    - step_size (epochs, required for 'step'), gamma (default 0.1), lr_min (default 0).
    - augment: None or a callable (X_batch, rng) -> X_batch applied to every training
      minibatch with the Solver's generator (e.g. minidl.data.transforms.Compose([...]));
      never applied to accuracy checks.
    - checkpoint_path: if not None, one checkpoint file rewritten (atomically) at each
      accuracy check and when training stops early; load_checkpoint(path) continues from it.
    - checkpoint_extra: a picklable dict stored in every checkpoint under 'extra' (the
      ``minidl train`` command keeps its settings there).

    After train(): ``loss_history`` (one float per iteration), ``train_acc_history`` and
    ``val_acc_history`` (one float per accuracy check), ``best_val_acc``, ``best_epoch`` and
    ``best_params`` (copies of the parameters with the best validation accuracy, which
    train() puts back into the model unless return_best_params=False), ``epoch`` and
    ``iteration`` (completed so far), ``stopped_early`` (request_stop() or time_limit).

    Subclasses can override the hooks ``on_iteration_begin(t, num_iterations)`` (before
    every iteration; does nothing), ``on_iteration(t, num_iterations)`` (after every
    iteration; by default prints the loss every print_every iterations) and
    ``on_check(train_acc, val_acc)`` (after every accuracy check; prints the accuracies).
    """

    # CS231n draws minibatches with replacement (np.random.choice); EECS 498 without
    # (torch.randperm). minidl.compat.cs231n.Solver flips this.
    _sample_with_replacement = False
    _default_update_rule = "sgd"

    def __init__(self, model, data, **kwargs):
        name = type(self).__name__
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise TypeError(f"{name}: model must have a 'params' dict and a loss(X, y=None) "
                            f"method, got {type(model).__name__}")
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise KeyError(f"{name}: data is missing {', '.join(missing)} "
                           f"(it has {', '.join(map(str, data)) or 'no keys'})")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if len(X) != len(y):
                raise ValueError(f"{name}: X_{split} has {len(X)} rows (shape {np.shape(X)}) "
                                 f"but y_{split} has {len(y)} (shape {np.shape(y)})")
        self.model = model
        self.X_train = data["X_train"]
        self.y_train = data["y_train"]
        self.X_val = data["X_val"]
        self.y_val = data["y_val"]

        self.update_rule = _resolve_update_rule(
            kwargs.pop("update_rule", self._default_update_rule), name)
        self.optim_config = kwargs.pop("optim_config", {})
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = kwargs.pop("batch_size", 100)
        self.num_epochs = kwargs.pop("num_epochs", 10)
        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = kwargs.pop("print_every", 10)
        self.print_acc_every = kwargs.pop("print_acc_every", 1)
        self.verbose = kwargs.pop("verbose", True)
        self.seed = kwargs.pop("seed", None)
        self.lr_schedule = kwargs.pop("lr_schedule", None)
        self.step_size = kwargs.pop("step_size", None)
        self.gamma = kwargs.pop("gamma", 0.1)
        self.lr_min = kwargs.pop("lr_min", 0.0)
        self.augment = kwargs.pop("augment", None)
        self.checkpoint_path = kwargs.pop("checkpoint_path", None)
        self.checkpoint_extra = kwargs.pop("checkpoint_extra", None)
        device = kwargs.pop("device", "cpu")
        if device != "cpu":
            raise ValueError(f"{name}: minidl runs on the CPU only, got device={device!r}")
        if kwargs:
            extra = ", ".join('"%s"' % k for k in kwargs)
            raise ValueError("Unrecognized arguments %s" % extra)
        if int(self.batch_size) < 1:
            raise ValueError(f"{name}: batch_size must be a positive integer, "
                             f"got {self.batch_size}")
        self._check_schedule(name)
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"{name}: augment must be a callable (X, rng) -> X, got "
                            f"{type(self.augment).__name__}")
        self._reset()

    def _check_schedule(self, name):
        s = self.lr_schedule
        if s in (None, "none"):
            self.lr_schedule = None
            return
        if not callable(s) and s not in _SCHEDULES:
            raise ValueError(f"{name}: lr_schedule must be None, 'step', 'cosine' or a function "
                             f"of the epoch returning a factor, got {s!r}")
        if self.lr_decay != 1.0:
            raise ValueError(f"{name}: give either lr_decay ({self.lr_decay}) or lr_schedule "
                             f"({s!r}), not both")
        if s == "step":
            if isinstance(self.step_size, bool) or not isinstance(self.step_size, int) \
                    or self.step_size < 1:
                raise ValueError(f"{name}: lr_schedule='step' needs step_size, a positive number "
                                 f"of epochs, got {self.step_size!r}")
            if not self.gamma > 0:
                raise ValueError(f"{name}: gamma must be positive, got {self.gamma!r}")
        if s == "cosine" and not self.lr_min >= 0:
            raise ValueError(f"{name}: lr_min must be >= 0, got {self.lr_min!r}")

    def _reset(self):
        """Set up the book-keeping for optimisation; called by the constructor."""
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0
        self.best_epoch = None
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.stopped_early = False
        self._stop_requested = False
        # Each parameter gets its own optimizer state (momentum, Adam moments, ...).
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        # Initial learning rate of each parameter, for lr_schedule (filled at the first epoch
        # end: the update rule may only then have set its default learning rate).
        self._base_lrs = {}
        # An owned generator: reproducible with `seed`, and with np.random.seed otherwise.
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ one iteration
    def _sample(self, n, k):
        """Indices of k items out of n (with or without replacement, see the class)."""
        if self._sample_with_replacement:
            return self.rng.integers(0, n, size=k)
        return self.rng.permutation(n)[:k]

    def _step(self):
        """One gradient update on a random minibatch; called by train()."""
        num_train = self.X_train.shape[0]
        batch_mask = self._sample(num_train, self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]
        if self.augment is not None:
            X_batch = self.augment(X_batch, self.rng)

        loss, grads = self.model.loss(X_batch, y_batch)
        loss = float(loss)
        self.loss_history.append(loss)
        if not math.isfinite(loss):
            # Stop before the update: the parameters stay those of the last finite loss.
            self._diverged(loss)

        for p, w in list(self.model.params.items()):
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            # Item assignment (not replacing the dict) also works for dict-like views.
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def learning_rates(self):
        """The current learning rate: a float when every parameter has the same one, a
        (min, max) pair when they differ, None before the update rule has chosen one."""
        lrs = {c["learning_rate"] for c in self.optim_configs.values() if "learning_rate" in c}
        if not lrs and "learning_rate" in self.optim_config:
            lrs = {self.optim_config["learning_rate"]}
        if not lrs:
            return None
        return lrs.pop() if len(lrs) == 1 else (min(lrs), max(lrs))

    def _diverged(self, loss):
        ipe = self._iterations_per_epoch()
        lr = self.learning_rates()
        if lr is None:
            lr_text = f"the default learning rate of {getattr(self.update_rule, '__name__', '?')}"
        elif isinstance(lr, tuple):
            lr_text = f"learning rates {lr[0]:g} to {lr[1]:g}"
        else:
            lr_text = f"learning rate {lr:g}"
        it = self.iteration + 1
        epoch = self.epoch + 1
        total = self.num_epochs * ipe
        detail = (f"the loss is {loss} at epoch {epoch} / {self.num_epochs}, iteration {it} / "
                  f"{total} (iteration {(it - 1) % ipe + 1} of the epoch), with {lr_text}; "
                  "training stopped before that update. Try a smaller learning rate or check "
                  "the data for NaNs.")
        raise TrainingDivergedError(f"{type(self).__name__}: {detail}", epoch=epoch,
                                    iteration=it, num_iterations=total, loss=loss,
                                    learning_rate=lr, detail=detail)

    # ------------------------------------------------------------------ learning rates
    def _update_learning_rates(self):
        """Called at the end of each epoch (self.epoch already counts it)."""
        for p, config in self.optim_configs.items():
            if self.lr_schedule is None:
                if "learning_rate" in config:
                    config["learning_rate"] *= self.lr_decay
                continue
            if p not in self._base_lrs:
                if "learning_rate" not in config:
                    continue  # an update rule without a learning rate
                self._base_lrs[p] = config["learning_rate"]
            config["learning_rate"] = self.scheduled_lr(self._base_lrs[p], self.epoch)

    def scheduled_lr(self, lr0, epoch):
        """The learning rate lr_schedule gives for the epoch after ``epoch`` epochs, from
        the initial learning rate lr0 (see the class docstring for the formulas)."""
        s = self.lr_schedule
        if s is None:
            return lr0 * self.lr_decay ** epoch
        if s == "step":
            return lr0 * self.gamma ** (epoch // self.step_size)
        if s == "cosine":
            T = max(self.num_epochs, 1)
            return self.lr_min + (lr0 - self.lr_min) * 0.5 * (1 + math.cos(math.pi * min(epoch, T)
                                                                          / T))
        return lr0 * float(s(epoch))

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self):
        """The dict written to checkpoints: the course's keys, then minidl's."""
        update_rule = self.update_rule if _picklable(self.update_rule) else None
        schedule = self.lr_schedule
        if callable(schedule) and not _picklable(schedule):
            schedule = _rule_name(schedule)
        return {
            # The course's keys.
            "model": self.model,
            "update_rule": update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            # What an exact resume needs.
            "format": CHECKPOINT_FORMAT,
            "iteration": self.iteration,
            "num_epochs": self.num_epochs,
            "update_rule_name": _rule_name(self.update_rule),
            "optim_configs": self.optim_configs,
            "lr_schedule": schedule,
            "step_size": self.step_size,
            "gamma": self.gamma,
            "lr_min": self.lr_min,
            "base_lrs": self._base_lrs,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "best_params": self.best_params,
            "rng_state": self.rng.bit_generator.state,
            "numpy_global_state": np.random.get_state(),
            "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "param_shapes": {k: (tuple(np.shape(v)), np.asarray(v).dtype.name)
                             for k, v in self.model.params.items()},
            "data_shape": {"X_train": tuple(np.shape(self.X_train)),
                           "X_val": tuple(np.shape(self.X_val))},
            "extra": self.checkpoint_extra,
            "time": time.time(),
        }

    def save_checkpoint(self, path):
        """Write the model, optimizer state, histories and RNG states to path, atomically.
        Returns path."""
        try:
            _write_atomically(path, self._checkpoint())
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise TypeError(f"{type(self).__name__}: cannot pickle the checkpoint for {path!r}: "
                            f"{e} (models and update rules must be defined at module level)") \
                from None
        return path

    def _save_checkpoint(self):
        """Write the checkpoint files this Solver was configured with (checkpoint_name:
        <name>_epoch_<epoch>.pkl as the course; checkpoint_path: one file)."""
        if self.checkpoint_name is not None:
            filename = "%s_epoch_%d.pkl" % (self.checkpoint_name, self.epoch)
            if self.verbose:
                print('Saving checkpoint to "%s"' % filename)
            self.save_checkpoint(filename)
        if self.checkpoint_path is not None:
            self.save_checkpoint(self.checkpoint_path)

    def load_checkpoint(self, path):
        """Continue from a checkpoint: restore the model, the optimizer state (including
        the current learning rates), the histories, the best parameters and the random
        generators (the Solver's and NumPy's global one), so that train() goes on exactly as
        the run that wrote it would have. Returns self.

        The model must be of the same class with the same parameter names, shapes and
        dtypes, the training data must have the same shape, and batch_size and the update
        rule must be the same; otherwise CheckpointError says what differs and nothing is
        changed. num_epochs is this Solver's (raise it to train further). The model object
        keeps its identity: its attributes are replaced by the saved ones.
        """
        ckpt = read_checkpoint(path)
        self._check_fits(ckpt, os.fspath(path))
        saved_model = ckpt["model"]
        self.model.__dict__.update(saved_model.__dict__)
        self.optim_configs = ckpt["optim_configs"]
        self._base_lrs = dict(ckpt["base_lrs"])
        self.epoch = ckpt["epoch"]
        self.iteration = ckpt["iteration"]
        self.loss_history = list(ckpt["loss_history"])
        self.train_acc_history = list(ckpt["train_acc_history"])
        self.val_acc_history = list(ckpt["val_acc_history"])
        self.best_val_acc = ckpt["best_val_acc"]
        self.best_epoch = ckpt["best_epoch"]
        self.best_params = ckpt["best_params"]
        self.rng.bit_generator.state = ckpt["rng_state"]
        np.random.set_state(ckpt["numpy_global_state"])
        return self

    def _check_fits(self, ckpt, path):
        name = type(self).__name__
        problems = []
        model_class = f"{type(self.model).__module__}.{type(self.model).__qualname__}"
        if ckpt["model_class"] != model_class:
            problems.append(f"it holds a {ckpt['model_class']}, this Solver trains a "
                            f"{model_class}")
        else:
            here = {k: (tuple(np.shape(v)), np.asarray(v).dtype.name)
                    for k, v in self.model.params.items()}
            there = ckpt["param_shapes"]
            for k in sorted(set(here) | set(there), key=str):
                if k not in there:
                    problems.append(f"the model has parameter {k!r} {here[k][0]}, the "
                                    "checkpoint has none")
                elif k not in here:
                    problems.append(f"the checkpoint has parameter {k!r} {there[k][0]}, the "
                                    "model has none")
                elif here[k] != tuple(there[k]):
                    problems.append(f"parameter {k!r} is {there[k][0]} {there[k][1]} in the "
                                    f"checkpoint but {here[k][0]} {here[k][1]} in the model")
        for key, X in (("X_train", self.X_train), ("X_val", self.X_val)):
            if tuple(ckpt["data_shape"][key]) != tuple(np.shape(X)):
                problems.append(f"{key} had shape {tuple(ckpt['data_shape'][key])}, now "
                                f"{tuple(np.shape(X))}")
        if ckpt["batch_size"] != self.batch_size:
            problems.append(f"batch_size was {ckpt['batch_size']}, now {self.batch_size}")
        if ckpt["update_rule_name"] != _rule_name(self.update_rule):
            problems.append(f"update_rule was {ckpt['update_rule_name']}, now "
                            f"{_rule_name(self.update_rule)}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise CheckpointError(f"{name}: checkpoint {path!r} does not fit this run: "
                                  + "; ".join(problems[:3]) + more)

    # ------------------------------------------------------------------ accuracy
    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of the rows of X (N, d_1, ..., d_k) that the model labels as y (N,).

        - num_samples: if not None and smaller than N, use a random subset of this size.
        - batch_size: score the data in batches of this size to bound memory.
        Returns a Python float in [0, 1].
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = self._sample(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]
        if N == 0:
            return 0.0
        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        y_pred = np.concatenate(y_pred)
        return float(np.mean(y_pred == np.asarray(y)))

    # ------------------------------------------------------------------ hooks
    def on_iteration_begin(self, t, num_iterations):
        """Called before iteration t (0-based) of num_iterations; does nothing."""

    def on_iteration(self, t, num_iterations):
        """Called after iteration t (0-based) of num_iterations; prints the loss."""
        if self.verbose and t % self.print_every == 0:
            self._print_loss(t, num_iterations, self._start_time)

    def on_check(self, train_acc, val_acc):
        """Called after each accuracy check (the first iteration and every epoch end)."""
        if self.verbose and self.epoch % self.print_acc_every == 0:
            print("(Epoch %d / %d) train acc: %f; val_acc: %f"
                  % (self.epoch, self.num_epochs, train_acc, val_acc))

    def _print_loss(self, t, num_iterations, start_time):
        print("(Time %.2f sec; Iteration %d / %d) loss: %f"
              % (time.time() - start_time, t + 1, num_iterations, self.loss_history[-1]))

    def request_stop(self):
        """Ask train() to stop after the current iteration (safe to call from a signal
        handler): it writes checkpoint_path there, so that a resume continues exactly."""
        self._stop_requested = True

    def _restore_best_params(self):
        # Copies: in-place update rules (the course's sgd does w -= ...) must not
        # change best_params if training continues.
        for k, v in self.best_params.items():
            self.model.params[k] = v.copy()

    def _iterations_per_epoch(self):
        return max(self.X_train.shape[0] // self.batch_size, 1)

    # ------------------------------------------------------------------ the loop
    def train(self, time_limit=None, return_best_params=True):
        """Run the optimisation until num_epochs epochs are done (from where a loaded
        checkpoint left off).

        - time_limit: seconds; stop before an iteration that would exceed it (EECS 498).
        - return_best_params: put the parameters with the best validation accuracy back
          into the model at the end (default True, as the course does).
        Raises TrainingDivergedError when the loss becomes NaN or infinite.
        """
        iterations_per_epoch = self._iterations_per_epoch()
        num_iterations = self.num_epochs * iterations_per_epoch
        prev_time = start_time = self._start_time = time.time()
        first = self.iteration
        self.stopped_early = False

        while self.iteration < num_iterations:
            t = self.iteration
            cur_time = time.time()
            if time_limit is not None and t > first:
                # Stop if one more iteration (as long as the last one) would pass the limit.
                if cur_time - start_time + (cur_time - prev_time) > time_limit:
                    if self.verbose:
                        self._print_loss(t - 1, num_iterations, start_time)
                        print("End of training; next iteration will exceed the time limit.")
                    self.stopped_early = True
                    break
            prev_time = cur_time

            self.on_iteration_begin(t, num_iterations)
            self._step()
            self.iteration = t + 1
            self.on_iteration(t, num_iterations)

            # At the end of every epoch, count it and update the learning rates.
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                self._update_learning_rates()

            # Check accuracies on the first and last iterations and at each epoch end.
            checked = t == 0 or t == num_iterations - 1 or epoch_end
            if checked:
                train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                num_samples=self.num_train_samples)
                val_acc = self.check_accuracy(self.X_val, self.y_val,
                                              num_samples=self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                # `not self.best_params` makes sure there is always something to restore.
                if val_acc > self.best_val_acc or not self.best_params:
                    self.best_val_acc = val_acc
                    self.best_epoch = self.epoch
                    self.best_params = {k: np.array(v, copy=True)
                                        for k, v in self.model.params.items()}
                self._save_checkpoint()
                self.on_check(train_acc, val_acc)

            if self._stop_requested:
                self._stop_requested = False
                self.stopped_early = True
                if not checked and self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path)
                break

        if return_best_params:
            self._restore_best_params()
