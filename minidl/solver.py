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

Differences from the course code, all backward compatible: ``update_rule`` may also be a
name looked up in minidl.optim ('sgd', 'sgd_momentum', 'rmsprop', 'adam'); ``seed`` gives
the Solver its own random generator for minibatch sampling (without it the generator is
seeded from NumPy's global RNG, so ``np.random.seed`` still makes runs repeatable);
checkpoints are written atomically.
"""
import os
import pickle
import tempfile
import time

import numpy as np


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
    - seed: seed of the Solver's own numpy Generator (minidl addition; default None).
    - device: accepted for compatibility with the course notebooks; only 'cpu'.

    After train(): ``loss_history`` (one float per iteration), ``train_acc_history`` and
    ``val_acc_history`` (one float per accuracy check), ``best_val_acc`` and
    ``best_params`` (copies of the parameters with the best validation accuracy, which
    train() puts back into the model unless return_best_params=False).
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
        device = kwargs.pop("device", "cpu")
        if device != "cpu":
            raise ValueError(f"{name}: minidl runs on the CPU only, got device={device!r}")
        if kwargs:
            extra = ", ".join('"%s"' % k for k in kwargs)
            raise ValueError("Unrecognized arguments %s" % extra)
        if int(self.batch_size) < 1:
            raise ValueError(f"{name}: batch_size must be a positive integer, "
                             f"got {self.batch_size}")
        self._reset()

    def _reset(self):
        """Set up the book-keeping for optimisation; called by the constructor."""
        self.epoch = 0
        self.best_val_acc = 0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        # Each parameter gets its own optimizer state (momentum, Adam moments, ...).
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        # An owned generator: reproducible with `seed`, and with np.random.seed otherwise.
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        self.rng = np.random.default_rng(seed)

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

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(float(loss))

        for p, w in list(self.model.params.items()):
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            # Item assignment (not replacing the dict) also works for dict-like views.
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _checkpoint(self):
        """The dict written by _save_checkpoint (the course's keys)."""
        return {
            "model": self.model,
            "update_rule": self.update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }

    def _save_checkpoint(self):
        """Pickle the model and histories to <checkpoint_name>_epoch_<epoch>.pkl."""
        if self.checkpoint_name is None:
            return
        filename = "%s_epoch_%d.pkl" % (self.checkpoint_name, self.epoch)
        if self.verbose:
            print('Saving checkpoint to "%s"' % filename)
        # Write to a temporary file in the same directory, then rename: an interrupted
        # write never leaves a truncated checkpoint under the real name.
        directory = os.path.dirname(os.path.abspath(filename))
        fd, tmp = tempfile.mkstemp(prefix=".tmp_ckpt_", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(self._checkpoint(), f)
            os.replace(tmp, filename)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

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

    def _print_loss(self, t, num_iterations, start_time):
        print("(Time %.2f sec; Iteration %d / %d) loss: %f"
              % (time.time() - start_time, t + 1, num_iterations, self.loss_history[-1]))

    def _restore_best_params(self):
        # Copies: in-place update rules (the course's sgd does w -= ...) must not
        # change best_params if training continues.
        for k, v in self.best_params.items():
            self.model.params[k] = v.copy()

    def train(self, time_limit=None, return_best_params=True):
        """Run the optimisation for num_epochs epochs.

        - time_limit: seconds; stop before an iteration that would exceed it (EECS 498).
        - return_best_params: put the parameters with the best validation accuracy back
          into the model at the end (default True, as the course does).
        """
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        prev_time = start_time = time.time()

        for t in range(num_iterations):
            cur_time = time.time()
            if time_limit is not None and t > 0:
                # Stop if one more iteration (as long as the last one) would pass the limit.
                if cur_time - start_time + (cur_time - prev_time) > time_limit:
                    if self.verbose:
                        self._print_loss(t - 1, num_iterations, start_time)
                        print("End of training; next iteration will exceed the time limit.")
                    break
            prev_time = cur_time

            self._step()

            if self.verbose and t % self.print_every == 0:
                self._print_loss(t, num_iterations, start_time)

            # At the end of every epoch, count it and decay the learning rates.
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for k in self.optim_configs:
                    if "learning_rate" in self.optim_configs[k]:
                        self.optim_configs[k]["learning_rate"] *= self.lr_decay

            # Check accuracies on the first and last iterations and at each epoch end.
            if t == 0 or t == num_iterations - 1 or epoch_end:
                train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                num_samples=self.num_train_samples)
                val_acc = self.check_accuracy(self.X_val, self.y_val,
                                              num_samples=self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()

                if self.verbose and self.epoch % self.print_acc_every == 0:
                    print("(Epoch %d / %d) train acc: %f; val_acc: %f"
                          % (self.epoch, self.num_epochs, train_acc, val_acc))

                # `not self.best_params` makes sure there is always something to restore.
                if val_acc > self.best_val_acc or not self.best_params:
                    self.best_val_acc = val_acc
                    self.best_params = {k: np.array(v, copy=True)
                                        for k, v in self.model.params.items()}

        if return_best_params:
            self._restore_best_params()
