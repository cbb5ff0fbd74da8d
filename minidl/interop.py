"""Weights in and out: PyTorch state_dicts and .pth files, safetensors, and ONNX export.

    load_torch_state_dict(model, state_dict, strict=True)   torch tensors or arrays -> model
    load_torch(model, path, strict=True)                     a .pth/.pt file, read by torch with
                                                             weights_only=True; also
                                                             {"state_dict": ...} / {"model": ...}
    to_torch_state_dict(model)                               -> OrderedDict name -> torch.Tensor
    save_safetensors(model, path, metadata=None)             -> a .safetensors file (no torch)
    load_safetensors(model, path, strict=True)               a .safetensors file -> model
    to_onnx(model, input_shape, path, opset=17)              -> an ONNX file, checked by
                                                             onnx.checker
    check_onnx(model, path, batch=2, seed=0)                 onnxruntime's output on a random
                                                             batch against the model's

A model is a minidl.nn.Module (or a ClassifierModel, whose module is used). Its state_dict()
names are the zoo's, which are torchvision's key for key (batch norm's num_batches_tracked
included), so a torchvision checkpoint loads with one call::

    model = minidl.models.zoo.resnet50()
    minidl.interop.load_torch(model, "resnet50-11ad3fa6.pth")

Loading is all or nothing: keys, shapes and dtypes are checked first, and a mismatch raises
minidl.nn.StateDictError listing what is missing, unexpected, or of the wrong shape or dtype
(also as lists: e.missing, e.unexpected, e.wrong_shape, e.wrong_dtype). A file that cannot
be read raises StateDictError too; nothing is ever unpickled beyond torch's weights_only
loader.

The optional packages are imported when a function needs them: torch (load_torch,
to_torch_state_dict; load_torch_state_dict takes tensors but never imports torch),
safetensors (``pip install minidl[safetensors]``) and onnx (``pip install minidl[onnx]``,
with onnxruntime to run the exported file).
"""
import importlib
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ._io import atomic_open
from .layers.pool import adaptive_bins
from .models.zoo.googlenet import GoogLeNet
from .nn import (SE, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, ChannelPad,
                 ChannelShuffle, ChannelSlice, Concat, Conv2d, Dropout, Flatten, GlobalAvgPool,
                 Identity, Linear, MaxPool2d, Module, ReLU, ReLU6, Residual, Sequential,
                 Sigmoid, StateDictError, Subsample, SyncBatchNorm)

__all__ = ["load_torch_state_dict", "load_torch", "to_torch_state_dict", "save_safetensors",
           "load_safetensors", "to_onnx", "check_onnx", "OnnxExportError", "DEFAULT_OPSET",
           "MIN_OPSET"]

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Slice/Pad/Clip take their settings as inputs, Gemm/MatMul broadcast as used


class OnnxExportError(ValueError):
    """A model that to_onnx cannot express (a module with no ONNX mapping, a bad opset)."""


def _require(module_name, extra, owner):
    """Import an optional package, or an ImportError that says how to install it."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        top = module_name.split(".")[0]
        raise ImportError(f"{owner} needs the {top} package, which is not installed "
                          f"(pip install 'minidl[{extra}]')") from None


def _as_module(model, owner):
    """The minidl.nn.Module behind model (a Module, or a ClassifierModel's .module)."""
    module = model if isinstance(model, Module) else getattr(model, "module", None)
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: model must be a minidl.nn.Module (a zoo model) or a "
                        f"ClassifierModel wrapping one, got {type(model).__name__}; the "
                        "coursework models (TwoLayerNet, ...) keep their weights in "
                        "model.params and save them with model.save(path)")
    return module


def _is_tensor(value):
    """A torch.Tensor, recognised without importing torch."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _to_array(value, key, owner):
    """A tensor or array-like -> ndarray (a tensor is copied to the CPU; bfloat16 becomes
    float32, which holds every bfloat16 value exactly)."""
    if _is_tensor(value):
        t = value.detach()
        try:
            t = t.cpu()
            if str(t.dtype) == "torch.bfloat16":
                t = t.float()
            return t.numpy()
        except (RuntimeError, TypeError) as e:
            raise StateDictError(f"{owner}: entry {key!r} is a {t.dtype} tensor of shape "
                                 f"{tuple(t.shape)} that has no NumPy equivalent ({e})") \
                from None
    return np.asarray(value)


def _arrays(state, owner):
    """A state_dict (name -> tensor or array) -> OrderedDict name -> ndarray."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{owner}: state_dict must be a mapping name -> tensor or array, got "
                        f"{type(state).__name__}")
    out = OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise StateDictError(f"{owner}: state_dict keys must be strings, got {key!r}")
        out[key] = _to_array(value, key, owner)
    return out


