"""Winograd F(2x2,3x3) and F(4x4,3x3) against the packed GEMM path on 3x3 stride-1 layers:
forward and backward (data + filter gradients) timed separately, float32.

    flock /tmp/minidl-heavy.lock python benchmarks/bench_winograd.py [--rounds 9] [--reps 3]

Every algorithm's forward and backward runs once per round, in turn, in one process
(interleaved, as bench_fused.py); a round's figure is the mean of --reps calls and the table
shows the median over rounds (min-max). The layers are the ones minidl's 'auto' heuristic
for Winograd was decided on (see WINOGRAD_* in minidl/_kernels/convolution.py).
"""
import argparse

import numpy as np

import minidl
from minidl import _kernels
from minidl.layers import FastConv

from bench_fused import _set_threads, _time_rows

# (name, N, C, F, H=W), all 3x3, stride 1, pad 1
LAYERS = [("ResNet 64ch 56x56", 8, 64, 64, 56), ("ResNet 256ch 14x14", 8, 256, 256, 14),
          ("coursework 32ch 32x32", 64, 32, 32, 32), ("ResNet-20 16ch 32x32", 64, 16, 16, 32),
          ("ResNet-20 32ch 16x16", 64, 32, 32, 16), ("ResNet-20 64ch 8x8", 64, 64, 64, 8),
          ("first layer 3->64 32x32", 64, 3, 64, 32), ("8->16 32x32", 64, 8, 16, 32),
          ("16->16 56x56", 8, 16, 16, 56), ("ResNet 128ch 28x28", 8, 128, 128, 28),
          ("ResNet 512ch 7x7", 8, 512, 512, 7), ("64->8 32x32", 64, 64, 8, 32),
          ("8->64 32x32", 64, 8, 64, 32), ("6->32 32x32", 64, 6, 32, 32),
          ("5->32 32x32", 64, 5, 32, 32), ("4->32 32x32", 64, 4, 32, 32),
          ("4->64 56x56", 8, 4, 64, 56), ("64ch 4x4", 64, 64, 64, 4),
          ("64ch 2x2", 64, 64, 64, 2), ("64ch 1x1", 64, 64, 64, 1), ("256ch 2x2", 8, 256, 256, 2)]
ALGORITHMS = ("gemm_packed", "winograd_2x2", "winograd_4x4")


def _variants(x, w, b, dout, param):
    """'<algorithm> fwd' / '<algorithm> bwd' -> a call of that pass on its own plan."""
    out = {}
    for algorithm in ALGORITHMS:
        with _kernels.forced_algorithm(algorithm):
            plan = _kernels.plan_conv("FastConv", x, w, b, param)
        _, cache = FastConv.run(plan, x, w, b)
        out[f"{algorithm} fwd"] = lambda plan=plan: FastConv.run(plan, x, w, b)
        out[f"{algorithm} bwd"] = lambda cache=cache: FastConv.backward(dout, cache)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"minidl {minidl.kernels_info()['path']}; medians of {args.rounds} rounds of "
          f"{args.reps} calls, ms (min-max over rounds), float32, 3x3 stride 1 pad 1")
    print("| layer | N | threads | " + " | ".join(f"{a} fwd | {a} bwd" for a in ALGORITHMS)
          + " | best fwd+bwd |")
    print("| --- | --- | --- | " + " | ".join("--- | ---" for _ in ALGORITHMS) + " | --- |")
    for threads in args.threads:
        _set_threads(threads)
        for name, n, c, f, size in LAYERS:
            x = rng.standard_normal((n, c, size, size)).astype(np.float32)
            w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
            b = rng.standard_normal(f).astype(np.float32)
            dout = rng.standard_normal((n, f, size, size)).astype(np.float32)
            r = _time_rows(_variants(x, w, b, dout, {"stride": 1, "pad": 1}), args.rounds,
                           args.reps)
            total = {a: r[f"{a} fwd"][0] + r[f"{a} bwd"][0] for a in ALGORITHMS}
            best = min(total, key=total.get)
            cells = " | ".join(f"{r[k][0]:.2f} ({r[k][1]:.2f}-{r[k][2]:.2f})" for k in r)
            print(f"| {name} | {n} | {threads} | {cells} | {best} "
                  f"({total['gemm_packed'] / total[best]:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
