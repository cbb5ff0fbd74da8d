"""Data parallel for real: Open MPI's ``mpirun --allow-run-as-root --oversubscribe -n 2`` on
this machine (loopback), against one process doing the same.

Float64 equivalence of the Solver (SGD, momentum, Adam; without batch norm and with
SyncBatchNorm), per-rank batch statistics without it, SyncBatchNorm on uneven shards, the
same through ``minidl train`` (checkpoint "params"), resume with another number of
processes, Ctrl-C on mpirun, and faults: a killed rank, a rank that raises.

Skipped, with the reason, when mpirun (Open MPI) or mpi4py is missing; with
MINIDL_REQUIRE_MPI=1 (as .ci/run sets it) they fail instead, so CI cannot skip them.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from minidl.cli.args import EXIT_USAGE
from minidl.solver import read_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _mpi_cases import (CASES, SYNC_BN_SHARDS, digits, per_rank_reference,  # noqa: E402
                        solver_for, sync_bn_reference_input)

ENV = dict(os.environ, MINIDL_NUM_THREADS="1")
TIMEOUT = 180      # any one mpirun here; a hang fails the test instead of stalling CI
FAULT_SECONDS = 30  # a job with a failed rank must be over well within this


def _why_not():
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        return "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'minidl[mpi]')"
    try:
        version = subprocess.run([mpirun, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"mpirun --version failed: {e}"
    if "Open MPI" not in version:
        return (f"these tests drive Open MPI's mpirun (its options and its messages); found "
                f"{version.strip().splitlines()[0] if version.strip() else 'another mpirun'}")
    return None


WHY_NOT = _why_not()
if WHY_NOT and not os.environ.get("MINIDL_REQUIRE_MPI"):
    pytestmark = pytest.mark.skip(reason=WHY_NOT)


@pytest.fixture(autouse=True)
def _mpi_required():
    if WHY_NOT:  # only reached with MINIDL_REQUIRE_MPI set
        pytest.fail(f"MINIDL_REQUIRE_MPI is set but {WHY_NOT}")


def mpirun(n=2):
    return [shutil.which("mpirun") or "mpirun", "--allow-run-as-root", "--oversubscribe",
            "-n", str(n)]


def _run(cmd, cwd, timeout=TIMEOUT):
    """subprocess.run, except that a command still running after timeout seconds gets
    SIGTERM first (mpirun then ends its ranks, which live in their own process groups) and
    the test fails."""
    proc = _start(cmd, cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _start(cmd, cwd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=cwd, stdin=subprocess.DEVNULL)


def _stop(proc):
    """End a command that is still running: SIGTERM (mpirun passes it on), then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


# --------------------------------------------------------------------------- the Solver