def _strip_wrapper_prefix(arrays, module):
    """Drop the 'module.' prefix that torch.nn.DataParallel / DistributedDataParallel put on
    every key, when every key has it and the model has none of the prefixed names."""
    prefix = "module."
    if not arrays or not all(k.startswith(prefix) for k in arrays):
        return arrays
    names = set(module.param_shapes()) | {n for n, _ in module.named_buffers()}
    if any(k in names for k in arrays):
        return arrays
    return OrderedDict((k[len(prefix):], v) for k, v in arrays.items())


def load_torch_state_dict(model, state_dict, strict=True):
    """Load a PyTorch state_dict (name -> torch.Tensor, or NumPy arrays) into model.

    Keys are the model's state_dict() names (torchvision's for the zoo); a 'module.' prefix
    on every key (DataParallel) is dropped. Values are cast to the model's dtype (the batch
    counters stay int64); bfloat16 tensors are read through float32. strict=False loads the
    entries that match and ignores missing and unexpected ones (shapes and dtypes are still
    checked). Raises StateDictError (nothing loaded) with the report described in this
    module's docstring. Returns model. torch itself is never imported here.
    """
    owner = "load_torch_state_dict"
    _load(_as_module(model, owner), state_dict, strict, owner)
    return model


def _load(module, state_dict, strict, owner):
    """load_state_dict with the report under owner's name (load_torch, load_safetensors)."""
    arrays = _strip_wrapper_prefix(_arrays(state_dict, owner), module)
    try:
        module.load_state_dict(arrays, strict=strict)
    except StateDictError as e:
        detail = str(e).split(": ", 1)[-1]
        raise StateDictError(f"{owner} into {type(module).__name__}: {detail}", e.missing,
                             e.unexpected, e.wrong_shape, e.wrong_dtype) from None


def _existing_file(owner, path):
    """path as a str, or FileNotFoundError naming owner when there is no such file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{owner}: no such file: {path!r}")
    return path


def _unwrap_checkpoint(obj, owner, path):
    """A loaded .pth object -> its state_dict: the object itself, or its 'state_dict' or
    'model' entry (the common training-checkpoint wrappers)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise StateDictError(f"{owner}: {path!r} holds a {type(obj).__name__}, not a "
                             "state_dict (a dict name -> tensor, or {'state_dict': ...} / "
                             "{'model': ...} around one)")
    others = [k for k, v in obj.items() if not (_is_tensor(v) or isinstance(v, np.ndarray))]
    if others:
        shown = ", ".join(repr(k) for k in others[:5]) + (" ..." if len(others) > 5 else "")
        raise StateDictError(f"{owner}: {path!r} is a dict with entries that are not tensors "
                             f"({shown}); expected a state_dict, or {{'state_dict': ...}} / "
                             "{'model': ...} around one")
    return obj


