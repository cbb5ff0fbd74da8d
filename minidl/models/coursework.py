"""The coursework models of UMich EECS 498-007 A3, on NumPy arrays.

TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet and DeepConvNet, each with
``params`` (a dict of arrays named as the course names them: W1, b1, gamma1, ...) and
``loss(X, y=None)``: scores (N, num_classes) when y is None, else (loss, grads) with
grads keyed like params. They only compose the layers in minidl.layers (no gradient is
written here) and add L2 regularisation:

    loss += reg_scale * reg * sum(W ** 2)  over the weights W (never biases, gamma, beta)

with reg_scale = 1.0, as EECS 498 defines it. minidl.compat.cs231n reuses these classes
with reg_scale = 0.5 (CS231n's 0.5 * reg * sum(W ** 2)) and CS231n's keyword names.

Differences from the course code: arrays are NumPy; ``dtype`` defaults to
minidl.get_default_dtype() (float32, the course's torch.float; use np.float64 for
gradient checks); ``seed`` (every model) makes the weight initialisation reproducible
(without it the weights come from NumPy's global generator, so np.random.seed works);
``device`` is accepted and must be 'cpu'; save/load use a NumPy .npz file.

``to_module()`` gives each model as minidl.nn modules (a Sequential with the same parameters
and running statistics), for the tools that work on modules: minidl.viz, minidl.summary,
minidl.gradcheck.check_module.
"""
from collections import OrderedDict

import numpy as np

from .._config import float_dtype
from .._io import load_npz, save_npz
from ..layers.dropout import Dropout
from ..layers.linear import Linear, Linear_ReLU, ReLU
from ..layers.norm import BatchNorm, LayerNorm
from ..layers.sandwich import (Conv_BatchNorm_ReLU, Conv_BatchNorm_ReLU_Pool, Conv_ReLU,
                               Conv_ReLU_Pool)
from ..losses import add_l2_regularization, softmax_loss
from ..nn.init import kaiming_normal_values

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "DeepConvNet",
           "kaiming_initializer"]


def _check_device(owner, device):
    if device != "cpu":
        raise ValueError(f"{owner}: minidl runs on the CPU only, got device={device!r}")


def _random_source(seed):
    """A generator with .standard_normal(): an owned one for a seed, else NumPy's global one."""
    return np.random.default_rng(seed) if seed is not None else np.random


def kaiming_initializer(Din, Dout, K=None, relu=True, device="cpu", dtype=None, rng=None):
    """Kaiming (He) initialisation for a linear or convolution weight (EECS 498 A3).

    Inputs:
    - Din, Dout: input and output dimensions (channels for a convolution).
    - K: None for a linear layer; the kernel size for a K x K convolution.
    - relu: gain 2 (Kaiming, for a layer followed by ReLU) if True, else gain 1 (Xavier).
    - device: accepted for compatibility; must be 'cpu'.
    - dtype: float32 or float64 (None: minidl's default dtype).
    - rng: a numpy Generator (default: NumPy's global generator).

    Returns the weight, N(0, gain / fan_in) with fan_in = Din (linear) or Din * K * K:
    shape (Din, Dout) for a linear layer, (Dout, Din, K, K) for a convolution.
    """
    _check_device("kaiming_initializer", device)
    dtype = float_dtype("kaiming_initializer", dtype)
    if K is None:
        shape, fan_in = (Din, Dout), Din
    else:
        shape, fan_in = (Dout, Din, K, K), Din * K * K
    return kaiming_normal_values(np.random if rng is None else rng, shape, dtype, fan_in,
                                 gain=2.0 if relu else 1.0)


