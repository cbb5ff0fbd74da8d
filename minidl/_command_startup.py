"""Ctrl-C while the ``minidl`` command starts up: one line and exit status 130, not a
KeyboardInterrupt traceback from the middle of NumPy's imports.

minidl/__init__.py calls install_interrupt_hook() first thing, and the hook is installed only
in a process started as the command (``python -m minidl ...``, ``python -m minidl.X``, the
``minidl`` script): a program that imports minidl keeps Python's own handling. Once
minidl.cli.main runs, it handles Ctrl-C itself; the hook covers the imports before it (and
anything after it). A Ctrl-C in the interpreter's own start-up, before this module runs,
still gets Python's traceback.
"""
import os
import sys

EXIT_INTERRUPTED = 130  # as minidl.cli.args (not imported here: this runs before NumPy)


def started_as_command():
    """True when this process is the minidl command."""
    argv = getattr(sys, "orig_argv", None)  # the interpreter's own argv (Python 3.10+)
    if argv is not None:
        for i, arg in enumerate(argv[1:-1], start=1):
            if arg == "-m":
                module = argv[i + 1]
                return module == "minidl" or module.startswith("minidl.")
    return os.path.basename(sys.argv[0] if sys.argv else "") in (
        "minidl", "minidl.exe", "minidl-script.py") or sys.argv[:1] == ["-m"]


def install_interrupt_hook():
    """In the minidl command only: an uncaught KeyboardInterrupt prints
    'minidl <command>: interrupted' and exits with status 130."""
    if not started_as_command() or getattr(sys.excepthook, "_minidl", False):
        return
    previous = sys.excepthook

    def hook(kind, value, traceback):
        if not issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, traceback)
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        try:
            sys.stdout.flush()
        except Exception:  # a closed or broken stdout must not hide the message
            pass
        sys.stderr.write(f"minidl{' ' + command if command else ''}: interrupted\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # Python would otherwise end itself with SIGINT

    hook._minidl = True
    sys.excepthook = hook
