"""Atomic file writes: every checkpoint, state file and plot minidl writes goes through here.

    atomic_open(path)      a file that appears complete or not at all
    save_png(fig, path)    a matplotlib Figure written through atomic_open
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A crash, an exception or a full disk leaves either the old file or the new one in place,
    never half of one (os.replace is atomic on POSIX and Windows). The new file gets the
    permissions open() would give it, not mkstemp's private 0600. Yields the open file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp_{os.path.basename(path)}.", dir=directory)
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


def save_png(fig, path):
    """Write a matplotlib Figure to path as PNG, atomically (see atomic_open); returns the
    path. Needs no matplotlib import here: the figure brings its own."""
    path = os.fspath(path)
    with atomic_open(path) as f:
        fig.savefig(f, format="png")
    return path
