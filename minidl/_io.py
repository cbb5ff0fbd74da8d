"""Files: atomic writes (every checkpoint, state file and plot minidl writes goes through
atomic_open), the one .npz layout of model files (save_npz / load_npz) and PNG figures
(save_png)."""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

NPZ_META_KEY = "__minidl_meta__"
NPZ_FORMAT = "minidl.npz/1"


def _temporary_prefix(path):
    """'.tmp_<name>.': the hidden prefix of the temporary files of writes to path. They never
    end like the target (a checkpoint search by extension never finds them)."""
    return f".tmp_{os.path.basename(path)}."


def _writer_alive(pid):
    """True when a process with this id exists (POSIX); on Windows always True: a file that
    another process still has open cannot be removed there, which protects it instead."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(path):
    """Remove the temporary files that killed writes to path left behind (only path's own:
    '.tmp_<name>.<pid>.<random>' of a process that no longer runs, or from an older minidl
    without the pid). Returns the names removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(path)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit() and "." in name[len(prefix):] and (
                int(pid_text) == os.getpid() or _writer_alive(int(pid_text))):
            continue  # a write in progress (ours in another thread, or another process's)
        with contextlib.suppress(OSError):
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A crash, an exception or a full disk leaves either the old file or the new one in place,
    never half of one (os.replace is atomic on POSIX and Windows). The temporary file is
    '.tmp_<name>.<pid>.<random>'; a write that was killed (SIGKILL, power loss) leaves it
    behind, and the next write to the same path removes it. The new file gets the
    permissions open() would give it, not mkstemp's private 0600. Yields the open file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temporary_prefix(path)}{os.getpid()}.", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_npz(path, arrays, meta):
    """Write arrays (dict name -> ndarray) and meta (a JSON-serialisable dict, stored as JSON
    text under NPZ_META_KEY with ``format`` set to NPZ_FORMAT) to one .npz file at path,
    atomically. Nothing is pickled: load_npz reads it with allow_pickle=False. Returns path.
    """
    if NPZ_META_KEY in arrays:
        raise ValueError(f"save_npz: {NPZ_META_KEY!r} is reserved for the metadata")
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for name, a in payload.items():
        if a.dtype.hasobject:  # np.savez would pickle it
            raise TypeError(f"save_npz: array {name!r} holds Python objects ({a.dtype}); only "
                            "numeric arrays are saved")
    payload[NPZ_META_KEY] = np.array(json.dumps({**meta, "format": NPZ_FORMAT}))
    with atomic_open(path) as f:  # a failed write never replaces a good file
        np.savez(f, **payload)
    return path


def load_npz(path, owner, error=ValueError):
    """Read a .npz file without unpickling: returns (arrays, meta), arrays a dict name ->
    ndarray and meta the dict save_npz stored (None for a plain np.savez file).

    owner names the caller in the error (of class ``error``) raised for a file that is not
    a readable .npz or whose metadata is not JSON; FileNotFoundError passes unchanged.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k != NPZ_META_KEY}
            text = str(f[NPZ_META_KEY]) if NPZ_META_KEY in f.files else None
        meta = json.loads(text) if text is not None else None
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise error(f"{owner}: cannot read {os.fspath(path)!r} as a minidl .npz file ({e})") \
            from None
    return arrays, meta


def save_png(fig, path):
    """Write a matplotlib Figure to path as PNG, atomically (see atomic_open); returns the
    path. Needs no matplotlib import here: the figure brings its own."""
    path = os.fspath(path)
    with atomic_open(path) as f:
        fig.savefig(f, format="png")
    return path
