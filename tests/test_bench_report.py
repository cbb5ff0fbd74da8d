"""minidl.bench's data and minidl bench's report, without timing anything: the recorded run in
benchmarks/results/ must come out of today's code unchanged."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from minidl import bench, cli
from minidl.cli import bench as bench_cli

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_the_recorded_markdown_is_what_the_recorded_results_give():
    results = json.loads((RESULTS / "bench.json").read_text())
    assert bench.summarize(results) == results["summary"]
    assert bench_cli.markdown(results) == (RESULTS / "bench.md").read_text()


def test_select_rows_quick_and_by_name():
    quick = bench.select_rows(quick=True)
    assert quick and all(r.get("quick") for r in quick) and len(quick) < len(bench.ROWS)
    assert bench.select_rows() == bench.ROWS
    grouped = bench.select_rows(names=["GROUPED", "max pool 2x2"])
    assert [r["name"] for r in grouped] == [
        "grouped 3x3 (N=8, 128->128, G=32, 56x56)", "max pool 2x2/s2 (N=64, 32x32x32)"]
    with pytest.raises(ValueError, match=r"select_rows: no quick row matches 'nothing like "
                                         r"this'; the rows are: ResNet 3x3 .*; depthwise 3x3"):
        bench.select_rows(quick=True, names=["nothing like this", "depthwise"])


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def test_an_unknown_row_is_a_usage_error_naming_the_rows_and_writes_nothing(tmp_path):
    recorded = _files(RESULTS)
    r = subprocess.run([sys.executable, "-m", "minidl", "bench", "--rows", "nosuchrow"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "minidl bench: error: --rows: no row matches 'nosuchrow'; the rows are: "), r.stderr
    assert "AlexNet conv1" in lines[0] and "ResNet-20 training step" in lines[0]
    assert list(tmp_path.iterdir()) == [] and _files(RESULTS) == recorded


def test_by_default_bench_writes_under_runs_bench_and_leaves_the_recorded_results(
        tmp_path, monkeypatch):
    recorded = _files(RESULTS)
    results = json.loads((RESULTS / "bench.json").read_text())
    monkeypatch.setattr(bench_cli, "run_benchmarks", lambda *a, **k: results)
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["bench", "--quick", "--no-memory"])
    assert args.out == os.path.join("runs", "bench")
    assert bench_cli.run(args) == 0
    written = tmp_path / "runs" / "bench"
    assert (written / "bench.md").read_text() == (RESULTS / "bench.md").read_text()
    assert json.loads((written / "bench.json").read_text()) == results
    assert _files(RESULTS) == recorded


def test_a_row_line_names_threads_variants_and_the_ratio():
    entry = {"threads": 2, "row": "r", "ms": {"minidl": {"total": 1.5}, "torch": {"total": 3.0}},
             "ratio_to_torch": 0.5}
    assert bench_cli._row_line(entry) == "[2t] r: minidl 1.50  torch 3.00 ms  ratio 0.50"
