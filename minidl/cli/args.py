"""What every ``minidl`` subcommand shares: the parser, argument types, exit statuses.

    ArgumentParser      argparse with one-line errors, and options that take one value
                        accept a value that starts with '-' (``--input -3,32,32``)
    UsageError          raise it from a command's run(args) for a bad combination of
                        arguments: one line and exit status 2, like argparse's own errors
    positive_int, nonneg_int, positive_float, nonneg_float, boolean
                        argparse types with messages that name the value
    EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED
    num_threads(n)      context manager: minidl.set_num_threads(n), restored afterwards
"""
import argparse
import contextlib
import re
import sys

EXIT_OK = 0
EXIT_FAILURE = 1       # a check failed, or an error the user can fix (one line)
EXIT_USAGE = 2         # bad arguments: argparse's status
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by SIGINT (Ctrl-C)

# A token that argparse would take for an option but that is a value: '-3', '-3,32,32',
# '-1e-3', '-2x2'. (argparse itself takes only plain negative numbers as values.)
_DASH_VALUE = re.compile(r"^-\.?\d[\w.,+-]*$")


class UsageError(Exception):
    """Bad arguments found after parsing: reported as ``minidl <cmd>: error: ...`` with exit
    status 2 (EXIT_USAGE), the status argparse gives."""


class ArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line: '<prog>: error: <message> (see --help)'.

    An option that takes exactly one value also takes a value that starts with '-' and a
    digit (``--input -3,32,32``, ``--seed -1``), as if written ``--input=-3,32,32``: the
    option's type then says what is wrong with the value, instead of argparse's "expected
    one argument".
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._one_value_options = set()

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.nargs is None:
            self._one_value_options.update(action.option_strings)
        return action

    def parse_known_args(self, args=None, namespace=None):
        args = self._attach_dash_values(list(sys.argv[1:] if args is None else args))
        return super().parse_known_args(args, namespace)

    def _attach_dash_values(self, args):
        out, i = [], 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                return out + args[i:]
            if (arg in self._one_value_options and i + 1 < len(args)
                    and _DASH_VALUE.match(args[i + 1])):
                out.append(f"{arg}={args[i + 1]}")
                i += 2
                continue
            out.append(arg)
            i += 1
        return out

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number_type(name, convert, expected, accept):
    """An argparse type: convert(text), kept when accept(value), else an error that says
    what was expected and what was given."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"argparse type: {expected}."
    return parse


positive_int = _number_type("positive_int", int, "a positive integer", lambda v: v >= 1)
nonneg_int = _number_type("nonneg_int", int, "an integer >= 0", lambda v: v >= 0)
# float('nan') fails both comparisons; float('inf') is not a usable rate or size.
positive_float = _number_type("positive_float", float, "a positive number",
                              lambda v: 0 < v < float("inf"))
nonneg_float = _number_type("nonneg_float", float, "a number >= 0",
                            lambda v: 0 <= v < float("inf"))


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def boolean(text):
    """A strict boolean: true/false, 1/0, yes/no (any case) -> True/False; anything else is
    an error (never 'non-empty, so True')."""
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, 1/0, yes/no), got "
                                     f"{text!r}")


@contextlib.contextmanager
def num_threads(n):
    """Run the body with minidl.set_num_threads(n) and restore the previous count after, so
    that a command called in-process (tests, notebooks) leaves no trace."""
    import minidl

    previous = minidl.get_num_threads()
    minidl.set_num_threads(n)
    try:
        yield
    finally:
        minidl.set_num_threads(previous)
