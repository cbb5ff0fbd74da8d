"""ClassifierModel: any Module with the coursework model interface, so Solver trains it.

    model = ClassifierModel(minidl.models.zoo.resnet20(num_classes=10, in_channels=1))
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3})
    solver.train()

``model.params`` is the module's parameter view (Solver's ``model.params[k] = next_w``
updates the module) and ``model.loss(X, y=None)`` returns scores (N, C) in eval mode, or
(loss, grads) after a training-mode forward and backward with the softmax loss, plus
``reg * sum(W ** 2)`` over the parameters each module names in ``regularized_params``
(conv and linear weights; EECS 498's L2 convention).
"""
import numpy as np

from ..losses import add_l2_regularization, softmax_loss
from .module import Module


class ClassifierModel:
    """Wrap a classification Module (scores (N, C)) in the coursework loss/params interface.

    module: the network; reg: L2 strength on conv/linear weights; aux_weight: weight of
    auxiliary heads' losses when the module returns (logits, aux, ...) in training
    (GoogLeNet's aux_logits; 0.3 as in the paper); input_shape: reshape each input row to
    this (C, H, W) first (for data given as flat rows). X is cast to the module's dtype.
    """

    def __init__(self, module, reg=0.0, aux_weight=0.3, input_shape=None):
        if not isinstance(module, Module):
            raise TypeError(f"ClassifierModel: module must be a minidl.nn.Module, got "
                            f"{type(module).__name__}")
        self.module = module
        self.reg = float(reg)
        self.aux_weight = float(aux_weight)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._reg_names = [n for n, m, k in module._named_slots("params")
                           if k in m.regularized_params]

    @property
    def dtype(self):
        return self.module.dtype

    @property
    def params(self):
        return self.module.params

    @params.setter
    def params(self, values):
        self.module.params = values

    def flat_parameters(self):
        """The module's flat parameter and gradient buffers (Module.flat_parameters)."""
        return self.module.flat_parameters()

    def _input(self, X):
        X = np.asarray(X, dtype=self.module.dtype)
        if self.input_shape is not None:
            X = X.reshape((X.shape[0],) + self.input_shape)
        return X

    def loss(self, X, y=None):
        """X (N, ...) -> scores (N, C) when y is None; else (loss, grads) with grads a dict
        with the keys of ``params``."""
        X = self._input(X)
        if y is None:
            self.module.eval()
            scores = self.module.forward(X)
            return scores[0] if isinstance(scores, tuple) else scores
        self.module.train()
        self.module.zero_grad()
        out = self.module.forward(X)
        outs = out if isinstance(out, tuple) else (out,)
        loss, d_main = softmax_loss(outs[0], y)
        douts = [d_main]
        for aux in outs[1:]:
            aux_loss, d_aux = softmax_loss(aux, y)
            loss = loss + self.aux_weight * aux_loss
            douts.append(self.aux_weight * d_aux)
        self.module.backward(tuple(douts) if isinstance(out, tuple) else d_main)
        grads = dict(self.module.grads)
        params = self.module.params
        loss = add_l2_regularization(loss, grads, {n: params[n] for n in self._reg_names},
                                     self.reg)
        return self.module.dtype(loss), grads

    def __repr__(self):
        return f"ClassifierModel(reg={self.reg}, module={self.module!r})"
