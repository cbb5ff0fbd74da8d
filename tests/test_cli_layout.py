"""The command line is its own package, minidl/cli: one module per subcommand, one table, and
no argument parsing in the library."""
import argparse
import ast
import importlib
import pathlib
import sys

import pytest

from minidl import cli
from minidl.cli import args as cli_args

PACKAGE = pathlib.Path(cli.__file__).resolve().parents[1]   # .../minidl
ROOT = PACKAGE.parent
HELPERS = {"__init__", "args", "progress"}   # minidl/cli modules that are not subcommands


def _imports(path):
    """Top-level module names a file imports (import x.y -> x; from x.y import z -> x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_minidl_cli_imports_argparse():
    files = sorted(PACKAGE.rglob("*.py"))
    importers = {p.relative_to(PACKAGE).as_posix() for p in files if "argparse" in _imports(p)}
    assert "cli/args.py" in importers                  # the scan does see an import
    outside = sorted(p for p in importers if not p.startswith("cli/"))
    assert outside == [], f"library modules that import argparse: {outside}"


def test_each_subcommand_is_one_module_and_one_table_entry():
    modules = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - HELPERS
    assert modules == set(cli.COMMANDS) == {"demo", "train", "gradcheck", "summary", "bench",
                                            "cs231n", "viz"}
    for name, command in cli.COMMANDS.items():
        module = importlib.import_module(f"minidl.cli.{name}")
        assert command == cli.Command(module.HELP, module.add_arguments, module.run)
        assert isinstance(module.HELP, str) and module.HELP


def test_the_console_script_and_python_m_minidl_call_cli_main():
    if sys.version_info >= (3, 11):
        import tomllib

        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert scripts["minidl"] == "minidl.cli:main"
    tree = ast.parse((PACKAGE / "__main__.py").read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "cli" and n.level == 1
               and [a.name for a in n.names] == ["main"] for n in ast.walk(tree))


@pytest.mark.parametrize("argv, expected", [
    (["--n", "-3,32,32"], ["--n=-3,32,32"]),          # a value that starts with '-'
    (["--n", "-1e-3", "--flag"], ["--n=-1e-3", "--flag"]),
    (["--many", "-1", "-2"], ["--many", "-1", "-2"]),  # only options that take one value
    (["--flag", "-3"], ["--flag", "-3"]),
    (["--", "--n", "-3"], ["--", "--n", "-3"]),        # nothing after '--'
    (["--n", "-x"], ["--n", "-x"]),                    # an option-like word stays an option
])
def test_one_value_options_take_values_that_start_with_a_dash(argv, expected):
    parser = cli_args.ArgumentParser(prog="t")
    parser.add_argument("--n")
    parser.add_argument("--many", nargs="+")
    parser.add_argument("--flag", action="store_true")
    assert parser._attach_dash_values(argv) == expected


def test_strict_booleans():
    assert [cli_args.boolean(t) for t in ("true", "True", "1", "yes", "YES")] == [True] * 5
    assert [cli_args.boolean(t) for t in ("false", "FALSE", "0", "no", "No")] == [False] * 5
    for text in ("maybe", "", "2", "on", "y"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a boolean"):
            cli_args.boolean(text)