@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Rank 0's and rank 1's results of tests/_mpi_worker.py on 2 ranks."""
    out = tmp_path_factory.mktemp("mpi_worker")
    _ok(_run([*mpirun(), sys.executable, os.path.join(HERE, "_mpi_worker.py"), str(out)],
             cwd=out))
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


@pytest.fixture(scope="module")
def data():
    return digits()


def test_allreduce_broadcast_and_shards_on_two_ranks(ranks):
    for r, got in enumerate(ranks):
        np.testing.assert_array_equal(got["comm/allreduce_in_place"],
                                      np.arange(5, dtype=np.float32) * 3)
        assert got["comm/allreduce_in_place"].dtype == np.float32
        np.testing.assert_array_equal(got["comm/allreduce_into"], np.arange(5.0) * 3)
        np.testing.assert_array_equal(got["comm/broadcast"], [7, 7, 7])  # rank 0's
        assert int(got["comm/local_size"]) == 2
    assert ranks[0]["comm/shard"].tolist() == [0, 3] and ranks[1]["comm/shard"].tolist() == [3, 7]


def _one_process(name, data):
    solver = solver_for(name, data, reference=True)
    solver.train(return_best_params=False)
    return solver


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("fc-", "resnet-sync-"))])
def test_two_ranks_give_the_parameters_of_one_process(name, ranks, data):
    # fc: no batch norm; resnet-sync: SyncBatchNorm on the ranks, BatchNorm2d in the one
    # process. Global batch 20 (10 per rank), 6 steps, float64.
    one = _one_process(name, data)
    for got in ranks:
        np.testing.assert_allclose(got[f"{name}/params"], one.optimizer.parameters().params,
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(got[f"{name}/loss_history"], one.loss_history, rtol=0,
                                   atol=1e-12)
        np.testing.assert_array_equal(got[f"{name}/val_acc_history"], one.val_acc_history)
        # 35 rows: shards of 17 and 18, counts summed
        assert float(got[f"{name}/val_acc_odd"]) == one.check_accuracy(data["X_val"][:35],
                                                                       data["y_val"][:35])
    if name.startswith("resnet-sync-"):  # running statistics of the whole batch, on both
        buffers = dict(one.model.module.named_buffers())
        assert buffers
        for k, v in buffers.items():
            for got in ranks:
                np.testing.assert_allclose(got[f"{name}/buffer/{k}"], v, rtol=0, atol=1e-10)


def test_without_sync_bn_each_rank_normalises_with_its_own_share(ranks, data):
    name = "resnet-perrank-adam"
    params, rank0_buffers = per_rank_reference(name, data)
    np.testing.assert_allclose(ranks[0][f"{name}/params"], params, rtol=0, atol=1e-10)
    for k, v in rank0_buffers.items():
        # rank 0's running statistics come from its own halves of the minibatches, and
        # after train() every rank holds them
        np.testing.assert_allclose(ranks[0][f"{name}/buffer/{k}"], v, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(ranks[1][f"{name}/buffer/{k}"],
                                      ranks[0][f"{name}/buffer/{k}"])
    # ... which is not what one process computes on the whole minibatch
    one = solver_for(name, data, reference=True)
    one.train(return_best_params=False)
    assert np.abs(one.optimizer.parameters().params - params).max() > 1e-6


def test_sync_batchnorm_on_uneven_shards_equals_batch_norm_on_the_whole_batch(ranks):
    from minidl.nn import BatchNorm2d

    x, dout = sync_bn_reference_input()
    bn = BatchNorm2d(3).astype(np.float64)
    bn.load_state_dict({"weight": np.linspace(0.5, 1.5, 3), "bias": np.linspace(-1, 1, 3)},
                       strict=False)
    out = bn.forward(x)
    dx = bn.backward(dout)
    grads = bn.flat_parameters().grads
    for got, rows in zip(ranks, SYNC_BN_SHARDS):   # 3 rows on rank 0, 5 on rank 1
        np.testing.assert_allclose(got["syncbn/out"], out[rows], rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["syncbn/dx"], dx[rows], rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["syncbn/grads"], grads, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["syncbn/running_mean"], bn.running_mean, atol=1e-14)
        np.testing.assert_allclose(got["syncbn/running_var"], bn.running_var, atol=1e-14)


# --------------------------------------------------------------------------- minidl train

TRAIN = ["train", "--model", "resnet20", "--data", "digits", "--num-train", "60",
         "--batch-size", "20", "--dtype", "float64", "--update-rule", "adam", "--lr", "3e-3",
         "--sync-bn", "--no-progress"]


def _train(cwd, *args, n=None):
    cmd = [sys.executable, "-m", "minidl", *TRAIN, *args]
    return _ok(_run(cmd if n is None else [*mpirun(n), *cmd], cwd=cwd))


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpi_cli")
    runs = {
        "one_1": _train(d, "--epochs", "1", "--out", "one_1"),
        "one_2": _train(d, "--epochs", "2", "--out", "one_2"),
        "two_1": _train(d, "--epochs", "1", "--out", "two_1", n=2),
    }
    shutil.copytree(d / "one_1", d / "resumed")
    runs["resumed"] = _train(d, "--resume", "resumed/checkpoint.npz", "--epochs", "2", n=2)
    return d, runs


def _same_checkpoint(a, b):
    a, b = read_checkpoint(a), read_checkpoint(b)
    assert a["iteration"] == b["iteration"] and list(a["params"]) == list(b["params"])
    for k in a["params"]:
        np.testing.assert_allclose(a["params"][k], b["params"][k], rtol=0, atol=1e-10,
                                   err_msg=k)
    for k, v in a["model_state"]["buffers"].items():
        np.testing.assert_allclose(v, b["model_state"]["buffers"][k], rtol=0, atol=1e-10,
                                   err_msg=k)
    np.testing.assert_allclose(a["loss_history"], b["loss_history"], rtol=0, atol=1e-12)
    assert a["val_acc_history"] == b["val_acc_history"]


def test_minidl_train_on_two_ranks_writes_the_checkpoint_of_one_process(cli_runs):
    d, runs = cli_runs
    _same_checkpoint(d / "two_1" / "checkpoint.npz", d / "one_1" / "checkpoint.npz")
    out = runs["two_1"].stdout
    assert "data parallel: 2 processes (MPI), 10 images each per step" in out
    assert "batch norm over the whole minibatch (--sync-bn)" in out
    assert out.count("minidl train: resnet20 on digits") == 1  # only rank 0 prints
    assert read_checkpoint(d / "two_1" / "checkpoint.npz")["extra"]["settings"]["sync_bn"]


def test_resume_with_another_number_of_processes_continues_the_same_run(cli_runs):
    d, runs = cli_runs
    # one epoch on 1 process, the second on 2 == both epochs on 1 process
    assert "resumed from resumed/checkpoint.npz: 1 epochs and 3 iterations done" \
        in runs["resumed"].stdout
    _same_checkpoint(d / "resumed" / "checkpoint.npz", d / "one_2" / "checkpoint.npz")


def test_a_batch_the_processes_do_not_divide_is_a_usage_error(tmp_path):
    r = _run([*mpirun(), sys.executable, "-m", "minidl", "train", "--model", "fc",
              "--batch-size", "25", "--epochs", "1", "--out", "x"], cwd=tmp_path)
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    assert ("--batch-size 25 is the whole minibatch, shared by the 2 processes mpirun "
            "started, and 2 does not divide it; use a multiple of 2 (e.g. 24 or 26)") in r.stderr
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- faults

FC = ["train", "--model", "fc", "--data", "digits", "--num-train", "200", "--batch-size", "20",
      "--dtype", "float64", "--no-progress"]
LONG = FC + ["--epochs", "1000"]


def _wait_for_training(proc):
    lines = []
    for line in proc.stdout:  # rank 0's lines; the first epoch line: training is under way
        lines.append(line)
        if line.startswith("epoch 1/"):
            return lines
    raise AssertionError("the run ended before its first epoch:\n" + "".join(lines)
                         + proc.stderr.read())


def _rank_pid(mpirun_pid, rank):
    """The pid of one rank: a child of mpirun (its local launcher) with that rank."""
    children = subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True,
                              text=True).stdout.split()
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(pid)
    raise AssertionError(f"no child of mpirun {mpirun_pid} has rank {rank}: {children}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_one_rank_ends_the_job_within_seconds(tmp_path):
    proc = _start([*mpirun(), sys.executable, "-m", "minidl", *LONG, "--out", "k"], tmp_path)
    try:
        _wait_for_training(proc)
        os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
        out, err = proc.communicate(timeout=FAULT_SECONDS)  # TimeoutExpired: it hangs
    finally:
        _stop(proc)
    assert proc.returncode != 0
    assert "process rank 1 with PID" in err and "exited on signal 9 (Killed)" in err, err


def test_an_error_on_one_rank_ends_the_job_and_names_the_rank(tmp_path):
    # Rank 1 fails in its third step, while rank 0 goes on into the gradient allreduce.
    code = ("import sys\n"
            "from minidl import distributed, solver\n"
            "if distributed.world().rank == 1:\n"
            "    step, calls = solver.Solver._step, []\n"
            "    def failing(self):\n"
            "        calls.append(1)\n"
            "        if len(calls) == 3:\n"
            "            raise ValueError('simulated failure in the third step')\n"
            "        return step(self)\n"
            "    solver.Solver._step = failing\n"
            "from minidl.cli import main\n"
            f"sys.exit(main({LONG + ['--out', 'e']!r}))\n")
    r = _run([*mpirun(), sys.executable, "-c", code], cwd=tmp_path, timeout=FAULT_SECONDS)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "minidl train (rank 1 of 2): error: simulated failure in the third step" in r.stderr


def test_an_uncaught_exception_in_a_script_aborts_every_rank(tmp_path):
    code = ("import numpy as np\n"
            "from minidl import distributed\n"
            "comm = distributed.world()\n"
            "if comm.rank == 1:\n"
            "    raise RuntimeError('simulated bug on rank 1')\n"
            "comm.allreduce(np.zeros(3))  # rank 0 waits here for rank 1\n")
    r = _run([*mpirun(), sys.executable, "-c", code], cwd=tmp_path, timeout=FAULT_SECONDS)
    assert r.returncode != 0
    assert "minidl.distributed: rank 1 of 2 failed (RuntimeError); ending the job" in r.stderr
    assert "RuntimeError: simulated bug on rank 1" in r.stderr  # the traceback
    # (mpirun's own "MPI_ABORT was invoked on rank 1" block is not always printed when the
    # abort comes this early, right after MPI_Init)


def test_ctrl_c_on_mpirun_saves_rank_0s_checkpoint_which_one_process_resumes(tmp_path):
    # Ctrl-C reaches mpirun only (the ranks have their own process groups); mpirun sends
    # them SIGTERM a second later (odls_base_sigkill_timeout) and SIGKILL a second after.
    proc = _start([*mpirun(), sys.executable, "-m", "minidl", *LONG, "--out", "c"], tmp_path)
    try:
        lines = _wait_for_training(proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=FAULT_SECONDS)
    finally:
        _stop(proc)
    out = "".join(lines) + out
    ckpt = tmp_path / "c" / "checkpoint.npz"
    assert proc.returncode != 0
    assert "Ctrl-C: stopping after this iteration" in err, err
    assert "checkpoint saved: c/checkpoint.npz" in out, out + err
    assert "resume with: mpirun -n 2 python -m minidl train --resume c/checkpoint.npz" in out
    done = read_checkpoint(ckpt)["iteration"]
    assert 10 <= done < 10000
    # One process continues the run to the end of the next epoch: the same as a run of that
    # length that was never stopped.
    epochs = str(done // 10 + 1)
    _ok(_run([sys.executable, "-m", "minidl", "train", "--resume", str(ckpt), "--epochs",
              epochs, "--no-progress"], cwd=tmp_path))
    _ok(_run([sys.executable, "-m", "minidl", *FC, "--epochs", epochs, "--out", "whole"],
             cwd=tmp_path))
    _same_checkpoint(ckpt, tmp_path / "whole" / "checkpoint.npz")


# --------------------------------------------------------------------------- two hosts

AGENT = """#!/bin/sh
# Open MPI's ssh for this test: agent HOST COMMAND... runs COMMAND in HOST's namespace.
host=$1; shift
case "$host" in
  10.77.0.1) exec ip netns exec {a} /bin/sh -c "$*" ;;
  10.77.0.2) exec ip netns exec {b} /bin/sh -c "$*" ;;
