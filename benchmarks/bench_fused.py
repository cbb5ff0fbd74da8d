"""Fused batch norm + ReLU and add + ReLU against the unfused layers (and PyTorch's CPU
operators with autograd, when torch is installed): forward + backward, float32.

    python benchmarks/bench_fused.py [--rounds 9] [--reps 10] [--threads 1 2]

Every variant of a row runs once per round, in turn, in one process (interleaved, so that a
busy moment of a shared machine hits all of them); a round's figure is the mean of --reps
calls, and the table shows the median over rounds with the spread (the largest / smallest
round, in percent above the median's range) so that noisy rows can be told apart.
Shapes: the three stages of ResNet-20 at N=64 (CIFAR 32x32) and a ResNet stage-1 layer.
"""
import argparse
import time

import numpy as np

import minidl
from minidl.layers import Add, AddReLU, ReLU, SpatialBatchNorm, SpatialBatchNormReLU

SHAPES = [(64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8), (8, 64, 56, 56)]


def _minidl_bn_variants(x, gamma, beta, dout):
    def unfused():
        an, bn_cache = SpatialBatchNorm.forward(x, gamma, beta, {"mode": "train"})
        out, relu_cache = ReLU.forward(an)
        return SpatialBatchNorm.backward(ReLU.backward(dout, relu_cache), bn_cache)

    def fused():
        out, cache = SpatialBatchNormReLU.forward(x, gamma, beta, {"mode": "train"})
        return SpatialBatchNormReLU.backward(dout, cache)

    return {"bn, relu": unfused, "fused": fused}


def _minidl_add_variants(a, b, dout):
    def unfused():
        s, add_cache = Add.forward(a, b)
        out, relu_cache = ReLU.forward(s)
        return Add.backward(ReLU.backward(dout, relu_cache), add_cache)

    def fused():
        out, cache = AddReLU.forward(a, b)
        return AddReLU.backward(dout, cache)

    return {"add, relu": unfused, "fused": fused}


def _torch_variants(kind, arrays):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    if kind == "bn":
        x, gamma, beta, dout = (torch.from_numpy(a) for a in arrays)
        rm, rv = torch.zeros(x.shape[1]), torch.ones(x.shape[1])

        def run():
            xg, g, b = (t.detach().requires_grad_() for t in (x, gamma, beta))
            F.relu(F.batch_norm(xg, rm, rv, g, b, training=True)).backward(dout)
            return xg.grad, g.grad, b.grad
    else:
        a, b, dout = (torch.from_numpy(t) for t in arrays)

        def run():
            ag, bg = a.detach().requires_grad_(), b.detach().requires_grad_()
            F.relu(ag + bg).backward(dout)
            return ag.grad, bg.grad
    return {"torch": run}


def _set_threads(n):
    minidl.set_num_threads(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def _time_rows(variants, rounds, reps):
    for f in variants.values():  # warm up (allocator, caches, lazy imports)
        f()
    samples = {k: [] for k in variants}
    for _ in range(rounds):
        for name, f in variants.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                f()
            samples[name].append((time.perf_counter() - t0) / reps * 1e3)
    return {k: (float(np.median(v)), float(min(v)), float(max(v))) for k, v in samples.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"minidl {minidl.kernels_info()['path']}; medians of {args.rounds} rounds of "
          f"{args.reps} calls, ms per forward+backward (min-max over rounds)")
    print("| op | shape | threads | unfused | fused | fused/unfused | torch | fused/torch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for threads in args.threads:
        _set_threads(threads)
        for shape in SHAPES:
            C = shape[1]
            x = rng.standard_normal(shape).astype(np.float32)
            gamma = rng.standard_normal(C).astype(np.float32)
            beta = rng.standard_normal(C).astype(np.float32)
            dout = rng.standard_normal(shape).astype(np.float32)
            b = rng.standard_normal(shape).astype(np.float32)
            for op, variants in (
                    ("bn+relu", {**_minidl_bn_variants(x, gamma, beta, dout),
                                 **_torch_variants("bn", (x, gamma, beta, dout))}),
                    ("add+relu", {**_minidl_add_variants(x, b, dout),
                                  **_torch_variants("add", (x, b, dout))})):
                r = _time_rows(variants, args.rounds, args.reps)
                names = list(r)
                un, fu = r[names[0]], r["fused"]
                cell = lambda t: f"{t[0]:.3f} ({t[1]:.3f}-{t[2]:.3f})"  # noqa: E731
                torch_cells = (f"{cell(r['torch'])} | {fu[0] / r['torch'][0]:.2f}"
                               if "torch" in r else "- | -")
                print(f"| {op} | {shape} | {threads} | {cell(un)} | {cell(fu)} | "
                      f"{fu[0] / un[0]:.2f} | {torch_cells} |", flush=True)


if __name__ == "__main__":
    main()
