"""Benchmarks of minidl's kernels against its NumPy path, the naive layers and PyTorch, as a
library that returns data (``minidl bench`` prints it, writes the markdown table and the chart:
minidl.cli.bench).

Every row is one layer (or one whole training step) at float32, NCHW. For each thread count,
the variants of a row run interleaved (warm-up, then ``reps`` rounds of minidl / NumPy /
naive / torch), and run_benchmarks() records the median forward and backward times with
GFLOP/s (2 x multiply-adds / time), the ratio to PyTorch (minidl time / torch time: below 1
is faster) and the fraction of the float32 GEMM rate measured in the same run.

    results = run_benchmarks(select_rows(quick=True), threads=[1], reps=3)
    results["rows"][0]["ms"]["minidl"]["total"], results["summary"]

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow NumPy's BLAS where they are set: benchmark with both
unset in that command only (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...); the results
record them and the BLAS kernel threadpoolctl reports.
"""
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import minidl
from minidl import _kernels
from minidl.layers import Conv, FastConv, FastMaxPool, MaxPool, SpatialBatchNorm


def _conv(name, x, w, stride, pad, groups=1, dense=False, small=False):
    return dict(name=name, kind="conv", x=x, w=w, stride=stride, pad=pad, groups=groups,
                dense=dense, quick=small)


ROWS = [
    _conv("AlexNet conv1 (N=8, 3->64, 227, K11 s4 p2)", (8, 3, 227, 227), (64, 3, 11, 11), 4, 2, dense=True),
    _conv("ResNet 3x3 (N=8, 64->64, 56x56)", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1, dense=True, small=True),
    _conv("ResNet 3x3 (N=8, 256->256, 14x14)", (8, 256, 14, 14), (256, 256, 3, 3), 1, 1, dense=True),
    _conv("strided 3x3 s2 (N=8, 256->512, 14x14)", (8, 256, 14, 14), (512, 256, 3, 3), 2, 1, dense=True),
    _conv("1x1 (N=8, 256->64, 56x56)", (8, 256, 56, 56), (64, 256, 1, 1), 1, 0, dense=True),
    _conv("coursework 3x3 (N=64, 32->32, 32x32)", (64, 32, 32, 32), (32, 32, 3, 3), 1, 1, dense=True),
    _conv("depthwise 3x3 (N=8, C=128, 56x56)", (8, 128, 56, 56), (128, 1, 3, 3), 1, 1, groups=128, small=True),
    _conv("grouped 3x3 (N=8, 128->128, G=32, 56x56)", (8, 128, 56, 56), (128, 4, 3, 3), 1, 1, groups=32, small=True),
    dict(name="max pool 3x3/s2/p1 (N=8, 64x112x112)", kind="maxpool", x=(8, 64, 112, 112), k=3, s=2, p=1, quick=True),
    dict(name="max pool 2x2/s2 (N=64, 32x32x32)", kind="maxpool", x=(64, 32, 32, 32), k=2, s=2, p=0),
    dict(name="spatial batch norm (N=8, 64x56x56)", kind="bn", x=(8, 64, 56, 56), quick=True),
    _conv("tiny conv, naive shown (N=2, 3->8, 16x16)", (2, 3, 16, 16), (8, 3, 3, 3), 1, 1),
    dict(name="ResNet-20 training step (N=64, CIFAR 32x32)", kind="step", x=(64, 3, 32, 32)),
]
NAIVE_LIMIT = 40_000  # Python-loop iterations of a naive forward+backward we are willing to run


# ---------------------------------------------------------------------------- helpers

SETTLE_S = 0.1  # pause before each timed call (see _median_times)


