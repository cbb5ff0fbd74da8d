"""``minidl bench``: time the kernels (minidl.bench) and write the results as JSON, a
markdown table and a PNG chart (when matplotlib is installed), under runs/bench/ by default:
the recorded results in benchmarks/results/ change only when asked for with --out.

    minidl bench --quick                                   # writes runs/bench/
    minidl bench --threads 1 2 --reps 7 --out benchmarks/results   # re-record RESULTS.md's run
    python benchmarks/bench_kernels.py --quick             # the same command
"""
import json
import os

import numpy as np

from minidl.bench import run_benchmarks, select_rows

from .args import EXIT_OK, UsageError, positive_int

DEFAULT_OUT = os.path.join("runs", "bench")

HELP = "time the convolution and pooling kernels (against PyTorch when installed)"

EXAMPLES = """examples:
  minidl bench --quick                   five representative rows (about 40 s on 2 cores)
  minidl bench --rows depthwise grouped  only the rows whose names contain these words
  minidl bench --threads 1 2 --reps 7 --out benchmarks/results
                                         the full table, recorded as in benchmarks/RESULTS.md

Results go to runs/bench/ unless --out says otherwise.

Set neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE (they slow NumPy's BLAS): run it as
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE minidl bench ...
"""


def add_arguments(parser):
    parser.description = (
        "Time minidl's kernels against its NumPy path, the naive layers and PyTorch (float32, "
        "NCHW):\nmedian forward and backward times, GFLOP/s, the ratio to PyTorch and the "
        "fraction of the\nfloat32 GEMM rate measured in the same run.")
    parser.epilog = EXAMPLES
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2],
                        help="thread counts to time, each in turn (default: 1 2)")
    parser.add_argument("--reps", type=positive_int, default=7,
                        help="timed rounds per variant (median; default 7)")
    parser.add_argument("--quick", action="store_true", help="a few representative rows only")
    parser.add_argument("--rows", nargs="*", help="substrings of row names to run")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory subprocesses")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for JSON, markdown, PNG (default: {DEFAULT_OUT}; the "
                        "recorded results: --out benchmarks/results)")


def run(args):
    """``minidl bench``: returns the exit status."""
    if args.rows is not None and not args.rows:
        raise UsageError("--rows needs at least one row name")
    try:
        rows = select_rows(quick=args.quick, names=args.rows)
    except ValueError as e:
        raise UsageError(str(e).replace("select_rows: ", "--rows: ", 1)) from None
    results = run_benchmarks(
        rows, args.threads, args.reps, memory=not args.no_memory,
        on_gemm_rate=lambda t, gflops: print(f"float32 GEMM rate, {t} thread(s): "
                                             f"{gflops:.1f} GFLOP/s", flush=True),
        on_row=lambda entry: print(_row_line(entry), flush=True))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = markdown(results)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(md)
    has_png = chart(results, os.path.join(args.out, "bench.png"))
    print()
    print(md)
    print(f"wrote {args.out}/bench.json, bench.md" + (", bench.png" if has_png else
                                                     " (pip install matplotlib for the chart)"))
    return EXIT_OK


def _row_line(e):
    ms = "  ".join(f"{k} {m['total']:.2f}" for k, m in e["ms"].items())
    ratio = f"  ratio {e['ratio_to_torch']:.2f}" if "ratio_to_torch" in e else ""
    algo = f" [{e['algorithm']}]" if "algorithm" in e else ""
    return f"[{e['threads']}t] {e['row']}{algo}: {ms} ms{ratio}"


def markdown(results):
    """The results as a markdown table (one line per row and thread count)."""
    cols = ["minidl", "numpy", "naive", "torch"]
    # results recorded before convolution plans carry no algorithm: their table has no column
    algo = any("algorithm" in e for e in results["rows"])
    lines = ["| layer | thr | " + ("algorithm | " if algo else "") +
             " | ".join(f"{c} fwd/bwd ms" for c in cols) +
             " | minidl GFLOP/s | torch GFLOP/s | minidl/torch | of GEMM rate | peak MB (minidl/torch) |",
             "|---|---|" + "---|" * (len(cols) + 5 + algo)]
    for e in results["rows"]:
        cells = []
        for c in cols:
            m = e["ms"].get(c)
            if m is None:
                cells.append("-")
            elif e["kind"] == "step":  # one number: the whole step
                cells.append(f"{m['total']:.0f} (step)")
            else:
                cells.append(f"{m['fwd']:.1f} / {m['bwd']:.1f}")
        gf = e.get("gflops", {})
        peak = e.get("peak_mb")
        peak_s = (f"{peak.get('minidl') or float('nan'):.0f} / {peak.get('torch') or float('nan'):.0f}"
                  if peak else "-")
        lines.append(
            f"| {e['row']} | {e['threads']} | " + (f"{e.get('algorithm', '-')} | " if algo else "")
            + " | ".join(cells) +
            (f" | {gf['minidl']:.1f}" if gf else " | -") +
            (f" | {gf['torch']:.1f}" if "torch" in gf else " | -") +
            (f" | **{e['ratio_to_torch']:.2f}**" if "ratio_to_torch" in e else " | -") +
            (f" | {e['gemm_fraction']:.0%}" if "gemm_fraction" in e else " | -") +
            f" | {peak_s} |")
    g = results["gemm_gflops"]
    lines.append("")
    lines.append("float32 GEMM rate (NumPy BLAS, 2048^3): " +
                 ", ".join(f"{t} thread(s) {v:.1f} GFLOP/s" for t, v in g.items()))
    s = results.get("summary", {})
    for t in results["threads"]:
        st = s.get(str(t), {})
        if st.get("dense_geomean"):
            lines.append(f"dense rows, {t} thread(s): geometric mean minidl/torch "
                         f"{st['dense_geomean']:.2f}, worst {st['dense_max']:.2f}")
    if s.get("dense_speedup_2t"):
        lines.append(f"dense rows: 2 threads vs 1, geometric mean speedup {s['dense_speedup_2t']:.2f}x")
    return "\n".join(lines) + "\n"


def chart(results, path):
    """Bar chart of minidl time / torch time per row and thread count (PNG)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    names = list(dict.fromkeys(e["row"] for e in results["rows"] if "ratio_to_torch" in e))
    # The object-oriented API, not pyplot: no global backend is switched.
    fig = Figure(figsize=(10, 0.45 * len(names) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    height = 0.8 / max(1, len(results["threads"]))
    for i, t in enumerate(results["threads"]):
        r = {e["row"]: e["ratio_to_torch"] for e in results["rows"]
             if e["threads"] == t and "ratio_to_torch" in e}
        ys = np.arange(len(names)) + i * height
        ax.barh(ys, [r.get(n, 0) for n in names], height, label=f"{t} thread(s)")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("minidl time / PyTorch time (forward + backward; < 1 is faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True
