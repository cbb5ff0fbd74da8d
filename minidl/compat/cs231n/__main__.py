"""``python -m minidl.compat.cs231n install DIR [--force]``: the same as
``minidl cs231n install DIR`` (minidl/cli/cs231n.py)."""
import sys

from ...cli import main

if __name__ == "__main__":
    sys.exit(main(["cs231n"] + sys.argv[1:]))
