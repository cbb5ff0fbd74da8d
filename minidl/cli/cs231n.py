"""``minidl cs231n install DIR [--force]`` (also ``python -m minidl.compat.cs231n install DIR``):
write DIR/cs231n/, a package that makes the course's ``import cs231n.X`` use minidl, so that a
course notebook run from DIR runs unchanged (see minidl.compat.cs231n.install and
assignments/README.md)."""
import os

from .args import EXIT_OK

HELP = "make the CS231n course's `cs231n` package resolve to minidl (install DIR)"


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                parser_class=type(parser))
    p = sub.add_parser("install", help="write DIR/cs231n/, a package that forwards to minidl")
    p.add_argument("directory", metavar="DIR",
                   help="the folder the notebooks run from (e.g. the assignment folder)")
    p.add_argument("--force", action="store_true",
                   help="write the forwarder even if DIR/cs231n holds another cs231n package "
                        "(its code is then not imported)")


def run(args):
    from ..compat.cs231n import install

    written = install(args.directory, force=args.force)  # errors: one line, exit 1
    for path in written:
        print(f"wrote {path}")
    package = os.path.join(args.directory, "cs231n")
    print(f"`import cs231n...` now uses minidl for code run from {args.directory} "
          f"(data sets: {os.path.join(package, 'datasets')}). Undo: delete "
          f"{os.path.join(package, '__init__.py')}.")
    return EXIT_OK