def load_torch(model, path, strict=True):
    """Load a .pth/.pt file written by torch.save into model; returns model.

    The file is read by ``torch.load(path, map_location='cpu', weights_only=True)``: plain
    tensors and containers only, never arbitrary pickled objects (a file that needs them, such
    as a whole pickled nn.Module, is refused). It may hold the state_dict itself or a dict
    with the state_dict under 'state_dict' or 'model' (other entries, such as an optimizer's
    state, are ignored). Then as load_torch_state_dict. Raises FileNotFoundError, or
    StateDictError for a file torch cannot read (truncated, not a torch file) or one that
    holds no state_dict.
    """
    owner = "load_torch"
    module = _as_module(model, owner)
    torch = _require("torch", "torch", owner)
    path = _existing_file(owner, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        text = str(e)
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if refused:
            raise StateDictError(f"{owner}: {path!r} holds Python objects besides tensors "
                                 f"({refused.group(1)}), and minidl reads .pth files only with "
                                 "torch.load(..., weights_only=True); save the weights alone "
                                 "with torch.save(model.state_dict(), path)") from None
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        detail = re.search(r"WeightsUnpickler error: \s*(.+)", text)
        if os.path.getsize(path) == 0:
            reason = "the file is empty"
        elif detail:
            reason = detail.group(1).strip()
        else:
            reason = lines[0] if lines else type(e).__name__
        raise StateDictError(f"{owner}: cannot read {path!r} as a PyTorch file (truncated, "
                             f"corrupt or not written by torch.save): {reason}") from None
    _load(module, _unwrap_checkpoint(obj, owner, path), strict, owner)
    return model


def to_torch_state_dict(model):
    """OrderedDict name -> torch.Tensor of every parameter and buffer, in PyTorch's order
    (for the zoo: torchvision's keys; torch_model.load_state_dict(...) takes it with
    strict=True). Tensors are CPU copies in the model's dtype (batch counters int64)."""
    owner = "to_torch_state_dict"
    module = _as_module(model, owner)
    torch = _require("torch", "torch", owner)
    return OrderedDict((k, torch.from_numpy(v)) for k, v in module.state_dict().items())


def save_safetensors(model, path, metadata=None):
    """Write the model's state_dict() to a .safetensors file at path, atomically (through
    the safetensors package's NumPy API: no torch needed). The header's metadata holds
    'format': 'pt' (the tensors are a PyTorch-layout state_dict), minidl's class, arch and
    dtype, and metadata (a dict str -> str) on top. Returns path."""
    owner = "save_safetensors"
    module = _as_module(model, owner)
    st = _require("safetensors.numpy", "safetensors", owner)
    meta = {"format": "pt", "minidl.class": type(module).__name__,
            "minidl.dtype": np.dtype(module.dtype).name}
    if getattr(module, "arch", None):
        meta["minidl.arch"] = str(module.arch)
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"{owner}: metadata must map strings to strings, got {k!r}: "
                            f"{type(v).__name__}")
        meta[k] = v
    data = st.save(dict(module.state_dict()), metadata=meta)
    with atomic_open(path) as f:
        f.write(data)
    return path


def load_safetensors(model, path, strict=True):
    """Load a .safetensors file (written by save_safetensors, or by the safetensors package
    from a PyTorch state_dict) into model; returns model. Then as load_torch_state_dict.
    Raises FileNotFoundError, or StateDictError for a file that is not a readable
    safetensors file (truncated, corrupt) or does not match the model."""
    owner = "load_safetensors"
    module = _as_module(model, owner)
    st = _require("safetensors.numpy", "safetensors", owner)
    path = _existing_file(owner, path)
    try:
        state = st.load_file(path)
    except Exception as e:  # safetensors raises its own SafetensorError, or OSError
        text = str(e).strip().splitlines()
        raise StateDictError(f"{owner}: cannot read {path!r} as a safetensors file "
                             f"(truncated or corrupt?): {text[0] if text else type(e).__name__}"
                             ) from None
    _load(module, state, strict, owner)
    return model


# --------------------------------------------------------------------------- ONNX export

_CONVERTERS = OrderedDict()  # module class -> fn(graph, module, name, x) -> output tensor name


def _converts(*classes):
    def register(fn):
        for cls in classes:
            _CONVERTERS[cls] = fn
        return fn
    return register


def _mapped_class(module):
    """The registered class whose mapping holds for module: its own, or an ancestor's when
    module's class changes nothing about the computation (does not override _forward)."""
    for cls in type(module).__mro__:
        if cls in _CONVERTERS:
            return cls if type(module)._forward is cls._forward else None
    return None


def _varint(n):
    """Protocol buffers' base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _field(number, payload_len):
    """The key and length of a length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(payload_len)


# TensorProto field numbers (onnx.proto): dims 1, data_type 2, name 8, raw_data 9;
# GraphProto.initializer is field 5, ModelProto.graph field 7.
_TENSOR_DIMS, _TENSOR_DTYPE, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 8, 9
_GRAPH_INITIALIZER, _MODEL_GRAPH = 5, 7