class _CourseworkModel:
    """What the coursework models share: L2 regularisation, dtype handling, save/load.

    Subclasses list in ``_saved_attrs`` the plain (JSON-serialisable) attributes that,
    with ``params`` and any ``bn_params`` running statistics, define a trained model.
    """

    reg_scale = 1.0  # EECS 498: reg * sum(W^2); CS231n's subclasses use 0.5
    _saved_attrs = ("reg",)

    def _init_common(self, reg, dtype, device, seed):
        name = type(self).__name__
        _check_device(name, device)
        self.reg = reg
        self.dtype = float_dtype(name, dtype)
        self.params = {}
        return _random_source(seed)

    def _gaussian(self, rng, scale, shape):
        return (scale * rng.standard_normal(shape)).astype(self.dtype)

    def _zeros(self, n):
        return np.zeros(n, dtype=self.dtype)

    def _input(self, X):
        """X as an array of the model's dtype (the course's X.to(self.dtype))."""
        return np.asarray(X, dtype=self.dtype)

    # -- as minidl.nn modules ------------------------------------------------------------
    def to_module(self):
        """This network as minidl.nn modules: a Sequential holding copies of the parameters
        and batch-norm running statistics, in the model's dtype and in eval mode, whose
        forward(X) gives the scores loss(X) gives (y=None, the test-time network). Dropout
        has no module (at test time it is the identity).

        Layers are numbered as the parameters are: W1 is conv1.weight (or fc1.weight,
        transposed to PyTorch's (out, in)), gamma1 bn1.weight; the layers are conv{i},
        bn{i}, relu{i}, pool{i}, flatten, fc{i} (ln{i} for layer norm). ``default_input``:
        (C, H, W) for the convolutional nets, (D,) for the fully-connected ones.
        """
        from .. import nn  # models are built on nn (the layer order allows this import)

        layers, state = OrderedDict(), {}
        self._add_modules(nn, layers, state)
        module = nn.Sequential(layers).astype(self.dtype)
        module.load_state_dict(state)
        module.default_input = self._default_input()
        return module.eval()

    def _add_linear(self, nn, layers, state, i):
        W, b = self.params[f"W{i}"], self.params[f"b{i}"]
        layers[f"fc{i}"] = nn.Linear(W.shape[0], W.shape[1])
        state[f"fc{i}.weight"], state[f"fc{i}.bias"] = W.T, b

    def _add_conv(self, nn, layers, state, i, pad):
        W, b = self.params[f"W{i}"], self.params[f"b{i}"]
        layers[f"conv{i}"] = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], padding=pad)
        state[f"conv{i}.weight"], state[f"conv{i}.bias"] = W, b

    def _add_norm(self, nn, layers, state, i, kind):
        """Batch norm (nn.BatchNorm1d/2d from bn_params[i - 1]) or layer norm after layer i."""
        gamma, beta = self.params[f"gamma{i}"], self.params[f"beta{i}"]
        norm_param = self.bn_params[i - 1]
        eps = norm_param.get("eps", 1e-5)
        name = f"ln{i}" if kind == "layernorm" else f"bn{i}"
        state[f"{name}.weight"], state[f"{name}.bias"] = gamma, beta
        if kind == "layernorm":
            layers[name] = nn.LayerNorm(gamma.size, eps=eps)
            return
        layers[name] = (nn.BatchNorm2d if kind == "spatial" else nn.BatchNorm1d)(gamma.size,
                                                                                 eps=eps)
        # The course's layer starts both statistics at zero when a model was never trained.
        for key in ("running_mean", "running_var"):
            stat = norm_param.get(key)
            state[f"{name}.{key}"] = np.zeros_like(gamma) if stat is None else stat

    def _add_l2(self, loss, grads, weight_names):
        """Add reg_scale * reg * sum(W^2) to loss and its gradient to grads[W]."""
        weights = {k: self.params[k] for k in weight_names}
        return self.dtype(add_l2_regularization(loss, grads, weights, self.reg_scale * self.reg))

    # -- save / load -------------------------------------------------------------------
    # minidl's one model-file layout (minidl._io.save_npz): params by name, running statistics
    # as 'bn_params.<i>.<key>', everything else in the JSON metadata.
    def save(self, path):
        """Write the parameters, running statistics and settings to a .npz file at path."""
        arrays = dict(self.params)
        bn_meta = []
        for i, bn in enumerate(getattr(self, "bn_params", [])):
            arrays.update((f"bn_params.{i}.{k}", v) for k, v in bn.items()
                          if isinstance(v, np.ndarray))
            bn_meta.append({k: v for k, v in bn.items() if not isinstance(v, np.ndarray)})
        save_npz(path, arrays, {"class": type(self).__name__,
                                "dtype": np.dtype(self.dtype).name,
                                "attrs": {a: getattr(self, a) for a in self._saved_attrs},
                                "bn_params": bn_meta})
        print("Saved in {}".format(path))

    def load(self, path, dtype=None, device="cpu"):
        """Read a file written by save(); dtype None keeps the dtype it was saved in."""
        name = type(self).__name__
        _check_device(name, device)
        arrays, meta = load_npz(path, f"{name}.load")
        if meta is None or "class" not in meta:
            raise ValueError(f"{name}.load: {path} is not a minidl model file")
        if meta["class"] != name:
            raise ValueError(f"{name}.load: {path} holds a {meta['class']}, not a {name}")
        dtype = float_dtype(name, meta["dtype"] if dtype is None else dtype)
        params, bn_params = {}, [dict(b) for b in meta["bn_params"]]
        for key, value in arrays.items():
            if key.startswith("bn_params."):
                _, i, k = key.split(".", 2)
                bn_params[int(i)][k] = value.astype(dtype)
            else:
                params[key] = value.astype(dtype)
        self.dtype = dtype
        self.params = params
        for a, v in meta["attrs"].items():
            setattr(self, a, v)
        if hasattr(self, "bn_params"):
            self.bn_params = bn_params
        print("load checkpoint file: {}".format(path))


