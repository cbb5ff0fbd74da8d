"""The coursework notebooks in assignments/: committed clean, with exercises, and each one runs
top to bottom (executed with nbclient in quick mode, MINIDL_QUICK=1)."""
import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "assignments"
# The course's order (issue 5): one notebook per topic.
COURSE = ["01_fully_connected_and_gradcheck", "02_update_rules", "03_dropout",
          "04_convolutional_networks", "05_batch_normalization", "06_cnn_architectures",
          "07_visualizing_cnns"]
NOTEBOOKS = [ASSIGNMENTS / f"{name}.ipynb" for name in COURSE]
CELL_TIMEOUT = 300  # seconds per cell: generous, for a loaded CI machine; quick cells take ~1 s


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _code_cells(nb):
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]


def test_assignments_hold_exactly_the_course_notebooks():
    assert sorted(p.stem for p in ASSIGNMENTS.glob("*.ipynb")) == COURSE


@pytest.mark.parametrize("path", NOTEBOOKS, ids=COURSE)
def test_notebook_is_committed_without_outputs(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=COURSE)
def test_notebook_has_exercises_checked_with_gradcheck(path):
    nb = _load(path)
    exercises = [c for c in nb["cells"] if "exercise" in c.get("metadata", {}).get("tags", [])]
    assert exercises, f"{path.name}: no cell tagged 'exercise'"
    for cell in exercises:
        src = _source(cell)
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src
    assert any("from minidl.gradcheck import" in src for src in _code_cells(nb))
    for src in _code_cells(nb):
        ast.parse(src)  # plain Python: no magics, so the cells also run as a script


def _load_make_student_version():
    spec = importlib.util.spec_from_file_location(
        "make_student_version", ASSIGNMENTS / "make_student_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_student_version_blanks_every_solution_and_keeps_the_rest(tmp_path):
    tool = _load_make_student_version()
    assert tool.main(["--out", str(tmp_path)] + [str(p) for p in NOTEBOOKS]) == 0
    for path in NOTEBOOKS:
        original, student = _load(path), _load(tmp_path / path.name)
        assert len(student["cells"]) == len(original["cells"])
        n_blocks = sum(src.count("### BEGIN SOLUTION") for src in _code_cells(original))
        text = "".join(_code_cells(student))
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
        assert text.count("raise NotImplementedError()") >= n_blocks > 0
        for before, after in zip(original["cells"], student["cells"]):
            if before["cell_type"] == "code" and "### BEGIN SOLUTION" in _source(before):
                ast.parse(_source(after))  # the stub is valid, indented code
            else:  # markdown (which may mention the markers) and other code: unchanged
                assert _source(after) == _source(before)


def test_student_notebooks_start_beside_the_helper_they_import(tmp_path):
    # The blanked notebooks import course_utils: it must be copied beside them, and their
    # first cell (imports, data, settings) must run from the output folder.
    tool = _load_make_student_version()
    assert tool.main(["--out", str(tmp_path)] + [str(p) for p in NOTEBOOKS]) == 0
    assert (tmp_path / "course_utils.py").read_bytes() == \
        (ASSIGNMENTS / "course_utils.py").read_bytes()
    assert not (tmp_path / "make_student_version.py").exists()
    first_cells = [_code_cells(_load(tmp_path / p.name))[0] for p in NOTEBOOKS]
    assert all("course_utils" in cell for cell in first_cells)
    script = "import json, sys\nfor src in json.load(sys.stdin):\n    exec(src, {})\nprint('ok')"
    env = dict(os.environ, MPLBACKEND="Agg", MINIDL_QUICK="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "-c", script], input=json.dumps(first_cells),
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr


def test_student_version_rejects_unbalanced_markers():
    tool = _load_make_student_version()
    with pytest.raises(ValueError, match="without"):
        tool.blank_solutions("x = 1\n    ### BEGIN SOLUTION\n    y = 2\n")
    with pytest.raises(ValueError, match="without"):
        tool.blank_solutions("### END SOLUTION\n")
    text, count = tool.blank_solutions("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                       "    ### END SOLUTION\n")
    assert count == 1 and text == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


@pytest.fixture(scope="module")
def executor():
    """nbclient, nbformat and a python3 kernel, or a skip saying what to install."""
    missing = [m for m in ("nbclient", "nbformat", "ipykernel", "matplotlib")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"executing the notebooks needs {', '.join(missing)}: "
                    f"pip install nbclient nbformat ipykernel matplotlib")
    import nbformat
    from nbclient import NotebookClient
    return nbformat, NotebookClient


@pytest.mark.parametrize("path", NOTEBOOKS, ids=COURSE)
def test_notebook_runs_top_to_bottom_in_quick_mode(path, executor, monkeypatch):
    nbformat, NotebookClient = executor
    # The kernel inherits this environment. Quick mode shrinks data and epochs. One thread:
    # the test runs beside other work, and OpenMP threads competing for busy cores make the
    # many tiny layers of quick mode far slower (set MINIDL_NUM_THREADS to override).
    monkeypatch.setenv("MINIDL_QUICK", "1")
    monkeypatch.setenv("MINIDL_NUM_THREADS", os.environ.get("MINIDL_NUM_THREADS", "1"))
    # The kernel must import this checkout's minidl even when it is not installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(ASSIGNMENTS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    sys.stdout.write(f"\n{path.name}: {time.perf_counter() - start:.1f} s in quick mode\n")
