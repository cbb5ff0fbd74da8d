"""Data parallel over MPI against threads: ResNet-20 training steps (CIFAR 32x32, float32) on one
process at 2 threads, and on 2 MPI ranks at 1 thread each (with and without SyncBatchNorm), plus
the Allreduce time of a flat float32 buffer against its size.

    flock /tmp/minidl-heavy.lock python benchmarks/bench_distributed.py [--batch 128]
        [--steps 8] [--warmup 2] [--rounds 3] [--out benchmarks/results]

Each round runs the three configurations one after another, each in fresh processes (one
process; ``mpirun -n 2 --bind-to none``; the same with --sync-bn), so that a busy moment of a
shared machine hits all of them; a configuration's figure is the median over all its timed
steps. A step is what Solver.train runs per iteration (the minibatch, forward, loss, backward,
the allreduces, the Adam update), timed on rank 0 between the Solver's iteration hooks; the
global minibatch is --batch images in every configuration. Communication per step is the time
rank 0 spends in Communicator.allreduce (the gradient buffer, the loss and stop flag, and with
--sync-bn the batch-norm sums): it includes waiting for the other rank to arrive.

The Allreduce sweep times ``comm.allreduce`` of n float32 values on 2 ranks (after a barrier,
so that it measures the transfer, not the other rank's lateness; median of 30) and fits
t(n) = alpha + 4 n / bandwidth (least squares on the relative error). How busy the machine was: the CPU time the whole machine used
during the run (/proc/stat) minus what this benchmark's processes used, per core.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.abspath(__file__)


# --------------------------------------------------------------------------- in the workers

def _worker_steps(batch, steps, warmup, threads, sync_bn, result):
    import minidl
    from minidl import distributed
    from minidl.models.zoo import resnet20
    from minidl.nn import ClassifierModel, SyncBatchNorm, manual_seed
    from minidl.solver import Solver

    minidl.set_num_threads(threads)
    comm = distributed.world()

    class Timed(type(comm)):
        """The job's communicator, counting the seconds spent in allreduce."""

        def __init__(self, inner):
            self.__dict__.update(inner.__dict__)
            self.seconds = 0.0

        def _allreduce(self, sendbuf, recvbuf):
            t = time.perf_counter()
            super()._allreduce(sendbuf, recvbuf)
            self.seconds += time.perf_counter() - t

    comm = Timed(comm)

    class StepTimer(Solver):
        def on_iteration_begin(self, t, num_iterations):
            self._t0, self._c0 = time.perf_counter(), comm.seconds

        def on_iteration(self, t, num_iterations):
            self.step_times.append(time.perf_counter() - self._t0)
            self.comm_times.append(comm.seconds - self._c0)

    manual_seed(0)
    module = resnet20(num_classes=10, in_channels=3, dtype=np.float32)
    if sync_bn:
        module = SyncBatchNorm.convert_sync_batchnorm(module, comm)
    rng = np.random.default_rng(0)
    n = batch * (warmup + steps)
    data = {"X_train": rng.standard_normal((n, 3, 32, 32), dtype=np.float32),
            "y_train": rng.integers(0, 10, n),
            "X_val": rng.standard_normal((batch, 3, 32, 32), dtype=np.float32),
            "y_val": rng.integers(0, 10, batch)}
    solver = StepTimer(ClassifierModel(module), data, update_rule="adam",
                       optim_config={"learning_rate": 1e-3}, batch_size=batch, num_epochs=1,
                       num_train_samples=batch, verbose=False, seed=0, comm=comm)
    solver.step_times, solver.comm_times = [], []
    solver.train()
    flat = solver.optimizer.parameters()
    with open(f"{result}.rank{comm.rank}.json", "w") as f:  # mpirun may mix ranks' lines
        json.dump({"rank": comm.rank, "ranks": comm.size, "threads": threads,
                   "sync_bn": sync_bn, "batch": batch, "params": int(flat.size),
                   "step_s": solver.step_times[warmup:],
                   "comm_s": solver.comm_times[warmup:]}, f)


def _worker_sweep(reps, result):
    from minidl import distributed

    comm = distributed.world()
    rows = []
    for exponent in range(8, 25, 2):
        n = 2 ** exponent
        buf = np.ones(n, dtype=np.float32)
        times = []
        for _ in range(reps + 3):
            comm.barrier()
            t = time.perf_counter()
            comm.allreduce(buf)
            times.append(time.perf_counter() - t)
        rows.append({"n": n, "s": float(np.median(times[3:]))})
    if comm.is_root:
        with open(f"{result}.rank0.json", "w") as f:
            json.dump({"sweep": rows, "ranks": comm.size}, f)


# --------------------------------------------------------------------------- the driver

def _mpirun(n):
    return [shutil.which("mpirun") or "mpirun", "--allow-run-as-root", "--oversubscribe",
            "--bind-to", "none", "-n", str(n)]