def _model_bytes(proto, initializers, onnx):
    """The serialised ModelProto: proto (nodes, inputs, outputs, no weights) followed by a
    second 'graph' field holding only the initialisers, which parsers merge into the first
    (protobuf's rule for a repeated embedded message). The weights are encoded here and
    joined once: upb's SerializeToString runs at a fraction of memory speed on hundreds of
    MB (VGG-11's 530 MB: 8 s on a 2-core machine, against 0.4 s this way)."""
    types = {np.dtype("<f4"): onnx.TensorProto.FLOAT, np.dtype("<i8"): onnx.TensorProto.INT64}
    pieces, size = [], 0
    for name, arr in initializers:
        name_bytes = name.encode("utf-8")
        raw = memoryview(arr).cast("B")
        head = b"".join([_varint(_TENSOR_DIMS << 3) + _varint(d) for d in arr.shape]
                        + [_varint(_TENSOR_DTYPE << 3) + _varint(types[arr.dtype]),
                           _field(_TENSOR_NAME, len(name_bytes)), name_bytes,
                           _field(_TENSOR_RAW, raw.nbytes)])
        tensor = [_field(_GRAPH_INITIALIZER, len(head) + raw.nbytes), head, raw]
        pieces += tensor
        size += sum(len(t) if isinstance(t, bytes) else t.nbytes for t in tensor)
    return b"".join([proto.SerializeToString(), _field(_MODEL_GRAPH, size)] + pieces)


class _OnnxGraph:
    """One export: the ModelProto being filled in (nodes, inputs, outputs), its weights as
    (name, little-endian array) pairs (see _model_bytes), and the per-sample input shape of
    every layer (from trace_shapes)."""

    def __init__(self, onnx, root, input_shape):
        self.onnx, self.helper = onnx, onnx.helper
        self.proto = onnx.ModelProto()
        self.nodes, self.initializers = [], []
        self._names = set()
        _, rows = root.trace_shapes(input_shape)
        self.in_shapes = {id(r.module): r.in_shape for r in rows}

    def fresh(self, base):
        base = base or "x"
        name, i = base, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, name, array, dtype=np.float32):
        """A float32 (or int64) initialiser; returns its name."""
        name = self.fresh(name)
        # ONNX stores raw data little-endian, C order
        arr = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
        self.initializers.append((name, arr))
        return name

    def node(self, op, inputs, name, **attrs):
        out = self.fresh(name)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def convert(self, module, name, x):
        cls = _mapped_class(module)
        if cls is None:
            where = f"{name!r} " if name else "the model "
            mapped = ", ".join(sorted({c.__name__ for c in _CONVERTERS}))
            raise OnnxExportError(
                f"to_onnx: {where}({type(module).__name__}) has no ONNX mapping; mapped "
                f"module types: {mapped} (subclasses count only when they keep the "
                "parent's forward)")
        return _CONVERTERS[cls](self, module, name, x)

    def child(self, name, key):
        return f"{name}.{key}" if name else key


@_converts(Conv2d)
def _conv(g, m, name, x):
    inputs = [x, g.const(f"{name}.weight", m._param("weight"))]
    if m.has_bias:
        inputs.append(g.const(f"{name}.bias", m._param("bias")))
    (ph, pw) = m.padding
    return g.node("Conv", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=[ph, pw, ph, pw], dilations=list(m.dilation), group=m.groups)


@_converts(BatchNorm2d, BatchNorm1d, SyncBatchNorm)  # SyncBatchNorm: in eval, batch norm
def _batchnorm(g, m, name, x):
    # The inference graph: normalised with the running statistics.
    inputs = [x] + [g.const(f"{name}.{k}", v) for k, v in (
        ("weight", m._param("weight")), ("bias", m._param("bias")),
        ("running_mean", m._buffers["running_mean"]), ("running_var", m._buffers["running_var"]))]
    return g.node("BatchNormalization", inputs, name, epsilon=m.eps)


@_converts(ReLU)
def _relu(g, m, name, x):
    return g.node("Relu", [x], name)


@_converts(ReLU6)
def _relu6(g, m, name, x):
    return g.node("Clip", [x, g.const(f"{name}.min", 0.0), g.const(f"{name}.max", 6.0)], name)


@_converts(Sigmoid)
def _sigmoid(g, m, name, x):
    return g.node("Sigmoid", [x], name)


@_converts(Dropout, Identity)
def _identity(g, m, name, x):
    return x  # dropout is the identity at inference


@_converts(MaxPool2d)
def _maxpool(g, m, name, x):
    (ph, pw) = m.padding
    return g.node("MaxPool", [x], name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=[ph, pw, ph, pw], ceil_mode=int(m.ceil_mode))


