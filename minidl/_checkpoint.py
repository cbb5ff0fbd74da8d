"""The checkpoint file: NumPy arrays and a JSON document in one zip (.npz) file, with a SHA-256
of the payload, read without unpickling anything.

Members (all stored uncompressed, as np.savez does):

    checkpoint.json      the metadata (UTF-8 JSON; see docs/decisions.md for the schema)
    <key>.npy            one array per key, in NumPy's .npy format, never of dtype object
    checkpoint.sha256    hex SHA-256 of the payload: for each other member, in name order,
                         the name (UTF-8), a 0 byte, its length (8 bytes little-endian), then
                         its bytes

``np.load(path)`` reads the arrays (and ``unzip -p path checkpoint.json`` the metadata). A
flipped byte anywhere in the payload fails the hash (or zip's own CRC first); either way the
reader raises CheckpointError("... is corrupted ..."), never resumes from damaged state.
Checkpoints of minidl before this format were pickles: read_legacy_pickle loads them, for
files the user trusts, only when asked.

Also here: what a model's state is beside its parameters (model_state: an nn module's
buffers, a coursework model's bn_params), read_checkpoint (minidl.solver's), and
load_model_state (a checkpoint into a model built like the one that wrote it).
"""
import hashlib
import io
import json
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict

import numpy as np

from ._io import atomic_open
from .nn.flat import bind_parameters, unflatten
from .nn.module import Module
from .nn.optimizer import rule_name

FORMAT = "minidl.solver.checkpoint/2"
LEGACY_FORMAT = "minidl.solver.checkpoint/1"  # the pickled dict of minidl 0.1
META_MEMBER = "checkpoint.json"
HASH_MEMBER = "checkpoint.sha256"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (missing, truncated, corrupted, not a Solver
    checkpoint, a pickle not allowed) or that does not fit the Solver that loads it."""


def payload_sha256(members):
    """Hex SHA-256 of a dict member name -> bytes (the hash member itself excluded)."""
    h = hashlib.sha256()
    for name in sorted(members):
        if name == HASH_MEMBER:
            continue
        data = members[name]
        h.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _npy_bytes(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


def write_archive(path, meta, arrays):
    """Write meta (a JSON-ready dict) and arrays (dict key -> ndarray) to path, atomically
    (see minidl._io.atomic_open). Returns the payload's SHA-256."""
    members = {META_MEMBER: json.dumps(meta, indent=1, allow_nan=False).encode("utf-8")}
    for key, array in arrays.items():
        members[f"{key}.npy"] = _npy_bytes(array)
    digest = payload_sha256(members)
    members[HASH_MEMBER] = digest.encode("ascii")
    with atomic_open(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            for name, data in members.items():
                z.writestr(name, data)
    return digest


def sniff(path):
    """'zip', 'pickle' or 'other', from the first bytes of the file at path."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head[:1] == b"\x80":  # pickle protocol 2 and later start with PROTO
        return "pickle"
    return "other"


def read_archive(path):
    """(meta, arrays, sha256) of the checkpoint at path; CheckpointError with a one-line
    reason for a missing, damaged or foreign file. Nothing is unpickled."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        with zipfile.ZipFile(path) as z:
            members = {info.filename: z.read(info) for info in z.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, KeyError, RuntimeError) as e:  # zipfile's errors on a
        # damaged file (RuntimeError: a flipped flag bit that reads as "encrypted")
        raise CheckpointError(f"checkpoint {path!r} is corrupted: the file is damaged or "
                              f"truncated ({type(e).__name__}: {e})") from None
    if META_MEMBER not in members:
        raise CheckpointError(f"{path!r} is not a minidl Solver checkpoint (a zip/.npz file "
                              f"without {META_MEMBER}; model files written by save() load with "
                              "load())")
    stored = members.get(HASH_MEMBER, b"").decode("ascii", "replace").strip()
    actual = payload_sha256(members)
    if stored != actual:
        raise CheckpointError(f"checkpoint {path!r} is corrupted: the SHA-256 of its contents "
                              f"is {actual[:16]}..., the file records "
                              f"{(stored[:16] + '...') if stored else 'none'}")
    try:
        meta = json.loads(members[META_MEMBER].decode("utf-8"))
        arrays = {}
        for name, data in members.items():
            if name.endswith(".npy"):
                arrays[name[:-4]] = np.lib.format.read_array(io.BytesIO(data),
                                                             allow_pickle=False)
    except (ValueError, UnicodeDecodeError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path!r} is corrupted: {type(e).__name__}: {e}") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path!r} is not a minidl Solver checkpoint of this version "
                              f"(expected format {FORMAT!r}, found {found!r})")
    return meta, arrays, actual


