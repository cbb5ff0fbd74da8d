"""The ``minidl`` command (also ``python -m minidl``).

One module per subcommand in this package (demo, train, gradcheck, summary, bench, cs231n,
viz), each with

    HELP                    the one-line description ``minidl --help`` lists
    add_arguments(parser)   adds the subcommand's options to its argparse parser
    run(args)               gets the parsed namespace and returns an exit status (0 = success)

and one table, COMMANDS: name -> Command(help, add_arguments, run). Adding a subcommand is
one module here plus one entry in COMMANDS. The library (minidl.training, minidl.bench,
minidl.summary, minidl.autograder, ...) never parses arguments and never prints; these
modules do both. Shared argument types and exit statuses: minidl.cli.args.

The error policy, the same for every subcommand: errors the user can fix print one line,
``minidl <cmd>: error: ...``, without a traceback; bad arguments (argparse's, or a
UsageError raised by run) exit with status 2, other errors (bad values, a missing file or
optional module, a failed check) with 1, Ctrl-C with 130. MINIDL_DEBUG=1 shows the
traceback instead.
"""
import os
import sys
from collections import namedtuple

from . import bench, cs231n, demo, gradcheck, summary, train, viz
from .args import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, UsageError

Command = namedtuple("Command", ["help", "add_arguments", "run"])


def _command(module):
    return Command(module.HELP, module.add_arguments, module.run)


COMMANDS = {
    "demo": _command(demo),
    "train": _command(train),
    "gradcheck": _command(gradcheck),
    "summary": _command(summary),
    "bench": _command(bench),
    "cs231n": _command(cs231n),
    "viz": _command(viz),
}


def build_parser():
    """The top-level parser with one subparser per entry of COMMANDS."""
    parser = ArgumentParser(prog="minidl", description="minidl: a from-scratch NumPy "
                            "deep-learning engine for CNN coursework.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
    return parser


def _version():
    from minidl import __version__

    return f"minidl {__version__}"


def _one_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _run(name, cmd, args):
    """Run one command; user-facing errors become one line and a non-zero status."""
    try:
        return int(cmd.run(args) or 0)
    except KeyboardInterrupt:
        print(f"minidl {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `minidl demo | head -1`): stop quietly, and point
        # stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except UsageError as e:
        if os.environ.get("MINIDL_DEBUG"):
            raise
        print(f"minidl {name}: error: {_one_line(e)} (see 'minidl {name} --help')",
              file=sys.stderr)
        return EXIT_USAGE
    except ImportError as e:
        if os.environ.get("MINIDL_DEBUG"):
            raise
        what = (f"{e.name} is not available in this installation" if e.name
                else _one_line(e))
        print(f"minidl {name}: error: {what}", file=sys.stderr)
        return EXIT_FAILURE
    except (ValueError, TypeError, KeyError, OSError, ArithmeticError) as e:
        if os.environ.get("MINIDL_DEBUG"):
            raise
        print(f"minidl {name}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILURE


def main(argv=None):
    """Entry point of the ``minidl`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a one-line argument error
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_FAILURE)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _run(args.command, COMMANDS[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