@_converts(AvgPool2d)
def _avgpool(g, m, name, x):
    (ph, pw) = m.padding
    return g.node("AveragePool", [x], name, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=[ph, pw, ph, pw], count_include_pad=1)


@_converts(GlobalAvgPool)
def _global_avgpool(g, m, name, x):
    return g.node("GlobalAveragePool", [x], name)


@_converts(AdaptiveAvgPool2d)
def _adaptive_avgpool(g, m, name, x):
    c, h, w = g.in_shapes[id(m)]
    oh, ow = m.output_size
    if (h, w) == (oh, ow):
        return x
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return g.node("AveragePool", [x], name, kernel_shape=k, strides=k)
    # Bins of unequal size or overlapping: the average over a bin is linear and separable,
    # out = P @ x @ Q^T with P (oh, h) and Q (ow, w) holding 1/len(bin) on each bin.
    def averaging(size, out_size):
        mat = np.zeros((out_size, size))
        for i, (start, end) in enumerate(adaptive_bins(size, out_size)):
            mat[i, start:end] = 1.0 / (end - start)
        return mat
    cols = g.node("MatMul", [x, g.const(f"{name}.cols", averaging(w, ow).T)], f"{name}.cols_out")
    return g.node("MatMul", [g.const(f"{name}.rows", averaging(h, oh)), cols], name)


@_converts(Flatten)
def _flatten(g, m, name, x):
    return g.node("Flatten", [x], name, axis=1)


@_converts(Linear)
def _linear(g, m, name, x):
    inputs = [x, g.const(f"{name}.weight", m._param("weight"))]
    if m.has_bias:
        inputs.append(g.const(f"{name}.bias", m._param("bias")))
    return g.node("Gemm", inputs, name, transB=1)


