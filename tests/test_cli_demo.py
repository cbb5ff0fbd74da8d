"""The minidl command: `demo` as a user runs it (subprocess), help, one-line errors, and the
command table. (`train`, `gradcheck`, `summary`: test_cli_train.py, test_cli_gradcheck.py,
test_summary.py; the package layout: test_cli_layout.py.)"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from minidl import cli

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")


def _run(*args, exe=(sys.executable, "-m", "minidl")):
    return subprocess.run(list(exe) + list(args), capture_output=True, text=True, timeout=300,
                          env=ENV)


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_python_m_minidl_demo_trains_and_reports_test_accuracy(tmp_path):
    r = _run("demo", "--epochs", "1", "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "UCI handwritten digits" in r.stdout and "CC BY 4.0" in r.stdout
    assert "(Epoch 1 / 1) train acc:" in r.stdout
    m = re.search(r"test accuracy: ([\d.]+)% \((\d+)/360\)", r.stdout)
    assert m, r.stdout
    # One epoch of a small ConvNet already beats chance (10%) by far.
    assert float(m.group(1)) > 50.0
    assert re.search(r"time: [\d.]+ s", r.stdout)
    assert r.stderr == ""
    # It also writes a checkpoint and the loss/accuracy curves, and says where.
    ckpt = tmp_path / "demo" / "checkpoint.npz"
    assert f"checkpoint: {ckpt}" in r.stdout
    from minidl.solver import read_checkpoint

    saved = read_checkpoint(ckpt)
    assert saved["epoch"] == 1 and len(saved["loss_history"]) == 1257 // 50
    png = tmp_path / "demo" / "curves.png"
    if _has_matplotlib():
        assert f"curves: {png}" in r.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "curves: not written: matplotlib is not installed (pip install matplotlib)" \
            in r.stdout


def test_demo_without_matplotlib_says_how_to_get_the_curves(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert cli.main(["demo", "--epochs", "1", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "curves: not written: matplotlib is not installed (pip install matplotlib)" in out
    assert not (tmp_path / "curves.png").exists()
    assert (tmp_path / "checkpoint.npz").exists()


def test_demo_help_lists_its_options():
    r = _run("demo", "--help")
    assert r.returncode == 0
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--threads", "--out"):
        assert option in r.stdout
    assert "examples:" in r.stdout


def test_console_script_is_installed():
    exe = shutil.which("minidl")
    if exe is None:
        pytest.skip("the minidl console script is not on PATH")
    r = _run("--help", exe=(exe,))
    assert r.returncode == 0
    for command in ("demo", "train", "gradcheck", "summary"):
        assert command in r.stdout


@pytest.mark.parametrize("args, fragment", [
    (["demo", "--epochs", "0"], "expected a positive integer, got '0'"),
    (["demo", "--lr", "fast"], "expected a positive number, got 'fast'"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
])
def test_bad_arguments_give_one_line_and_a_nonzero_exit(args, fragment):
    r = _run(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_demo_in_process_quiet_prints_only_the_result(capsys, tmp_path):
    import minidl

    threads = minidl.get_num_threads()
    assert cli.main(["demo", "--epochs", "1", "--quiet", "--out", str(tmp_path)]) == 0
    assert minidl.get_num_threads() == threads  # the demo's --threads does not leak
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4
    assert out[0].startswith("test accuracy: ") and out[3].startswith("time: ")
    assert out[1] == f"checkpoint: {tmp_path / 'checkpoint.npz'}"
    assert out[2].startswith("curves: ")


def test_summary_gets_its_arguments_through_the_table(monkeypatch):
    seen = []
    monkeypatch.setitem(cli.COMMANDS, "summary",
                        cli.COMMANDS["summary"]._replace(run=lambda args: seen.append(args) or 0))
    assert cli.main(["summary", "resnet50", "--input", "3,224,224", "-o", "width=2"]) == 0
    assert cli.main(["summary", "--help"]) == 0  # argparse's help: nothing runs
    assert len(seen) == 1
    assert (seen[0].name, seen[0].input, seen[0].option) == ("resnet50", (3, 224, 224),
                                                             [("width", "2")])


def test_a_missing_optional_module_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "minidl.summary", None)  # makes the import fail

    def needs_summary(args):
        import minidl.summary  # noqa: F401
        return 0

    monkeypatch.setitem(cli.COMMANDS, "summary",
                        cli.COMMANDS["summary"]._replace(run=needs_summary))
    assert cli.main(["summary", "alexnet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["minidl summary: error: minidl.summary is not available in this installation"]


def test_errors_raised_by_a_command_are_one_line(monkeypatch, capsys):
    def boom(args):
        raise ValueError("Linear: x (2, 3) flattens to 3 features\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "demo", cli.COMMANDS["demo"]._replace(run=boom))
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err == "minidl demo: error: Linear: x (2, 3) flattens to 3 features\n"


def test_a_new_subcommand_is_one_table_entry(monkeypatch, capsys):
    def add(parser):
        parser.add_argument("--n", type=int, default=1)

    def run(args):
        print("hello" * args.n)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "hello", cli.Command("say hello", add, run))
    assert cli.main(["hello", "--n", "2"]) == 0
    assert capsys.readouterr().out == "hellohello\n"