def _busy_wait(seconds):
    """Wait by spinning, not sleeping: a sleeping core may be clocked down or descheduled by
    the hypervisor, which would slow the first milliseconds of the timed call."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _median_times(variants, reps, warmup=1, settle=None):
    """Run each variant's (fwd, bwd) interleaved; return {name: (fwd_ms, bwd_ms)} medians.

    Before each timed call the benchmark waits ``settle`` seconds (SETTLE_S): thread pools
    spin-wait for a while after their work (OpenBLAS's workers up to ~0.1 s), and on a 2-core
    machine a variant timed right after another would otherwise share the cores with the
    previous variant's spinning threads, which penalises whichever runs second. The order of
    the variants rotates from round to round, so that each one follows each other equally
    often and none pays more than its share for what the previous one left behind.
    """
    settle = SETTLE_S if settle is None else settle
    times = {k: ([], []) for k in variants}
    names = list(variants)
    for r in range(warmup + reps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            setup, fwd, bwd = variants[name]
            state = setup()
            if settle:
                _busy_wait(settle)
            t0 = time.perf_counter()
            mid = fwd(state)
            t1 = time.perf_counter()
            bwd(state, mid)
            t2 = time.perf_counter()
            if r >= warmup:
                times[name][0].append((t1 - t0) * 1e3)
                times[name][1].append((t2 - t1) * 1e3)
    return {k: (statistics.median(f), statistics.median(b)) for k, (f, b) in times.items()}


def gemm_rate(threads, n=2048, reps=5):
    """Measured float32 GEMM rate (GFLOP/s) of NumPy's BLAS at this thread count."""
    minidl.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def _with_numpy_path(fn):
    """Run fn with minidl's compiled kernels switched off (the NumPy im2col path)."""
    def wrapped(*a):
        was_compiled = _kernels.use_compiled()
        _kernels.use_compiled(False)
        try:
            return fn(*a)
        finally:
            _kernels.use_compiled(was_compiled)
    return wrapped


# ---------------------------------------------------------------------------- rows

def _conv_arrays(row):
    """A conv row's float32 x, w, b, conv_param and the plan FastConv runs for them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(row["x"], dtype=np.float32)
    w = (rng.standard_normal(row["w"], dtype=np.float32) * 0.1).astype(np.float32)
    b = np.zeros(row["w"][0], np.float32)
    param = {"stride": row["stride"], "pad": row["pad"], "groups": row["groups"], "floor_mode": True}
    return x, w, b, param, _kernels.plan_conv("FastConv", x, w, b, param)


def _conv_variants(row, torch, naive):
    x, w, b, param, plan = _conv_arrays(row)
    dout = np.random.default_rng(1).standard_normal(plan.out_shape, dtype=np.float32)
    n, f, ho, wo = plan.out_shape
    macs = plan.macs

    def layer_variant(layer):
        return (lambda: None, lambda s: layer.forward(x, w, b, param)[1],
                lambda s, cache: layer.backward(dout, cache))

    v = {"minidl": layer_variant(FastConv)}
    setup, fwd, bwd = layer_variant(FastConv)
    v["numpy"] = (setup, _with_numpy_path(fwd), _with_numpy_path(bwd))
    if naive:
        v["naive"] = layer_variant(Conv)
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dt = (torch.from_numpy(a) for a in (x, w, b, dout))

        def t_setup():
            return [t.detach().requires_grad_(True) for t in (xt, wt, bt)]

        v["torch"] = (t_setup,
                      lambda s: F.conv2d(s[0], s[1], s[2], row["stride"], row["pad"], 1, row["groups"]),
                      lambda s, o: o.backward(dt))
    iters = 2 * n * f * ho * wo
    return v, 2 * macs, 3 * 2 * macs, iters


def _maxpool_variants(row, torch, naive):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(row["x"], dtype=np.float32)
    param = {"pool_height": row["k"], "pool_width": row["k"], "stride": row["s"], "pad": row["p"],
             "floor_mode": True}
    out, _ = FastMaxPool.forward(x, param)
    dout = rng.standard_normal(out.shape, dtype=np.float32)

    def layer_variant(layer):
        return (lambda: None, lambda s: layer.forward(x, param)[1],
                lambda s, cache: layer.backward(dout, cache))

    v = {"minidl": layer_variant(FastMaxPool)}
    s_, f_, b_ = layer_variant(FastMaxPool)
    v["numpy"] = (s_, _with_numpy_path(f_), _with_numpy_path(b_))
    if naive:
        v["naive"] = layer_variant(MaxPool)
    if torch is not None:
        F = torch.nn.functional
        xt, dt = torch.from_numpy(x), torch.from_numpy(dout)
        v["torch"] = (lambda: xt.detach().requires_grad_(True),
                      lambda s: F.max_pool2d(s, row["k"], row["s"], row["p"]),
                      lambda s, o: o.backward(dt))
    n, c, ho, wo = out.shape
    return v, None, None, ho * wo + n * c * ho * wo


def _bn_variants(row, torch, naive):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(row["x"], dtype=np.float32)
    c = row["x"][1]
    gamma = np.ones(c, np.float32)
    beta = np.zeros(c, np.float32)
    dout = rng.standard_normal(row["x"], dtype=np.float32)
    eps = 1e-5

    def layer_fwd(s):
        return SpatialBatchNorm.forward(x, gamma, beta, {"mode": "train", "eps": eps})[1]

    def layer_bwd(s, cache):
        return SpatialBatchNorm.backward(dout, cache)

    # the layer as users call it: its compiled kernels ("minidl") or its NumPy code ("numpy")
    v = {"minidl": (lambda: None, layer_fwd, layer_bwd),
         "numpy": (lambda: None, _with_numpy_path(layer_fwd), _with_numpy_path(layer_bwd))}
    if torch is not None:
        F = torch.nn.functional
        xt, gt, bt, dt = (torch.from_numpy(a) for a in (x, gamma, beta, dout))
        v["torch"] = (lambda: [t.detach().requires_grad_(True) for t in (xt, gt, bt)],
                      lambda s: F.batch_norm(s[0], None, None, s[1], s[2], True, 0.1, eps),
                      lambda s, o: o.backward(dt))
    return v, None, None, None


# ---------------------------------------------------------------- ResNet-20 step

def _minidl_resnet20_step(x, y):
    """One SGD-momentum training step of minidl.models.zoo's resnet20 (option-A shortcuts,
    269,722 parameters), through its modules and layers as shipped."""
    from minidl.losses import softmax_loss
    from minidl.models.zoo import get_model
    from minidl.nn import Optimizer

    model = get_model("resnet20", num_classes=10)
    model.train()
    optimizer = Optimizer(model, "sgd_momentum", {"learning_rate": 0.05, "momentum": 0.9})

    def step():
        optimizer.zero_grad()
        loss, dscores = softmax_loss(model.forward(x), y)
        model.backward(dscores)
        optimizer.step()
        return loss

    return step


def _torch_resnet20(torch):
    """The same network in PyTorch: CIFAR ResNet-20, option-A shortcuts (subsample, zero-pad)."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, ci, co, s):
            super().__init__()
            self.conv1 = nn.Conv2d(ci, co, 3, s, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(co)
            self.conv2 = nn.Conv2d(co, co, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(co)
            self.s, self.pad = s, co - ci

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            sc = x
            if self.s != 1 or self.pad:
                sc = F.pad(x[:, :, ::self.s, ::self.s], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return F.relu(out + sc)

    blocks, ci = [], 16
    for co, s in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            blocks.append(Block(ci, co, s if i == 0 else 1))
            ci = co
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def _step_variants(row, torch, naive):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(row["x"], dtype=np.float32)
    y = rng.integers(0, 10, row["x"][0])
    step = _minidl_resnet20_step(x, y)
    v = {"minidl": (lambda: None, lambda s: step(), lambda s, m: None)}
    v["numpy"] = (lambda: None, _with_numpy_path(lambda s: step()), lambda s, m: None)
    if torch is not None:
        model = _torch_resnet20(torch)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def t_step(s):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()

        v["torch"] = (lambda: None, t_step, lambda s, m: None)
    return v, None, None, None


def _peak_step_memory(which, threads):
    """Peak resident memory (MB) that three training steps add to a fresh subprocess, from
    /proc (VmHWM after the steps minus VmRSS before; the peak is reset first where Linux
    allows, and neither survives exec, unlike getrusage's ru_maxrss)."""
    code = (
        "import resource, sys, numpy as np, minidl, minidl.bench as B\n"
        f"minidl.set_num_threads({threads})\n"
        "row = [r for r in B.ROWS if r['kind'] == 'step'][0]\n"
        f"which = {which!r}\n"
        "torch = B._torch() if which == 'torch' else None\n"
        "if torch is not None: torch.set_num_threads(%d)\n" % threads +
        "v = B._step_variants(row, torch, False)[0][which]\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key + ':'): return int(line.split()[1]) / 1024\n"
        "try:\n"
        "    open('/proc/self/clear_refs', 'w').write('5')  # reset the peak to the current RSS\n"
        "except OSError:\n"
        "    pass\n"
        "base = status('VmRSS')\n"
        "for _ in range(3): v[1](None)\n"
        "print(status('VmHWM') - base)\n"
    )
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        return float(res.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001 - report what we could not measure as missing
        return None


# ---------------------------------------------------------------------------- driver

def select_rows(quick=False, names=None):
    """The rows to run: every row of ROWS, or (quick=True) the representative few; names: keep
    only the rows whose names contain one of these substrings (case-insensitive). A name
    that matches none of them is a ValueError that lists the rows there are."""
    rows = [r for r in ROWS if r.get("quick")] if quick else list(ROWS)
    if names:
        unknown = [n for n in names if not any(n.lower() in r["name"].lower() for r in rows)]
        if unknown:
            listed = "; ".join(r["name"] for r in rows)
            raise ValueError(f"select_rows: no {'quick ' if quick else ''}row matches "
                             f"{', '.join(map(repr, unknown))}; the rows are: {listed}")
        rows = [r for r in rows if any(n.lower() in r["name"].lower() for n in names)]
    return rows


def _machine():
    from threadpoolctl import threadpool_info
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    torch = _torch()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
        "blas": [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                 for i in threadpool_info()],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None,
        "kernels": minidl.kernels_info()["path"],
    }


def run_benchmarks(rows, threads, reps, memory=True, on_gemm_rate=None, on_row=None):
    """Time rows (entries of ROWS, see select_rows) at each thread count, reps timed rounds
    each (median). memory: also measure the training step's peak memory (subprocesses).
    on_gemm_rate(threads, gflops) and on_row(entry) are called as results come in.

    Returns a dict: machine, threads, reps, gemm_gflops {threads: GFLOP/s}, rows (one entry
    per row and thread count: row, kind, dense, threads, flop_fwd, flop_total, ms {variant:
    {fwd, bwd, total}}, and where they apply gflops, gemm_fraction, ratio_to_torch, peak_mb,
    algorithm (the convolution plan's))
    and summary (see summarize)."""
    torch = _torch()
    results = {"machine": _machine(), "threads": threads, "reps": reps, "gemm_gflops": {}, "rows": []}
    for t in threads:
        results["gemm_gflops"][str(t)] = gemm_rate(t)
        if on_gemm_rate is not None:
            on_gemm_rate(t, results["gemm_gflops"][str(t)])
    build = {"conv": _conv_variants, "maxpool": _maxpool_variants, "bn": _bn_variants,
             "step": _step_variants}
    for row in rows:
        for t in threads:
            minidl.set_num_threads(t)
            if torch is not None:
                torch.set_num_threads(t)
            variants, fwd_flop, total_flop, iters = build[row["kind"]](row, torch, False)
            if iters is not None and iters <= NAIVE_LIMIT:
                variants = build[row["kind"]](row, torch, True)[0]
            times = _median_times(variants, reps)
            entry = {"row": row["name"], "kind": row["kind"], "dense": row.get("dense", False),
                     "threads": t, "flop_fwd": fwd_flop, "flop_total": total_flop, "ms": {}}
            for name, (f, b) in times.items():
                entry["ms"][name] = {"fwd": f, "bwd": b, "total": f + b}
            tot = entry["ms"]["minidl"]["total"]
            if total_flop:
                entry["gflops"] = {k: total_flop / (m["total"] * 1e6) for k, m in entry["ms"].items()}
                entry["gemm_fraction"] = entry["gflops"]["minidl"] / results["gemm_gflops"][str(t)]
            if "torch" in entry["ms"]:
                entry["ratio_to_torch"] = tot / entry["ms"]["torch"]["total"]
            if row["kind"] == "conv":  # the algorithm the timed minidl variant ran
                entry["algorithm"] = _conv_arrays(row)[4].algorithm
            if row["kind"] == "step" and memory:
                entry["peak_mb"] = {k: _peak_step_memory(k, t) for k in ("minidl", "torch")
                                    if k == "minidl" or torch is not None}
            results["rows"].append(entry)
            if on_row is not None:
                on_row(entry)
    results["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    results["summary"] = summarize(results)
    return results


def _geomean(xs):
    xs = [x for x in xs if x]
    return float(np.exp(np.mean(np.log(xs)))) if xs else None


def summarize(results):
    """Geometric means of the ratios to torch per group and thread count, and 2-thread speedups."""
    out = {}
    for t in results["threads"]:
        rows = [e for e in results["rows"] if e["threads"] == t and "ratio_to_torch" in e]
        dense = [e["ratio_to_torch"] for e in rows if e["dense"]]
        out[str(t)] = {"dense_geomean": _geomean(dense), "dense_max": max(dense) if dense else None}
    if 1 in results["threads"] and 2 in results["threads"]:
        one = {e["row"]: e["ms"]["minidl"]["total"] for e in results["rows"] if e["threads"] == 1}
        two = {e["row"]: e["ms"]["minidl"]["total"] for e in results["rows"] if e["threads"] == 2}
        out["dense_speedup_2t"] = _geomean([one[e["row"]] / two[e["row"]] for e in results["rows"]
                                            if e["threads"] == 2 and e["dense"]])
    return out