@_converts(ChannelShuffle)
def _channel_shuffle(g, m, name, x):
    c, h, w = g.in_shapes[id(m)]
    grouped = g.node("Reshape", [x, g.const(f"{name}.grouped_shape",
                                            [-1, m.groups, c // m.groups, h, w], np.int64)],
                     f"{name}.grouped")
    swapped = g.node("Transpose", [grouped], f"{name}.swapped", perm=[0, 2, 1, 3, 4])
    return g.node("Reshape", [swapped, g.const(f"{name}.shape", [-1, c, h, w], np.int64)], name)


@_converts(ChannelSlice)
def _channel_slice(g, m, name, x):
    return g.node("Slice", [x, g.const(f"{name}.starts", [m.start], np.int64),
                            g.const(f"{name}.ends", [m.stop], np.int64),
                            g.const(f"{name}.axes", [1], np.int64)], name)


@_converts(Subsample)
def _subsample(g, m, name, x):
    c, h, w = g.in_shapes[id(m)]
    return g.node("Slice", [x, g.const(f"{name}.starts", [0, 0], np.int64),
                            g.const(f"{name}.ends", [h, w], np.int64),
                            g.const(f"{name}.axes", [2, 3], np.int64),
                            g.const(f"{name}.steps", list(m.stride), np.int64)], name)


@_converts(ChannelPad)
def _channel_pad(g, m, name, x):
    pads = [0, m.before, 0, 0, 0, m.after, 0, 0]
    return g.node("Pad", [x, g.const(f"{name}.pads", pads, np.int64)], name, mode="constant")


@_converts(Sequential, Residual, Concat, SE)
def _paths(g, m, name, x):
    def run(names, t):
        for key in names:
            t = g.convert(m._children[key], g.child(name, key), t)
        return t

    h = run(m._pre, x)
    outs = [run(path, h) for path in m._paths]
    if m._join is None:
        out = outs[0]
    elif m._join == "add":
        out = g.node("Add", outs, f"{name}.add" if name else "add")
    elif m._join == "concat":
        out = g.node("Concat", outs, f"{name}.concat" if name else "concat", axis=1)
    else:  # SE: x * gate(x), the gate (N, C, 1, 1) broadcast over H and W
        out = g.node("Mul", outs, f"{name}.scale" if name else "scale")
    return run(m._post, out)


@_converts(GoogLeNet)
def _googlenet(g, m, name, x):
    # The inference path: the auxiliary heads only run in training.
    for key in m._main:
        x = g.convert(m._children[key], g.child(name, key), x)
    return x


def to_onnx(model, input_shape, path, opset=DEFAULT_OPSET):
    """Export model's inference graph to an ONNX file at path (written atomically); returns
    path.

    input_shape: one sample's shape, no batch axis ((C, H, W) for an image model); the file's
    input 'input' is (batch, C, H, W) with a free batch size and its output 'logits'
    (batch, classes).
    The graph is the model in eval mode whatever its current mode: batch norm with the
    running statistics, dropout as the identity, GoogLeNet without its auxiliary heads.
    Weights are stored as float32 (what ONNX runtimes run convolutions in), so a float64
    model is rounded. Built with the onnx package's helper API for opset (MIN_OPSET up to
    what the installed onnx knows) and checked with onnx.checker (full check, with shape
    inference) before it is written.

    Every module type of minidl.nn but LayerNorm maps to ONNX (Conv with groups and dilation,
    BatchNormalization, Relu, Clip for ReLU6, Sigmoid, MaxPool with ceil_mode, AveragePool,
    GlobalAveragePool, adaptive average pooling as pooling or two MatMuls, Flatten, Gemm,
    Add, Concat, Mul, the channel shuffle as Reshape-Transpose-Reshape, Slice, Pad); a
    module with no mapping raises OnnxExportError naming it. A shape the model cannot take
    raises minidl.nn.ShapeError, as forward would.
    """
    owner = "to_onnx"
    module = _as_module(model, owner)
    onnx = _require("onnx", "onnx", owner)
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise OnnxExportError(f"{owner}: opset must be an int, got {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"{owner}: opset {opset} is not supported: minidl's mapping needs "
                              f"at least {MIN_OPSET}, and the installed onnx {onnx.__version__} "
                              f"knows up to {newest}")
    out_shape = module.output_shape(input_shape)  # ShapeError for a shape the model rejects
    in_shape = tuple(int(s) for s in input_shape)
    from . import __version__

    graph = _OnnxGraph(onnx, module, in_shape)
    graph._names.add("input")
    out = graph.convert(module, "", "input")
    helper, float_type = onnx.helper, onnx.TensorProto.FLOAT
    # The output gets its own name: an Identity when the last op is a pass-through.
    graph.nodes.append(helper.make_node("Identity", [out], ["logits"], name="logits"))
    proto = graph.proto
    g = proto.graph
    g.name = getattr(module, "arch", None) or type(module).__name__
    g.node.extend(graph.nodes)
    g.input.append(helper.make_tensor_value_info("input", float_type, ["batch", *in_shape]))
    g.output.append(helper.make_tensor_value_info("logits", float_type, ["batch", *out_shape]))
    opsets = [helper.make_opsetid("", opset)]
    proto.opset_import.extend(opsets)
    proto.producer_name, proto.producer_version = "minidl", __version__
    proto.ir_version = helper.find_min_ir_version_for(opsets)  # loads in older runtimes too
    data = _model_bytes(proto, graph.initializers, onnx)
    onnx.checker.check_model(data, full_check=True)  # bytes: serialised once, not twice
    with atomic_open(path) as f:
        f.write(data)
    return path


def check_onnx(model, path, batch=2, seed=0):
    """Run the ONNX file at path in onnxruntime (CPU) on a random standard-normal batch of
    its input shape and compare with model's eval-mode forward on the same batch (in the
    model's dtype; the model's train/eval flags are restored afterwards). Returns
    max |onnx - minidl| / max |minidl|: about 1e-7 for a faithful float32 export."""
    owner = "check_onnx"
    module = _as_module(model, owner)
    ort = _require("onnxruntime", "onnx", owner)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = tuple(spec.shape[1:])
    if not all(isinstance(d, int) for d in shape):
        raise ValueError(f"{owner}: {path!r}'s input {spec.name!r} has shape {spec.shape}; "
                         "every size but the batch must be fixed")
    x = np.random.default_rng(seed).standard_normal((batch,) + shape)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        ref = module.forward(x.astype(module.dtype))
    finally:
        for m, training in modes:
            m.__dict__["training"] = training
    got = session.run(None, {spec.name: x.astype(np.float32)})[0]
    if got.shape != ref.shape:
        raise ValueError(f"{owner}: onnxruntime gave shape {got.shape}, minidl {ref.shape}")
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(got.astype(np.float64) - ref).max() / scale)