class TwoLayerNet(_CourseworkModel):
    """Two-layer fully-connected net: linear - relu - linear - softmax.

    Inputs have D = input_dim features (any shape (N, d_1, ..., d_k) that flattens to D);
    params W1 (D, hidden_dim), b1 (hidden_dim,), W2 (hidden_dim, num_classes),
    b2 (num_classes,); weights N(0, weight_scale^2), biases zero.
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=None, device="cpu", seed=None):
        rng = self._init_common(reg, dtype, device, seed)
        self.params["W1"] = self._gaussian(rng, weight_scale, (input_dim, hidden_dim))
        self.params["b1"] = self._zeros(hidden_dim)
        self.params["W2"] = self._gaussian(rng, weight_scale, (hidden_dim, num_classes))
        self.params["b2"] = self._zeros(num_classes)

    def _default_input(self):
        return (self.params["W1"].shape[0],)

    def _add_modules(self, nn, layers, state):
        layers["flatten"] = nn.Flatten()
        self._add_linear(nn, layers, state, 1)
        layers["relu1"] = nn.ReLU()
        self._add_linear(nn, layers, state, 2)

    def loss(self, X, y=None):
        """X (N, d_1, ..., d_k), y (N,) or None -> scores (N, C), or (loss, grads)."""
        X = self._input(X)
        h, cache1 = Linear_ReLU.forward(X, self.params["W1"], self.params["b1"])
        scores, cache2 = Linear.forward(h, self.params["W2"], self.params["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads["W2"], grads["b2"] = Linear.backward(dscores, cache2)
        _, grads["W1"], grads["b1"] = Linear_ReLU.backward(dh, cache1)
        return self._add_l2(loss, grads, ("W1", "W2")), grads


class FullyConnectedNet(_CourseworkModel):
    """Fully-connected net with any number of hidden layers:

        {linear - [batchnorm/layernorm] - relu - [dropout]} x (L - 1) - linear - softmax

    Inputs:
    - hidden_dims: list of hidden layer sizes (L - 1 of them).
    - input_dim, num_classes: D and C.
    - dropout: probability of DROPPING a unit, as EECS 498 defines it (0: no dropout).
    - normalization: None, 'batchnorm' or 'layernorm' (CS231n's option, added here).
    - reg: L2 strength (reg * sum(W^2)); weight_scale: std of the initial weights.
    - seed: makes weight initialisation and dropout reproducible (the course passes it
      to dropout, which then uses the same mask on every call: meant for gradient checks).
    - dtype: float32 or float64 (default: minidl's default dtype).

    params: W1..WL, b1..bL and, with normalization, gamma1..gamma(L-1) (ones) and
    beta1..beta(L-1) (zeros).
    """

    _saved_attrs = ("reg", "num_layers", "normalization", "use_dropout", "use_normalization",
                    "dropout_param")
    _dropout_layer = Dropout  # CS231n's subclass swaps in its keep-probability dropout

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout=0.0,
                 normalization=None, reg=0.0, weight_scale=1e-2, seed=None, dtype=None,
                 device="cpu"):
        name = type(self).__name__
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"{name}: normalization must be None, 'batchnorm' or 'layernorm', "
                             f"got {normalization!r}")
        rng = self._init_common(reg, dtype, device, seed)
        self.normalization = normalization
        self.use_normalization = normalization is not None
        self.use_dropout = self._uses_dropout(dropout)
        self.num_layers = 1 + len(hidden_dims)

        dims = [input_dim] + list(hidden_dims) + [num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = self._gaussian(rng, weight_scale, (dims[i - 1], dims[i]))
            self.params[f"b{i}"] = self._zeros(dims[i])
            if self.use_normalization and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i], dtype=self.dtype)
                self.params[f"beta{i}"] = self._zeros(dims[i])

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = self._make_dropout_param(dropout)
            if seed is not None:
                self.dropout_param["seed"] = seed

        # One dict per normalisation layer: batch norm keeps its running averages there.
        self.bn_params = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

    # The two courses' dropout keywords differ; these are the hooks CS231n's class overrides.
    @staticmethod
    def _uses_dropout(dropout):
        return dropout != 0

    @staticmethod
    def _make_dropout_param(dropout):
        return {"mode": "train", "p": dropout}

    def _default_input(self):
        return (self.params["W1"].shape[0],)

    def _add_modules(self, nn, layers, state):
        layers["flatten"] = nn.Flatten()
        for i in range(1, self.num_layers):
            self._add_linear(nn, layers, state, i)
            if self.use_normalization:
                self._add_norm(nn, layers, state, i, self.normalization)
            layers[f"relu{i}"] = nn.ReLU()
        self._add_linear(nn, layers, state, self.num_layers)

    def _hidden_forward(self, i, x):
        """Hidden layer i (1-based): linear - [norm] - relu - [dropout]; returns out, caches."""
        caches = {}
        x, caches["linear"] = Linear.forward(x, self.params[f"W{i}"], self.params[f"b{i}"])
        if self.use_normalization:
            norm = BatchNorm if self.normalization == "batchnorm" else LayerNorm
            x, caches["norm"] = norm.forward(x, self.params[f"gamma{i}"],
                                             self.params[f"beta{i}"], self.bn_params[i - 1])
        x, caches["relu"] = ReLU.forward(x)
        if self.use_dropout:
            x, caches["dropout"] = self._dropout_layer.forward(x, self.dropout_param)
        return x, caches

    def _hidden_backward(self, i, dout, caches, grads):
        if self.use_dropout:
            dout = self._dropout_layer.backward(dout, caches["dropout"])
        dout = ReLU.backward(dout, caches["relu"])
        if self.use_normalization:
            norm = BatchNorm if self.normalization == "batchnorm" else LayerNorm
            dout, grads[f"gamma{i}"], grads[f"beta{i}"] = norm.backward(dout, caches["norm"])
        dx, grads[f"W{i}"], grads[f"b{i}"] = Linear.backward(dout, caches["linear"])
        return dx

    def loss(self, X, y=None):
        """X (N, d_1, ..., d_k), y (N,) or None -> scores (N, C), or (loss, grads).

        y None runs in test mode (dropout off, batch norm with running averages)."""
        X = self._input(X)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        L = self.num_layers
        out, caches = X, []
        for i in range(1, L):
            out, cache = self._hidden_forward(i, out)
            caches.append(cache)
        scores, last_cache = Linear.forward(out, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = Linear.backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            dout = self._hidden_backward(i, dout, caches[i - 1], grads)
        return self._add_l2(loss, grads, [f"W{i}" for i in range(1, L + 1)]), grads


class ThreeLayerConvNet(_CourseworkModel):
    """Three-layer convolutional net:

        conv - relu - 2x2 max pool - linear - relu - linear - softmax

    The convolution has num_filters filters of filter_size x filter_size, stride 1 and
    pad (filter_size - 1) // 2 (the spatial size is kept for odd filter sizes); H and W
    must be even for the pool. Inputs (N, C, H, W) with input_dims = (C, H, W).
    params: W1 (F, C, K, K), b1 (F,), W2 (F * H/2 * W/2, hidden_dim), b2, W3
    (hidden_dim, num_classes), b3; weights N(0, weight_scale^2), biases zero.
    The convolution and pool are FastConv and FastMaxPool (through Conv_ReLU_Pool).
    """

    _saved_attrs = ("reg",)

    def __init__(self, input_dims=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=None, device="cpu",
                 seed=None):
        rng = self._init_common(reg, dtype, device, seed)
        self.input_dims = tuple(int(d) for d in input_dims)
        C, H, W = input_dims
        F, K = num_filters, filter_size
        self.params["W1"] = self._gaussian(rng, weight_scale, (F, C, K, K))
        self.params["b1"] = self._zeros(F)
        self.params["W2"] = self._gaussian(rng, weight_scale, (F * (H // 2) * (W // 2), hidden_dim))
        self.params["b2"] = self._zeros(hidden_dim)
        self.params["W3"] = self._gaussian(rng, weight_scale, (hidden_dim, num_classes))
        self.params["b3"] = self._zeros(num_classes)

    def _default_input(self):
        return self.input_dims

    def _add_modules(self, nn, layers, state):
        self._add_conv(nn, layers, state, 1, (self.params["W1"].shape[2] - 1) // 2)
        layers["relu1"], layers["pool1"] = nn.ReLU(), nn.MaxPool2d(2, 2)
        layers["flatten"] = nn.Flatten()
        self._add_linear(nn, layers, state, 2)
        layers["relu2"] = nn.ReLU()
        self._add_linear(nn, layers, state, 3)

    def loss(self, X, y=None):
        """X (N, C, H, W), y (N,) or None -> scores (N, num_classes), or (loss, grads)."""
        X = self._input(X)
        W1, b1 = self.params["W1"], self.params["b1"]
        conv_param = {"stride": 1, "pad": (W1.shape[2] - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        h1, cache1 = Conv_ReLU_Pool.forward(X, W1, b1, conv_param, pool_param)
        h2, cache2 = Linear_ReLU.forward(h1, self.params["W2"], self.params["b2"])
        scores, cache3 = Linear.forward(h2, self.params["W3"], self.params["b3"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh2, grads["W3"], grads["b3"] = Linear.backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = Linear_ReLU.backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = Conv_ReLU_Pool.backward(dh1, cache1)
        return self._add_l2(loss, grads, ("W1", "W2", "W3")), grads


class DeepConvNet(_CourseworkModel):
    """VGG-style convolutional net of any depth (EECS 498 A3):

        {conv - [batchnorm] - relu - [pool]} x (L - 1) - linear - softmax

    Every convolution is 3x3 with stride 1 and pad 1; every pool is 2x2 max pooling with
    stride 2 (so the pooled sizes must be even).

    Inputs:
    - input_dims: (C, H, W) of the inputs.
    - num_filters: list of the L - 1 convolutions' filter counts.
    - max_pools: zero-based indices of the macro layers that end with a pool.
    - batchnorm: spatial batch norm after every convolution.
    - num_classes: C of the final linear layer.
    - weight_scale: std of the initial weights, or 'kaiming' for kaiming_initializer
      (gain 2 for the convolutions, which ReLU follows; gain 1 for the final linear).
    - reg: L2 strength on the conv and linear weights (not biases, gamma, beta).
    - weight_initializer: optional function with kaiming_initializer's signature; when
      given it initialises every weight (weight_scale is then ignored).
    - dtype, device, seed: as the other models.

    params: W1..WL, b1..bL, and with batchnorm gamma1..gamma(L-1), beta1..beta(L-1).
    """

    _saved_attrs = ("reg", "num_layers", "max_pools", "batchnorm")

    def __init__(self, input_dims=(3, 32, 32), num_filters=(8, 8, 8, 8, 8),
                 max_pools=(0, 1, 2, 3, 4), batchnorm=False, num_classes=10,
                 weight_scale=1e-3, reg=0.0, weight_initializer=None, dtype=None,
                 device="cpu", seed=None):
        name = type(self).__name__
        rng = self._init_common(reg, dtype, device, seed)
        num_filters, max_pools = list(num_filters), [int(i) for i in max_pools]
        if isinstance(weight_scale, str) and weight_scale != "kaiming":
            raise ValueError(f"{name}: weight_scale must be a number or 'kaiming', "
                             f"got {weight_scale!r}")
        self.num_layers = len(num_filters) + 1
        self.max_pools = max_pools
        self.batchnorm = bool(batchnorm)

        def init(Din, Dout, K=None, relu=True):
            if weight_initializer is not None:
                return np.asarray(weight_initializer(Din, Dout, K=K, relu=relu, dtype=self.dtype),
                                  dtype=self.dtype)
            if weight_scale == "kaiming":
                return kaiming_initializer(Din, Dout, K=K, relu=relu, dtype=self.dtype, rng=rng)
            shape = (Din, Dout) if K is None else (Dout, Din, K, K)
            return self._gaussian(rng, weight_scale, shape)

        self.input_dims = tuple(int(d) for d in input_dims)
        C, H, W = input_dims
        for i, F in enumerate(num_filters, start=1):
            self.params[f"W{i}"] = init(C, F, K=3)
            self.params[f"b{i}"] = self._zeros(F)
            if self.batchnorm:
                self.params[f"gamma{i}"] = np.ones(F, dtype=self.dtype)
                self.params[f"beta{i}"] = self._zeros(F)
            C = F
            if i - 1 in max_pools:
                H, W = H // 2, W // 2
        L = self.num_layers
        self.params[f"W{L}"] = init(C * H * W, num_classes, relu=False)
        self.params[f"b{L}"] = self._zeros(num_classes)

        # One dict per batch norm layer: it keeps its running averages there.
        self.bn_params = [{"mode": "train"} for _ in num_filters] if self.batchnorm else []

    def _default_input(self):
        return self.input_dims

    def _add_modules(self, nn, layers, state):
        for i in range(1, self.num_layers):
            self._add_conv(nn, layers, state, i, 1)
            if self.batchnorm:
                self._add_norm(nn, layers, state, i, "spatial")
            layers[f"relu{i}"] = nn.ReLU()
            if i - 1 in self.max_pools:
                layers[f"pool{i}"] = nn.MaxPool2d(2, 2)
        layers["flatten"] = nn.Flatten()
        self._add_linear(nn, layers, state, self.num_layers)

    def loss(self, X, y=None):
        """X (N, C, H, W), y (N,) or None -> scores (N, num_classes), or (loss, grads)."""
        X = self._input(X)
        mode = "test" if y is None else "train"
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        conv_param = {"stride": 1, "pad": 1}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

        L = self.num_layers
        out, caches = X, []
        for i in range(1, L):
            w, b = self.params[f"W{i}"], self.params[f"b{i}"]
            pool = (i - 1) in self.max_pools
            if self.batchnorm:
                gamma, beta = self.params[f"gamma{i}"], self.params[f"beta{i}"]
                bn = self.bn_params[i - 1]
                if pool:
                    out, cache = Conv_BatchNorm_ReLU_Pool.forward(out, w, b, gamma, beta,
                                                                  conv_param, bn, pool_param)
                else:
                    out, cache = Conv_BatchNorm_ReLU.forward(out, w, b, gamma, beta,
                                                             conv_param, bn)
            elif pool:
                out, cache = Conv_ReLU_Pool.forward(out, w, b, conv_param, pool_param)
            else:
                out, cache = Conv_ReLU.forward(out, w, b, conv_param)
            caches.append((pool, cache))
        scores, last_cache = Linear.forward(out, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = Linear.backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            pool, cache = caches[i - 1]
            if self.batchnorm:
                layer = Conv_BatchNorm_ReLU_Pool if pool else Conv_BatchNorm_ReLU
                dout, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = \
                    layer.backward(dout, cache)
            else:
                layer = Conv_ReLU_Pool if pool else Conv_ReLU
                dout, grads[f"W{i}"], grads[f"b{i}"] = layer.backward(dout, cache)
        return self._add_l2(loss, grads, [f"W{i}" for i in range(1, L + 1)]), grads
