"""minidl.bench's data and minidl bench's report, without timing anything: the recorded run in
benchmarks/results/ must come out of today's code unchanged."""
import json
import pathlib

from minidl import bench
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
    assert bench.select_rows(quick=True, names=["nothing like this"]) == []


def test_a_row_line_names_threads_variants_and_the_ratio():
    entry = {"threads": 2, "row": "r", "ms": {"minidl": {"total": 1.5}, "torch": {"total": 3.0}},
             "ratio_to_torch": 0.5}
    assert bench_cli._row_line(entry) == "[2t] r: minidl 1.50  torch 3.00 ms  ratio 0.50"