def read_legacy_pickle(path, allow_pickle):
    """The dict of a pickle checkpoint of minidl 0.1, only with allow_pickle=True (a warning
    says that unpickling runs whatever code the file holds); else CheckpointError."""
    path = os.fspath(path)
    if not allow_pickle:
        raise CheckpointError(
            f"{path!r} is a pickle checkpoint (minidl 0.1's format); unpickling a file can run "
            "any code it holds, so minidl loads one only when asked: allow_pickle=True (minidl "
            "train --allow-pickle), and only for a file you trust")
    warnings.warn(f"loading {path!r} with pickle: a pickle can run any code it holds; only "
                  "load pickle checkpoints you trust (save again to get the safe .npz format)",
                  UserWarning, stacklevel=3)
    try:
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
    except Exception as e:  # unpickling can raise almost anything on a damaged file
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint {path!r} is corrupted: the pickle cannot be read "
                              f"({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != LEGACY_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path!r} is not a minidl Solver checkpoint (expected format "
                              f"{LEGACY_FORMAT!r}, found {found!r})")
    return ckpt


def json_ready(value, where):
    """value as JSON-ready data (NumPy scalars become Python numbers, tuples lists); a
    TypeError naming where for anything JSON cannot hold exactly."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            raise TypeError(f"{where} is {v}, which JSON cannot hold")
        return v
    if isinstance(value, (list, tuple)):
        return [json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; JSON keys are strings")
            out[k] = json_ready(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} is a {type(value).__name__}, which a checkpoint (JSON) cannot "
                    "hold")


# --------------------------------------------------------------------------- model state

def _module_of(model):
    return model if isinstance(model, Module) else getattr(model, "module", None)


def model_settings(model):
    """The model's public plain attributes (reg, num_layers, ...): what it was built with
    (none for an nn Module itself, whose structure the parameter layout already checks)."""
    out = {}
    if isinstance(model, Module):
        return out
    for k, v in getattr(model, "__dict__", {}).items():
        if k.startswith("_"):
            continue
        try:
            v = json_ready(v, k)
        except TypeError:
            continue
        if v is None or isinstance(v, (bool, int, float, str)) or (
                isinstance(v, list) and all(isinstance(x, (bool, int, float, str)) for x in v)):
            out[k] = v
    return out


def model_state(model):
    """What a model holds beside its parameters, as {'buffers': name -> array (an nn
    module's running statistics), 'bn_params': a coursework model's list of bn_param dicts
    (running averages and settings), or None}. The arrays are the model's own."""
    module = _module_of(model)
    buffers = OrderedDict(module.named_buffers()) if isinstance(module, Module) else OrderedDict()
    bn_params = getattr(model, "bn_params", None)
    if not (isinstance(bn_params, (list, tuple)) and all(isinstance(d, dict) for d in bn_params)):
        bn_params = None
    return {"buffers": buffers, "bn_params": bn_params}


def state_to_archive(state):
    """(meta, arrays) of a model state for the checkpoint file."""
    meta, arrays = {"buffers": list(state["buffers"]), "bn_params": None}, {}
    for name, b in state["buffers"].items():
        arrays[f"buffer/{name}"] = b
    if state["bn_params"] is not None:
        meta["bn_params"] = []
        for i, d in enumerate(state["bn_params"]):
            plain = {}
            for k, v in d.items():
                if isinstance(v, np.ndarray):
                    arrays[f"bn/{i}/{k}"] = v
                else:
                    plain[k] = json_ready(v, f"model.bn_params[{i}][{k!r}]")
            meta["bn_params"].append(plain)
    return meta, arrays


def state_from_archive(meta, arrays):
    bn = None
    if meta["bn_params"] is not None:
        bn = [dict(p) for p in meta["bn_params"]]
        for key, a in arrays.items():
            if key.startswith("bn/"):
                _, i, k = key.split("/", 2)
                bn[int(i)][k] = a
    return {"buffers": OrderedDict((n, arrays[f"buffer/{n}"]) for n in meta["buffers"]),
            "bn_params": bn}


def model_state_problems(model, state):
    here = model_state(model)
    ours, theirs = here["buffers"], state["buffers"]
    if list(ours) != list(theirs):
        return [f"the model's buffers are {list(ours)[:3]}..., the checkpoint's "
                f"{list(theirs)[:3]}..."]
    problems = [f"buffer {n!r} is {theirs[n].shape} in the checkpoint but {a.shape} in the model"
                for n, a in ours.items() if a.shape != theirs[n].shape]
    ours, theirs = here["bn_params"], state["bn_params"]
    if (ours is None) != (theirs is None) or (ours is not None and len(ours) != len(theirs)):
        problems.append(f"the checkpoint has {len(theirs or [])} bn_params, the model "
                        f"{len(ours or [])}")
    return problems


def restore_model_state(model, state):
    if state["buffers"]:
        _module_of(model).load_state_dict(state["buffers"], strict=False)
    for d, saved in zip(model.bn_params if state["bn_params"] is not None else (),
                        state["bn_params"] or ()):
        d.clear()
        d.update((k, np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                 for k, v in saved.items())


# --------------------------------------------------------------------------- reading

def read_checkpoint(path, allow_pickle=False):
    """Read a checkpoint written by Solver and return its dict; nothing is unpickled unless
    allow_pickle=True (for the pickle checkpoints of minidl 0.1, with a warning).

    Raises CheckpointError with a one-line reason when the file is missing, truncated,
    corrupted (its SHA-256 does not match), a pickle not allowed, or not a Solver checkpoint.
    The dict has the course's keys ('epoch', 'loss_history', 'train_acc_history',
    'val_acc_history', 'update_rule' (its name), 'lr_decay', 'optim_config', 'batch_size',
    'num_train_samples', 'num_val_samples') and minidl's: 'params' (name -> array, the
    current parameters), 'params_flat' (the same as one 1-D array), 'best_params',
    'iteration', 'num_epochs', 'dtype', 'model_class', 'model_settings', 'model_state',
    'optimizer' and 'optimizer_arrays' (or 'optim_configs' for a pickle), 'lr_schedule',
    'step_size', 'gamma', 'lr_min', 'base_lrs', 'best_val_acc', 'best_epoch', 'rng_state',
    'numpy_global_state' (as np.random.get_state() gives it), 'data_shape', 'extra', 'time',
    'format' and 'sha256' (None for a pickle).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    kind = sniff(path)
    if kind == "pickle":
        return _from_legacy(read_legacy_pickle(path, allow_pickle))
    if kind != "zip":
        raise CheckpointError(f"{path!r} is not a minidl checkpoint (neither a .npz checkpoint "
                              "nor a pickle one)")
    meta, arrays, digest = read_archive(path)
    try:
        return _from_archive(meta, arrays, digest)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise CheckpointError(f"checkpoint {path!r} is incomplete: {type(e).__name__}: {e}") \
            from None


def _from_archive(meta, arrays, digest):
    ckpt = {k: v for k, v in meta.items() if k not in ("params", "numpy_global_state")}
    shapes = OrderedDict((n, tuple(shape)) for n, shape in meta["params"])
    ckpt["params_flat"] = arrays["params"]
    ckpt["params"] = unflatten(arrays["params"], shapes)
    ckpt["best_params"] = (unflatten(arrays["best_params"], shapes) if "best_params" in arrays
                           else {})
    for key in ("loss_history", "train_acc_history", "val_acc_history"):
        ckpt[key] = arrays[key].tolist()
    g = meta["numpy_global_state"]
    ckpt["numpy_global_state"] = ("MT19937", arrays["numpy_global_keys"], g["pos"],
                                  g["has_gauss"], g["cached_gaussian"])
    ckpt["model_state"] = state_from_archive(meta["model_state"], arrays)
    ckpt["optimizer_arrays"] = {k[len("optim/"):]: a for k, a in arrays.items()
                                if k.startswith("optim/")}
    ckpt["sha256"] = digest
    return ckpt


def _from_legacy(old):
    """The dict of a minidl 0.1 pickle checkpoint in read_checkpoint's layout."""
    model = old["model"]
    ckpt = {k: v for k, v in old.items() if k != "model"}
    ckpt["update_rule"] = old["update_rule_name"]
    params = OrderedDict((k, np.array(v, copy=True)) for k, v in model.params.items())
    ckpt["params"] = params
    ckpt["params_flat"] = (np.concatenate([v.ravel() for v in params.values()]) if params
                           else np.zeros(0))
    ckpt["dtype"] = np.dtype(next(iter(params.values())).dtype).name if params else "float64"
    ckpt["model_settings"] = model_settings(model)
    ckpt["model_state"] = model_state(model)
    ckpt["optimizer"], ckpt["optimizer_arrays"] = None, {}
    schedule = old["lr_schedule"]
    ckpt["lr_schedule"] = schedule if schedule is None or isinstance(schedule, str) else (
        "function " + rule_name(schedule))
    ckpt["sha256"] = None
    return ckpt


def load_model_state(model, checkpoint, best=False, allow_pickle=False):
    """Load a checkpoint's parameters (the current ones; best=True: the best ones) and running
    statistics into a model built like the one it was written from (e.g. for export or
    visualisation). checkpoint: a path or read_checkpoint's dict. The names, shapes and
    buffers must match (else CheckpointError, and nothing is loaded). Returns model."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(
        checkpoint, allow_pickle=allow_pickle)
    params = ckpt["best_params"] if best else ckpt["params"]
    flat = bind_parameters(model, owner="load_model_state")
    here = [(n, shape) for n, shape in flat.layout]
    there = [(n, tuple(np.shape(v))) for n, v in params.items()]
    problems = [] if here == there else [
        f"the model's parameters are {here[:2]}..., the checkpoint's {there[:2]}..."]
    problems += model_state_problems(model, ckpt["model_state"])
    if problems:
        raise CheckpointError("load_model_state: the checkpoint does not fit the "
                              f"{type(model).__name__}: " + "; ".join(problems[:3]))
    flat.params[...] = ckpt["params_flat"] if not best else flat.pack(params)
    restore_model_state(model, ckpt["model_state"])
    return model
