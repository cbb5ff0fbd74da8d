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
- Checkpoints run no code: arrays in a .npz file with the metadata as JSON beside them and a
  SHA-256 of the payload (see minidl._checkpoint); the course's pickles (and minidl 0.1's)
  load only with ``allow_pickle=True``.
- The update goes through minidl.nn.Optimizer on the model's flat parameter buffer (one
  call of an elementwise rule per step, see minidl.nn.flat).
"""
import difflib
import math
import numbers
import os
import time

import numpy as np

from . import __version__
from ._checkpoint import (FORMAT as CHECKPOINT_FORMAT, CheckpointError, json_ready,
                          load_model_state, model_settings, model_state, model_state_problems,
                          read_checkpoint, restore_model_state, state_to_archive, write_archive)
from .nn.optimizer import Optimizer, rule_name

__all__ = ["Solver", "CheckpointError", "TrainingDivergedError", "read_checkpoint",
           "load_model_state", "CHECKPOINT_FORMAT"]

_SCHEDULES = ("step", "cosine")
# The Solver's keyword arguments with their defaults (the course's, then minidl's).
_OPTIONS = {
    "update_rule": None, "optim_config": None, "lr_decay": 1.0, "batch_size": 100,
    "num_epochs": 10, "num_train_samples": 1000, "num_val_samples": None,
    "checkpoint_name": None, "print_every": 10, "print_acc_every": 1, "verbose": True,
    "device": "cpu", "seed": None, "lr_schedule": None, "step_size": None, "gamma": 0.1,
    "lr_min": 0.0, "augment": None, "checkpoint_path": None, "checkpoint_extra": None,
}


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


def _count(owner, key, value, none_ok=False):
    """value as a positive int, or a ValueError naming owner, key and value."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        what = "a positive integer" + (" or None" if none_ok else "")
        raise ValueError(f"{owner}: {key} must be {what}, got {value!r}"
                         + ("" if isinstance(value, numbers.Number) or value is None
                            else f" ({type(value).__name__})"))
    return int(value)


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
      each parameter gets its own copy (an elementwise rule: one copy for the whole flat
      buffer, which gives the same numbers; see minidl.nn.Optimizer).
    - lr_decay: after each epoch every learning rate is multiplied by this (default 1.0).
    - batch_size: minibatch size (default 100).
    - num_epochs: epochs to train (default 10).
    - num_train_samples: training images used to estimate train accuracy (default 1000;
      None uses the whole training set).
    - num_val_samples: validation images used for val accuracy (default None: all).
    - checkpoint_name: if not None, write ``<checkpoint_name>_epoch_<k>.npz`` at each
      accuracy check (the course writes .pkl pickles; these are minidl checkpoints).
    - print_every: print the training loss every this many iterations (default 10).
    - print_acc_every: print accuracies every this many epochs (default 1).
    - verbose: if False, print nothing (default True).
    - device: accepted for compatibility with the course notebooks; only 'cpu'.

    minidl additions:
    - seed: seed of the Solver's own numpy Generator (default None).
    - update_rule names: minidl.optim.UPDATE_RULES.
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
    - checkpoint_extra: a JSON-serialisable dict stored in every checkpoint under 'extra'
      (the ``minidl train`` command keeps its settings there).

    batch_size, num_epochs, print_every and print_acc_every must be positive integers,
    num_train_samples and num_val_samples positive integers or None, lr_decay a positive
    number: anything else is a ValueError naming the Solver, the argument and the value.

    After train(): ``loss_history`` (one float per iteration), ``train_acc_history`` and
    ``val_acc_history`` (one float per accuracy check), ``best_val_acc``, ``best_epoch`` and
    ``best_params`` (copies of the parameters with the best validation accuracy, which
    train() puts back into the model unless return_best_params=False), ``epoch`` and
    ``iteration`` (completed so far), ``stopped_early`` (request_stop() or time_limit).
    ``optimizer`` is the minidl.nn.Optimizer that updates the model; ``optim_configs`` its
    per-parameter configs.

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

        unknown = [k for k in kwargs if k not in _OPTIONS]
        if unknown:
            extra = ", ".join('"%s"' % k for k in unknown)
            close = difflib.get_close_matches(unknown[0], _OPTIONS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ValueError(f"{name}: Unrecognized arguments {extra}{hint}")
        options = dict(_OPTIONS, update_rule=self._default_update_rule)
        options.update(kwargs)
        self._update_rule_arg = options["update_rule"]
        self.optim_config = options["optim_config"] if options["optim_config"] is not None \
            else {}
        self.lr_decay = options["lr_decay"]
        self.batch_size = _count(name, "batch_size", options["batch_size"])
        self.num_epochs = _count(name, "num_epochs", options["num_epochs"])
        self.num_train_samples = _count(name, "num_train_samples",
                                        options["num_train_samples"], none_ok=True)
        self.num_val_samples = _count(name, "num_val_samples", options["num_val_samples"],
                                      none_ok=True)
        self.checkpoint_name = options["checkpoint_name"]
        self.print_every = _count(name, "print_every", options["print_every"])
        self.print_acc_every = _count(name, "print_acc_every", options["print_acc_every"])
        self.verbose = options["verbose"]
        self.seed = options["seed"]
        self.lr_schedule = options["lr_schedule"]
        self.step_size = options["step_size"]
        self.gamma = options["gamma"]
        self.lr_min = options["lr_min"]
        self.augment = options["augment"]
        self.checkpoint_path = options["checkpoint_path"]
        self.checkpoint_extra = options["checkpoint_extra"]
        if options["device"] != "cpu":
            raise ValueError(f"{name}: minidl runs on the CPU only, got "
                             f"device={options['device']!r}")
        if not isinstance(self.optim_config, dict):
            raise TypeError(f"{name}: optim_config must be a dict of hyperparameters, got "
                            f"{type(self.optim_config).__name__}")
        if isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, numbers.Real) \
                or not 0 < self.lr_decay < math.inf:
            raise ValueError(f"{name}: lr_decay must be a positive number, got "
                             f"{self.lr_decay!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(
                self.seed, numbers.Integral) or self.seed < 0):
            raise ValueError(f"{name}: seed must be None or an integer >= 0, got {self.seed!r}")
        if self.checkpoint_extra is not None:
            json_ready(self.checkpoint_extra, f"{name}: checkpoint_extra")
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
        self.is_running = False
        # The optimizer keeps the update rule's state (momentum, Adam moments, ...) and
        # updates the model's flat parameter buffer.
        self.optimizer = Optimizer(self.model, self._update_rule_arg, self.optim_config,
                                   owner=type(self).__name__)
        self.update_rule = self.optimizer.update_rule
        # Initial learning rate of each optimizer group, for lr_schedule (filled at the first
        # epoch end: the update rule may only then have set its default learning rate).
        self._base_lrs = {}
        # An owned generator: reproducible with `seed`, and with np.random.seed otherwise.
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        self.rng = np.random.default_rng(seed)

    @property
    def optim_configs(self):
        """Parameter name -> its update-rule config (see Optimizer.configs)."""
        return self.optimizer.configs

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
        # One pass puts the gradients into the flat buffer (a data-parallel run would
        # allreduce flat.grads here), one call of an elementwise rule updates everything.
        flat = self.optimizer.gather_gradients(grads)
        self.optimizer.apply_update(flat)

    def learning_rates(self):
        """The current learning rate: a float when every parameter has the same one, a
        (min, max) pair when they differ, None before the update rule has chosen one."""
        lrs = set(self.optimizer.learning_rates())
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
        if self.lr_schedule is None:
            self.optimizer.scale_learning_rate(self.lr_decay)
            return
        for group in self.optimizer.groups:
            config = group.config
            if group.name not in self._base_lrs:
                if "learning_rate" not in config:
                    continue  # an update rule without a learning rate
                self._base_lrs[group.name] = config["learning_rate"]
            config["learning_rate"] = self.scheduled_lr(self._base_lrs[group.name], self.epoch)

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
        """(meta, arrays) of a checkpoint: the JSON document and the arrays (see
        docs/decisions.md for the layout). The parameters are the flat buffer itself."""
        name = type(self).__name__
        flat = self.optimizer.parameters()
        optimizer_meta, optimizer_arrays = self.optimizer.state()
        state_meta, state_arrays = state_to_archive(model_state(self.model))
        np_state = np.random.get_state()
        schedule = self.lr_schedule
        if callable(schedule):
            schedule = "function " + rule_name(schedule)
        meta = {
            "format": CHECKPOINT_FORMAT, "minidl_version": __version__, "time": time.time(),
            # The course's keys.
            "update_rule": rule_name(self.update_rule),
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            # What an exact resume needs.
            "iteration": self.iteration, "num_epochs": self.num_epochs,
            "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "model_settings": model_settings(self.model),
            "dtype": flat.dtype.name,
            "params": [[n, list(shape)] for n, shape in flat.layout],
            "model_state": state_meta,
            "optimizer": optimizer_meta,
            "lr_schedule": schedule, "step_size": self.step_size, "gamma": self.gamma,
            "lr_min": self.lr_min, "base_lrs": dict(self._base_lrs),
            "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch,
            "rng_state": self.rng.bit_generator.state,
            "numpy_global_state": {"pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                                   "cached_gaussian": float(np_state[4])},
            "data_shape": {"X_train": list(np.shape(self.X_train)),
                           "X_val": list(np.shape(self.X_val))},
            "extra": self.checkpoint_extra,
        }
        meta = json_ready(meta, f"{name}: the checkpoint")  # names what JSON cannot hold
        arrays = {"params": flat.params,
                  "loss_history": np.array(self.loss_history, dtype=np.float64),
                  "train_acc_history": np.array(self.train_acc_history, dtype=np.float64),
                  "val_acc_history": np.array(self.val_acc_history, dtype=np.float64),
                  "numpy_global_keys": np_state[1]}
        if self.best_params:
            arrays["best_params"] = flat.pack(self.best_params, f"{name}: best_params")
        arrays.update((f"optim/{k}", v) for k, v in optimizer_arrays.items())
        arrays.update(state_arrays)
        return meta, arrays

    def save_checkpoint(self, path):
        """Write the parameters, model state (running statistics), optimizer state,
        histories, best parameters and RNG states to path (a .npz file with JSON metadata
        and a SHA-256; see minidl._checkpoint), atomically. Returns path."""
        meta, arrays = self._checkpoint()
        write_archive(path, meta, arrays)
        return path

    def _save_checkpoint(self):
        """Write the checkpoint files this Solver was configured with (checkpoint_name:
        <name>_epoch_<epoch>.npz, the course's naming; checkpoint_path: one file)."""
        if self.checkpoint_name is not None:
            filename = "%s_epoch_%d.npz" % (self.checkpoint_name, self.epoch)
            if self.verbose:
                print('Saving checkpoint to "%s"' % filename)
            self.save_checkpoint(filename)
        if self.checkpoint_path is not None:
            self.save_checkpoint(self.checkpoint_path)

    def load_checkpoint(self, path, allow_pickle=False):
        """Continue from a checkpoint: restore the model's parameters and running statistics,
        the optimizer state (including the current learning rates), the histories, the best
        parameters and the random generators (the Solver's and NumPy's global one), so that
        train() goes on exactly as the run that wrote it would have. Returns self.

        The model is this Solver's (the checkpoint holds no code): it must be of the same
        class, built with the same settings, with the same parameter names, shapes and
        dtype; the training data must have the same shape, and batch_size and the update
        rule must be the same; otherwise CheckpointError says what differs and nothing is
        changed. num_epochs is this Solver's (raise it to train further). allow_pickle=True
        also loads the pickle checkpoints of minidl 0.1 (with a warning: only for trusted
        files).
        """
        ckpt = read_checkpoint(path, allow_pickle=allow_pickle)
        self._check_fits(ckpt, os.fspath(path))
        if ckpt["optimizer"] is None:  # a pickle: the course's per-parameter configs
            self.optimizer.load_per_parameter_configs(ckpt["optim_configs"])
            lrs = ckpt["base_lrs"]
            if self.optimizer.elementwise and lrs:
                lrs = {self.optimizer.groups[0].name: next(iter(lrs.values()))}
        else:
            self.optimizer.load_state(ckpt["optimizer"], ckpt["optimizer_arrays"])
            lrs = ckpt["base_lrs"]
        flat = self.optimizer.parameters()
        flat.params[...] = ckpt["params_flat"]
        restore_model_state(self.model, ckpt["model_state"])
        self._base_lrs = dict(lrs)
        self.epoch = ckpt["epoch"]
        self.iteration = ckpt["iteration"]
        self.loss_history = list(ckpt["loss_history"])
        self.train_acc_history = list(ckpt["train_acc_history"])
        self.val_acc_history = list(ckpt["val_acc_history"])
        self.best_val_acc = ckpt["best_val_acc"]
        self.best_epoch = ckpt["best_epoch"]
        self.best_params = (flat.unflatten(flat.pack(ckpt["best_params"]))
                            if ckpt["best_params"] else {})
        self.rng.bit_generator.state = ckpt["rng_state"]
        np.random.set_state(ckpt["numpy_global_state"])
        return self

    def _check_fits(self, ckpt, path):
        name = type(self).__name__
        problems = []
        model_class = f"{type(self.model).__module__}.{type(self.model).__qualname__}"
        flat = self.optimizer.parameters()
        if ckpt["model_class"] != model_class:
            problems.append(f"it holds a {ckpt['model_class']}, this Solver trains a "
                            f"{model_class}")
        else:
            here = {k: (shape, flat.dtype.name) for k, shape in flat.layout}
            there = {k: (np.shape(v), np.asarray(v).dtype.name)
                     for k, v in ckpt["params"].items()}
            for k in sorted(set(here) | set(there), key=str):
                if k not in there:
                    problems.append(f"the model has parameter {k!r} {here[k][0]}, the "
                                    "checkpoint has none")
                elif k not in here:
                    problems.append(f"the checkpoint has parameter {k!r} {there[k][0]}, the "
                                    "model has none")
                elif here[k] != there[k]:
                    problems.append(f"parameter {k!r} is {there[k][0]} {there[k][1]} in the "
                                    f"checkpoint but {here[k][0]} {here[k][1]} in the model")
            if list(here) != list(there) and not problems:
                problems.append("the parameters are in another order in the checkpoint")
            ours = model_settings(self.model)
            for k, v in ckpt["model_settings"].items():
                if k in ours and ours[k] != v:
                    problems.append(f"the model was built with {k}={v!r}, this one with "
                                    f"{k}={ours[k]!r}")
            problems += model_state_problems(self.model, ckpt["model_state"])
        for key, X in (("X_train", self.X_train), ("X_val", self.X_val)):
            if tuple(ckpt["data_shape"][key]) != tuple(np.shape(X)):
                problems.append(f"{key} had shape {tuple(ckpt['data_shape'][key])}, now "
                                f"{tuple(np.shape(X))}")
        if ckpt["batch_size"] != self.batch_size:
            problems.append(f"batch_size was {ckpt['batch_size']}, now {self.batch_size}")
        if ckpt["update_rule"] != rule_name(self.update_rule):
            problems.append(f"update_rule was {ckpt['update_rule']}, now "
                            f"{rule_name(self.update_rule)}")
        elif ckpt["optimizer"] is not None and not problems:
            problems += self.optimizer.check_state(ckpt["optimizer"], ckpt["optimizer_arrays"])
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
        # Copied into the model's buffer: best_params stay as they are if training continues.
        if self.best_params:
            self.optimizer.parameters().set_params(self.best_params, type(self).__name__)

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
        ``is_running`` is True while the iterations run (a Ctrl-C handler's question).
        """
        self.is_running = True
        try:
            self._run_iterations(time_limit)
        finally:
            self.is_running = False
        if return_best_params:
            self._restore_best_params()

    def _run_iterations(self, time_limit):
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
                    flat = self.optimizer.parameters()
                    self.best_params = flat.unflatten(flat.params.copy())  # one copy
                self._save_checkpoint()
                self.on_check(train_acc, val_acc)

            if self._stop_requested:
                self._stop_requested = False
                self.stopped_early = True
                if not checked and self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path)
                break
