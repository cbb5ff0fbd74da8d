"""`minidl gradcheck` as a user runs it (subprocess): built-in layers, and a student's file
checked against numeric gradients and against minidl's layers (the autograder)."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from minidl import cli

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")

# A student's NumPy convolution and linear layer, written independently of minidl (loops
# over output positions), with switches for deliberate mistakes.
STUDENT = textwrap.dedent('''
    import numpy as np

    BUG = None


    def conv_forward(x, w, b, conv_param):
        s, p = conv_param["stride"], conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
        out = np.zeros((N, F, Ho, Wo))
        for i in range(Ho):
            for j in range(Wo):
                win = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
                out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
                if BUG != "no bias":
                    out[:, :, i, j] += b
        return out, (x, w, b, conv_param)


    def conv_backward(dout, cache):
        x, w, b, conv_param = cache
        s, p = conv_param["stride"], conv_param["pad"]
        F, _, HH, WW = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        db = dout.sum(axis=(0, 2, 3))
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                win = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
                dw += np.tensordot(dout[:, :, i, j], win, axes=([0], [0]))
                dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += np.tensordot(
                    dout[:, :, i, j], w, axes=([1], [0]))
        dx = dxp[:, :, p:dxp.shape[2] - p, p:dxp.shape[3] - p]
        if BUG == "dw element":
            dw[1, 0, 0, 2] *= 2
        if BUG == "crash":
            dx = dx / undefined_name
        return dx, dw, db


    class Conv:
        forward = staticmethod(conv_forward)
        backward = staticmethod(conv_backward)


    def linear_forward(x, w, b):
        return x.reshape(x.shape[0], -1) @ w + b, (x, w)


    def linear_backward(dout, cache):
        x, w = cache
        return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(0)
''')


@pytest.fixture
def student(tmp_path):
    def write(bug=None):
        path = tmp_path / "student.py"
        path.write_text(STUDENT.replace("BUG = None", f"BUG = {bug!r}"))
        return path
    return write


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "minidl", "gradcheck", *args],
                          capture_output=True, text=True, timeout=300, env=ENV, cwd=cwd)


def _rows(out):
    """(case, output, against, status, rel error, worst index) for every table row."""
    rows, case = [], None
    for line in out.splitlines():
        m = re.match(r"case (\d+)/\d+:", line)
        if m:
            case = int(m.group(1))
            continue
        m = re.match(r"  (out|d\w+)\s+(numeric|minidl \w+)\s+(pass\*?|FAIL[^\d]*\(\d+/\d+ wrong\)|"
                     r"FAIL)\s+(\S+)\s+(\([\d, ]*\))?", line)
        if m:
            rows.append((case, m.group(1), m.group(2), m.group(3).split()[0], m.group(4),
                         m.group(5)))
    return rows


def test_builtin_layer_passes_on_several_shapes():
    r = _run("Conv")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = _rows(r.stdout)
    cases = {row[0] for row in rows}
    assert len(cases) >= 3  # several input shapes
    assert {row[1] for row in rows} == {"dx", "dw", "db"}
    assert all(row[2] == "numeric" and row[3] == "pass" for row in rows)
    assert all(float(row[4]) < 1e-7 for row in rows)
    assert "Conv: all 12 checks passed" in r.stdout


def test_every_builtin_layer_passes(capsys):
    assert cli.main(["gradcheck", "all"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    for name in ("Linear", "FastConv", "MaxPool", "BatchNorm", "SpatialGroupNorm",
                 "Conv_BatchNorm_ReLU_Pool"):
        assert re.search(rf"^{name}: all \d+ checks passed", out, re.M)


def test_list_names_the_layers():
    r = _run("--list")
    assert r.returncode == 0
    assert re.search(r"^Conv\s+4 cases", r.stdout, re.M)
    assert "Dropout" in r.stdout and "built-in only" in r.stdout


def test_a_correct_student_pair_passes_against_numeric_and_reference(student):
    path = student()
    r = _run(f"{path}:conv_forward,conv_backward", "--like", "Conv")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = _rows(r.stdout)
    assert len({row[0] for row in rows}) == 3
    checked = {(row[1], row[2]) for row in rows}
    assert checked == {("out", "minidl Conv"), ("dx", "numeric"), ("dx", "minidl Conv"),
                       ("dw", "numeric"), ("dw", "minidl Conv"), ("db", "numeric"),
                       ("db", "minidl Conv")}
    assert all(row[3] == "pass" for row in rows)
    assert "student.py: all 21 checks passed" in r.stdout


def test_a_class_with_forward_and_backward_needs_no_like(student):
    r = _run(f"{student()}:Conv")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "like Conv" in r.stdout


def test_a_student_linear_layer(student):
    r = _run(f"{student()}:linear_forward,linear_backward", "--like", "linear")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "student.py: all 21 checks passed" in r.stdout


def test_a_wrong_gradient_element_fails_naming_the_output_and_the_index(student):
    r = _run(f"{student('dw element')}:conv_forward,conv_backward", "--like", "Conv")
    assert r.returncode == 1
    failed = [row for row in _rows(r.stdout) if row[3] == "FAIL"]
    # dw is wrong in one element, in every case, against both the numeric gradient and
    # minidl's Conv; everything else passes.
    assert {(row[1], row[2]) for row in failed} == {("dw", "numeric"), ("dw", "minidl Conv")}
    assert {row[0] for row in failed} == {1, 2, 3}
    assert {row[5] for row in failed} == {"(1, 0, 0, 2)"}
    assert "FAIL (1/108 wrong)" in r.stdout
    assert re.search(r"student.py: FAILED 6 of 21 checks: dw vs numeric in case\(s\) 1, 2, 3 "
                     r"\(rel error [\d.e+-]+ at index \(1, 0, 0, 2\)\)", r.stdout)
    assert "Traceback" not in r.stdout + r.stderr


def test_a_wrong_forward_fails_on_the_output(student):
    r = _run(f"{student('no bias')}:conv_forward,conv_backward", "--like", "Conv")
    assert r.returncode == 1
    failed = {(row[1], row[2]) for row in _rows(r.stdout) if row[3] == "FAIL"}
    # The output misses the bias; db (from the student's backward) no longer matches the
    # numeric gradient of the student's own forward, which ignores b.
    assert ("out", "minidl Conv") in failed and ("db", "numeric") in failed
    assert ("dx", "numeric") not in failed and ("dw", "minidl Conv") not in failed


def test_student_code_that_raises_is_reported_with_its_line(student):
    path = student("crash")
    r = _run(f"{path}:conv_forward,conv_backward", "--like", "Conv")
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    line = next(i for i, text in enumerate(STUDENT.splitlines(), 1) if "undefined_name" in text)
    assert (f"backward failed: NameError: name 'undefined_name' is not defined "
            f"(student.py line {line}: dx = dx / undefined_name)") in r.stdout


def test_gradcheck_help_has_examples():
    r = _run("--help")
    assert r.returncode == 0
    assert "examples:" in r.stdout and "--like" in r.stdout
    assert "minidl gradcheck my_layers.py:conv_forward_naive,conv_backward_naive --like Conv" \
        in r.stdout


@pytest.mark.parametrize("args, fragment", [
    ([], "name a layer"),
    (["Convv"], "unknown layer 'Convv'; did you mean Conv"),
    (["{path}:conv_forward,conv_backward"], "--like LAYER is required"),
    (["{path}:conv_forward,conv_backward", "--like", "Dropout"], "cannot be compared"),
    (["{path}:conv_forward,nope", "--like", "Conv"], "student.py has no 'nope'"),
    (["{path}:conv_forward", "--like", "Conv"], "has no forward and backward"),
    (["{path}"], "name the functions to check"),
    (["/nonexistent/student.py:f,b", "--like", "Conv"], "/nonexistent/student.py: no such file"),
    (["Conv", "--like", "Conv"], "--like is for a student's pair"),
    (["Conv", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["Conv", "--threads", "0"], "expected a positive integer, got '0'"),
])
def test_bad_arguments_give_one_line_and_exit_status_2(student, args, fragment):
    path = student()
    r = _run(*[a.replace("{path}", str(path)) for a in args])
    assert r.returncode == 2, r.stderr  # as --help says: 2 for bad arguments
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_a_student_file_that_does_not_import_is_one_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\ndef f(x:\n    pass\n")
    r = _run(f"{path}:f,g", "--like", "ReLU")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minidl gradcheck: error: cannot import "
                                                   f"{path}: SyntaxError")
    assert "broken.py line 3" in lines[0]


def test_the_autograder_library_separates_bad_requests_from_bad_student_code(tmp_path, student):
    from minidl import autograder

    assert autograder.lookup_layer("fastconv") == "FastConv"
    broken = tmp_path / "broken.py"
    broken.write_text("def f(x:\n")
    with pytest.raises(autograder.StudentCodeError, match="SyntaxError"):
        autograder.load_student_pair(f"{broken}:f,g")
    with pytest.raises(ValueError) as e:          # a request that names nothing: no student bug
        autograder.load_student_pair(f"{student()}:conv_forward,nope")
    assert not isinstance(e.value, autograder.StudentCodeError)
    forward, backward, path, _ = autograder.load_student_pair(
        f"{student()}:linear_forward,linear_backward")
    report = autograder.Report(total=3)
    tables = [report.add(d, rows) for d, rows in autograder.check_student(
        forward, backward, "Linear", path=path)]
    assert report.passed and report.n_cases == 3 and tables[0].startswith("case 1/3: x (2, 4)")
    assert report.verdict("student.py") == "student.py: all 21 checks passed"