def _run(cmd, env):
    """Run a worker command; the results its ranks wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result")
        r = subprocess.run([*cmd, "--result", result], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL)
        if r.returncode:
            raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
        out = []
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name)) as f:
                out.append(json.load(f))
        return out


def _cpu_busy():
    """(busy, total) jiffies of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _median(values):
    return float(np.median(values)) if values else None


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="folder for distributed.json and distributed.md")
    p.add_argument("--worker", choices=("steps", "sweep"), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--sync-bn", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker == "steps":
        return _worker_steps(args.batch, args.steps, args.warmup, args.threads, args.sync_bn,
                             args.result)
    if args.worker == "sweep":
        return _worker_sweep(30, args.result)

    env = dict(os.environ)
    env.pop("MINIDL_NUM_THREADS", None)
    me = [sys.executable, HERE, "--batch", str(args.batch), "--steps", str(args.steps),
          "--warmup", str(args.warmup), "--worker", "steps"]
    configs = {"1 process x 2 threads": [*me, "--threads", "2"],
               "2 ranks x 1 thread": [*_mpirun(2), *me, "--threads", "1"],
               "2 ranks x 1 thread, --sync-bn": [*_mpirun(2), *me, "--threads", "1",
                                                 "--sync-bn"]}
    load_before = open("/proc/loadavg").read().split()[:3]
    busy0, total0 = _cpu_busy()
    ours0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.time()
    results = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, cmd in configs.items():
            results[name] += _run(cmd, env)
    sweep = _run([*_mpirun(2), sys.executable, HERE, "--worker", "sweep"], env)[0]["sweep"]
    busy1, total1 = _cpu_busy()
    ours1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = open("/proc/loadavg").read().split()[:3]
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count()
    wall = time.time() - wall0
    ours = (ours1.ru_utime + ours1.ru_stime) - (ours0.ru_utime + ours0.ru_stime)
    machine = (busy1 - busy0) / hz
    others = max(machine - ours, 0.0) / (wall * ncpu)

    table = []
    for name, rows in results.items():
        rank0 = [r for r in rows if r["rank"] == 0]
        steps = [s for r in rank0 for s in r["step_s"]]
        # a single process's world communicator "reduces" in place: no communication to show
        comm = [c for r in rank0 if r["ranks"] > 1 for c in r["comm_s"]]
        other = [c for r in rows if r["rank"] == 1 for c in r["comm_s"]]
        step = _median(steps)
        table.append({"config": name, "step_ms": 1e3 * step,
                      "images_per_s": args.batch / step,
                      "comm_ms": 1e3 * _median(comm) if comm else None,
                      "comm_ms_rank1": 1e3 * _median(other) if other else None,
                      "comm_fraction": _median(comm) / step if comm else None,
                      "steps_timed": len(steps),
                      "step_ms_spread": [1e3 * min(steps), 1e3 * max(steps)]})
    base = table[0]["images_per_s"]
    for row in table:
        row["vs_threads"] = row["images_per_s"] / base

    # t(n) = alpha + bytes / bandwidth (2 ranks: 2(K-1)/K = 1 buffer per rank), fitted by
    # least squares on the relative error (the sizes span 5 decades)
    n = np.array([r["n"] for r in sweep], dtype=float)
    t = np.array([r["s"] for r in sweep])
    A = np.stack([np.ones_like(n), 4 * n], axis=1) / t[:, None]
    (alpha, inv_bw), *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
    params = results["2 ranks x 1 thread"][0]["params"]
    report = {"machine": {"cpu": _cpu_name(), "cores": ncpu,
                          "python": platform.python_version(), "numpy": np.__version__,
                          "mpirun": subprocess.run(["mpirun", "--version"], capture_output=True,
                                                   text=True).stdout.splitlines()[0],
                          "load_before": load_before, "load_after": load_after,
                          "other_processes_cores": round(others * ncpu, 2),
                          "wall_s": round(wall, 1), "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                          time.gmtime(wall0))},
              "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
              "params": params, "configs": table, "sweep": sweep,
              "allreduce_fit": {"alpha_us": 1e6 * alpha, "bandwidth_GBps": 1e-9 / inv_bw}}
    _print(report)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "distributed.json"), "w") as f:
            json.dump(report, f, indent=1)


def _print(report):
    m = report["machine"]
    print(f"ResNet-20 ({report['params']:,} parameters), float32, CIFAR 32x32, global batch "
          f"{report['batch']}; median of {report['rounds']} x {report['steps']} steps")
    print(f"{m['cpu']}, {m['cores']} cores; {m['mpirun']}; load average {m['load_before']} -> "
          f"{m['load_after']}; other processes used {m['other_processes_cores']} cores on "
          f"average over {m['wall_s']} s")
    print("| configuration | step ms (min-max) | images/s | vs 1 process x 2 threads | "
          "allreduce ms/step (rank 0, rank 1) | allreduce / step |")
    print("|---|---|---|---|---|---|")
    for r in report["configs"]:
        lo, hi = r["step_ms_spread"]
        comm = ("- | -" if r["comm_ms"] is None else
                f"{r['comm_ms']:.2f}, {r['comm_ms_rank1']:.2f} | {100 * r['comm_fraction']:.1f}%")
        print(f"| {r['config']} | {r['step_ms']:.0f} ({lo:.0f}-{hi:.0f}) | "
              f"{r['images_per_s']:.0f} | {r['vs_threads']:.2f} | {comm} |")
    fit = report["allreduce_fit"]
    print(f"\nAllreduce of n float32 on 2 ranks: alpha {fit['alpha_us']:.1f} us, "
          f"{fit['bandwidth_GBps']:.2f} GB/s")
    print("| n | bytes | ms | fit ms |")
    print("|---|---|---|---|")
    for r in report["sweep"]:
        model = fit["alpha_us"] * 1e-3 + 4 * r["n"] / (fit["bandwidth_GBps"] * 1e6)
        print(f"| {r['n']:,} | {4 * r['n']:,} | {1e3 * r['s']:.3f} | {model:.3f} |")


if __name__ == "__main__":
    main()
