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
"""
import hashlib
import io
import json
import os
import pickle
import warnings
import zipfile

import numpy as np

from ._io import atomic_open

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