esac
echo "agent: unknown host $host" >&2
exit 1
"""


@pytest.fixture
def two_hosts(tmp_path):
    """Two network namespaces joined by a veth pair, 10.77.0.1 and 10.77.0.2, and an mpirun
    that starts its daemon on each through ``ip netns exec`` instead of ssh (an rsh agent):
    two hosts to Open MPI, which then talk TCP only (btl tcp,self)."""
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0 \
            or shutil.which("ip") is None:
        pytest.skip("two hosts as network namespaces need root and iproute2's ip")
    a, b = f"mdl{os.getpid()}a", f"mdl{os.getpid()}b"
    steps = [["ip", "netns", "add", a], ["ip", "netns", "add", b],
             ["ip", "link", "add", f"{a}v", "type", "veth", "peer", "name", f"{b}v"],
             ["ip", "link", "set", f"{a}v", "netns", a], ["ip", "link", "set", f"{b}v", "netns", b],
             ["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", f"{a}v"],
             ["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", f"{b}v"]]
    steps += [["ip", "-n", ns, "link", "set", dev, "up"]
              for ns in (a, b) for dev in ("lo", f"{ns}v")]
    try:
        for step in steps:
            r = subprocess.run(step, capture_output=True, text=True, timeout=30)
            if r.returncode:
                pytest.skip(f"cannot make network namespaces here ({' '.join(step)}: "
                            f"{r.stderr.strip()}): a container without CAP_SYS_ADMIN / "
                            "CAP_NET_ADMIN")
        agent = tmp_path / "netns-agent.sh"
        agent.write_text(AGENT.format(a=a, b=b))
        agent.chmod(0o755)
        forward = [x for v in ("PYTHONPATH", "MINIDL_NUM_THREADS") if v in ENV
                   for x in ("-x", v)]
        yield ["ip", "netns", "exec", a, shutil.which("mpirun") or "mpirun",
               "--allow-run-as-root", "--oversubscribe", "-H", "10.77.0.1,10.77.0.2", "-n", "2",
               "--mca", "plm_rsh_agent", str(agent), "--mca", "oob_tcp_if_include",
               "10.77.0.0/24", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include",
               "10.77.0.0/24", *forward]
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def test_two_network_namespaces_as_two_hosts_over_tcp_train_as_one_process(two_hosts,
                                                                          cli_runs, tmp_path):
    where = ("import os\n"
             "from minidl import distributed\n"
             "c = distributed.world()\n"
             "print(c.rank, c.size, c.local_size, os.readlink('/proc/self/ns/net'), flush=True)")
    r = _ok(_run([*two_hosts, sys.executable, "-c", where], cwd=tmp_path))
    ranks = sorted(line.split() for line in r.stdout.splitlines() if line[:1].isdigit())
    assert [x[:3] for x in ranks] == [["0", "2", "1"], ["1", "2", "1"]]  # 1 rank per host
    namespaces = {x[3] for x in ranks}  # each rank in its own network namespace
    assert len(namespaces) == 2 and os.readlink("/proc/self/ns/net") not in namespaces
    d, _ = cli_runs
    _ok(_run([*two_hosts, sys.executable, "-m", "minidl", *TRAIN, "--epochs", "1", "--out",
              "hosts"], cwd=tmp_path))
    _same_checkpoint(tmp_path / "hosts" / "checkpoint.npz", d / "one_1" / "checkpoint.npz")
