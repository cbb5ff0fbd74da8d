"""minidl.distributed and the data-parallel pieces that one process can check: a single
process never imports mpi4py, mpirun without mpi4py says how to install it, the
communicator's checks, the Solver's shares, stop agreement and rank-0-only files (on a
stand-in communicator), and SyncBatchNorm's reduction hook. The real 2-rank runs are in
test_distributed_mpi.py."""
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

from minidl import distributed
from minidl.data import load_digits
from minidl.distributed import Communicator, SingleProcess
from minidl.layers import BatchNorm, SpatialBatchNorm
from minidl.models import TwoLayerNet
from minidl.nn import (BatchNorm1d, BatchNorm2d, Conv2d, ReLU, Sequential, SyncBatchNorm,
                       no_fusion)
from minidl.solver import Solver, read_checkpoint
from minidl.training import TrainingRun, stop_on_interrupt

LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMIX_RANK",
                      "MV2_COMM_WORLD_SIZE")
PLAIN_ENV = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}


def test_a_single_process_never_imports_mpi4py():
    code = ("import sys\n"
            "import minidl.cli.train, minidl.distributed as d\n"
            "from minidl.solver import Solver\n"
            "w = d.world()\n"
            "print(type(w).__name__, w.rank, w.size, d.under_mpirun(), 'mpi4py' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=PLAIN_ENV, timeout=120)
    assert r.stdout.split() == ["SingleProcess", "0", "1", "False", "False"], r.stderr


def test_under_mpirun_without_mpi4py_the_error_says_how_to_install_it(tmp_path):
    # A stand-in mpi4py that is not there, first on the path; the launcher's variables set.
    (tmp_path / "mpi4py.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mpi4py'\", name='mpi4py')\n")
    env = dict(PLAIN_ENV, OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="0",
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "minidl", "train", "--model", "fc", "--epochs",
                        "1", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip() == (
        "minidl train: error: minidl.distributed: this process was started by an MPI launcher "
        "(OMPI_COMM_WORLD_SIZE=2) but mpi4py is not installed: pip install 'minidl[mpi]' (or "
        "pip install mpi4py; it needs an MPI library on the machine, e.g. apt-get install "
        "openmpi-bin libopenmpi-dev)")
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- communicator

class Mirror(Communicator):
    """A stand-in rank of `size` whose every peer holds exactly this rank's values: a sum
    over ranks is size times the local values. stop_from: the sum of the Solver's
    [loss, stop] pair says another rank asked to stop from that call on (1-based)."""

    def __init__(self, rank, size, stop_from=None):
        self.rank, self.size, self.stop_from, self.pairs = rank, size, stop_from, 0

    def _allreduce(self, sendbuf, recvbuf):
        out = sendbuf if recvbuf is None else recvbuf
        np.multiply(sendbuf, self.size, out=out)

    def sum(self, values):
        total = super().sum(values)
        if len(total) == 2:
            self.pairs += 1
            if self.stop_from is not None and self.pairs >= self.stop_from:
                total[1] += 1
        return total


def test_single_process_collectives_return_their_input():
    comm = SingleProcess()
    a = np.arange(4.0)
    assert comm.allreduce(a) is a and comm.broadcast(a) is a
    np.testing.assert_array_equal(a, np.arange(4.0))
    recv = np.empty(4)
    assert comm.allreduce(a, recv) is recv
    np.testing.assert_array_equal(recv, a)
    assert comm.sum([1.5, 2]).tolist() == [1.5, 2.0] and comm.any(True) and not comm.any(0)
    assert comm.shard(7) == slice(0, 7) and comm.is_root and repr(comm) == \
        "SingleProcess(rank=0, size=1)"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("n", [0, 1, 10, 37])
def test_shards_cover_the_items_in_rank_order(size, n):
    shards = [Mirror(r, size).shard(n) for r in range(size)]
    assert [i for s in shards for i in range(n)[s]] == list(range(n))
    sizes = [len(range(n)[s]) for s in shards]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("call, error, words", [
    (lambda c: c.allreduce(np.arange(3)), TypeError,
     "Communicator.allreduce: sendbuf must be float32 or float64, got int64 (3,)"),
    (lambda c: c.allreduce(np.zeros((4, 4))[:, 0]), ValueError,
     "Communicator.allreduce: sendbuf (float64 (4,)) must be C-contiguous and writeable"),
    (lambda c: c.allreduce([1.0, 2.0]), TypeError,
     "Communicator.allreduce: sendbuf must be a NumPy array, got list"),
    (lambda c: c.allreduce(np.zeros(3), np.zeros(3, np.float32)), ValueError,
     "Communicator.allreduce: recvbuf is float32 (3,), sendbuf float64 (3,); they must match"),
    (lambda c: c.allreduce(*(lambda a: (a[:3], a[2:5]))(np.zeros(6))), ValueError,
     "Communicator.allreduce: recvbuf overlaps sendbuf"),
    (lambda c: c.broadcast(np.array(["a"])), TypeError,
     "Communicator.broadcast: buffer must be a numeric array, got <U1 (1,)"),
    (lambda c: c.broadcast(np.zeros(2), root=1), ValueError,
     "SingleProcess: root must be a rank in [0, 1), got 1"),
])
def test_collectives_check_their_buffers(call, error, words):
    with pytest.raises(error) as e:
        call(SingleProcess())
    assert words in str(e.value)


def test_as_communicator():
    assert isinstance(distributed.as_communicator(None), SingleProcess)
    comm = Mirror(0, 2)
    assert distributed.as_communicator(comm) is comm
    with pytest.raises(TypeError, match="comm must be None, a minidl.distributed.Communicator "
                                        "or an mpi4py communicator, got str"):
        distributed.as_communicator("world")


# --------------------------------------------------------------------------- the Solver

@pytest.fixture(scope="module")
def data():
    d = load_digits(dtype=np.float64)
    return {"X_train": d["X_train"][:80], "y_train": d["y_train"][:80],
            "X_val": d["X_val"][:30], "y_val": d["y_val"][:30]}


def _model():
    return TwoLayerNet(input_dim=64, hidden_dim=16, num_classes=10, weight_scale=0.1,
                       dtype=np.float64, seed=0)


class Recording:
    """A model that records the rows of every training minibatch it is given."""

    def __init__(self, model):
        self.model, self.batches = model, []
        self.params = model.params

    def loss(self, X, y=None):
        if y is not None:
            self.batches.append(X.copy())
        return self.model.loss(X, y)


def test_a_batch_the_ranks_do_not_divide_is_a_clear_error(data):
    with pytest.raises(ValueError) as e:
        Solver(_model(), data, batch_size=50, comm=Mirror(0, 3))
    assert str(e.value) == ("Solver: batch_size 50 is the whole minibatch, split over the 3 "
                            "ranks of the communicator, and 3 does not divide it; use a "
                            "multiple of 3 (e.g. 48 or 51)")


def test_each_rank_trains_on_its_share_of_the_same_minibatch(data):
    model = Recording(_model())
    solver = Solver(model, data, batch_size=20, num_epochs=1, verbose=False, seed=5,
                    comm=Mirror(1, 2))
    solver.train()
    rng = np.random.default_rng(5)
    for X in model.batches:  # rank 1 of 2: rows 10-19 of each minibatch the seed draws
        np.testing.assert_array_equal(X, data["X_train"][rng.permutation(80)[:20][10:]])
    assert len(model.batches) == 4


def test_with_peers_like_itself_a_rank_trains_as_one_process_on_its_share(data):
    # Rank 0 of 2 whose peer has its gradients: the mean is its own, so it trains exactly as
    # one process with batch 10 (the first half of the same permutation).
    shared = Solver(_model(), data, batch_size=20, num_epochs=2, verbose=False, seed=5,
                    comm=Mirror(0, 2), update_rule="adam")
    shared.train(return_best_params=False)
    alone = Solver(_model(), data, batch_size=10, num_epochs=1, verbose=False, seed=5,
                   update_rule="adam")
    alone.train(return_best_params=False)
    assert shared.loss_history == alone.loss_history
    np.testing.assert_array_equal(shared.optimizer.parameters().params,
                                  alone.optimizer.parameters().params)


def test_a_stop_asked_on_another_rank_stops_this_one_after_the_same_iteration(data, tmp_path):
    comm = Mirror(0, 2, stop_from=3)
    path = tmp_path / "c.npz"
    solver = Solver(_model(), data, batch_size=10, num_epochs=5, verbose=False, seed=5,
                    comm=comm, checkpoint_path=str(path))
    solver.train()
    assert solver.iteration == 3 and solver.stopped_early
    assert read_checkpoint(path)["iteration"] == 3  # written where every rank stopped


def test_only_rank_0_prints_and_writes_checkpoints(data, tmp_path, capsys):
    for rank in (1, 0):
        path = tmp_path / f"rank{rank}.npz"
        solver = Solver(_model(), data, batch_size=10, num_epochs=1, verbose=True,
                        print_every=1, seed=5, comm=Mirror(rank, 2), checkpoint_path=str(path),
                        checkpoint_name=str(tmp_path / f"course{rank}"))
        solver.train()
        assert solver.save_checkpoint(str(path)) == str(path)
        printed = capsys.readouterr().out
        written = sorted(p.name for p in tmp_path.iterdir() if str(rank) in p.name)
        if rank:
            assert printed == "" and written == []
        else:
            assert "(Epoch 1 / 1)" in printed
            assert written == ["course0_epoch_0.npz", "course0_epoch_1.npz", "rank0.npz"]


def test_time_limit_is_agreed_between_ranks(data):
    class Over(Mirror):  # another rank's clock says the limit is passed
        def any(self, flag):
            self.asked = True
            return True

    comm = Over(0, 2)
    solver = Solver(_model(), data, batch_size=10, num_epochs=5, verbose=False, seed=5,
                    comm=comm)
    solver.train(time_limit=1e9)
    assert comm.asked and solver.iteration == 1 and solver.stopped_early


# --------------------------------------------------------------------------- SyncBatchNorm

def _twice(buffer):
    """The reduction of two ranks that hold the same shard: statistics of [x; x]."""
    return 2 * buffer


@pytest.mark.parametrize("layer, shape", [(BatchNorm, (6, 4)), (SpatialBatchNorm, (3, 4, 5, 5))])
def test_the_layers_reduction_gives_the_statistics_and_gradient_of_the_whole_batch(layer, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3 + 2
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    whole_param = {"mode": "train", "unbiased_running_var": True}
    share_param = dict(whole_param)
    out, cache = layer.forward(np.concatenate([x, x]), gamma, beta, whole_param)
    out_s, cache_s = layer.forward(x, gamma, beta, share_param, reduce=_twice)
    dx, dgamma, dbeta = layer.backward(np.concatenate([dout, dout]), cache)
    dx_s, dgamma_s, dbeta_s = layer.backward(dout, cache_s)
    np.testing.assert_allclose(out_s, out[:len(x)], rtol=0, atol=1e-13)
    np.testing.assert_allclose(dx_s, dx[:len(x)], rtol=0, atol=1e-13)
    # dgamma, dbeta: this shard's sums (the data-parallel step sums them over ranks)
    np.testing.assert_allclose(2 * dgamma_s, dgamma, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(2 * dbeta_s, dbeta, rtol=1e-13, atol=1e-13)
    for key in ("running_mean", "running_var"):  # unbiased over the whole batch's count
        np.testing.assert_allclose(share_param[key], whole_param[key], rtol=1e-14)


def test_a_reduced_batch_needs_two_values_per_feature_in_all():
    x = np.ones((1, 3))
    BatchNorm.forward(x, np.ones(3), np.zeros(3), {"mode": "train"}, reduce=_twice)
    with pytest.raises(ValueError, match=r"BatchNorm: training mode needs more than one value "
                                         r"per feature to compute batch statistics, got 1 over "
                                         r"every process \(local x \(1, 3\)\)"):
        BatchNorm.forward(x, np.ones(3), np.zeros(3), {"mode": "train"}, reduce=lambda b: b)


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5, 5)])
def test_sync_batchnorm_in_one_process_is_batch_norm(shape):
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    plain = (BatchNorm1d if len(shape) == 2 else BatchNorm2d)(3).astype(np.float64)
    sync = SyncBatchNorm(3).astype(np.float64)
    for m in (plain, sync):
        m.load_state_dict({"weight": np.arange(1.0, 4.0), "bias": np.arange(3.0)},
                          strict=False)
    np.testing.assert_array_equal(sync.forward(x), plain.forward(x))
    np.testing.assert_array_equal(sync.backward(dout), plain.backward(dout))
    for k in ("weight", "bias"):
        np.testing.assert_array_equal(sync.grads[k], plain.grads[k])
    np.testing.assert_array_equal(sync.running_var, plain.running_var)
    assert list(sync.state_dict()) == list(plain.state_dict())


def test_sync_batchnorm_then_relu_in_a_container_keeps_the_whole_batchs_statistics():
    # Containers fuse BatchNorm2d + ReLU into one compiled layer that has no place for the
    # reduction; SyncBatchNorm + ReLU must still normalise with every rank's statistics.
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((3, 4, 5, 5)) * 3 + 1, rng.standard_normal((3, 4, 5, 5))
    whole = Sequential(BatchNorm2d(4, momentum=0.3), ReLU()).astype(np.float64)  # fused
    shard = Sequential(SyncBatchNorm(4, momentum=0.3, comm=Mirror(0, 2)),
                       ReLU()).astype(np.float64)
    out = whole.forward(np.concatenate([x, x]))
    dx = whole.backward(np.concatenate([dout, dout]))
    out_s = shard.forward(x)
    dx_s = shard.backward(dout)
    np.testing.assert_allclose(out_s, out[:len(x)], rtol=0, atol=1e-13)
    np.testing.assert_allclose(dx_s, dx[:len(x)], rtol=0, atol=1e-13)
    for k in ("0.weight", "0.bias"):  # this shard's sums: the step sums them over ranks
        np.testing.assert_allclose(2 * shard.grads[k], whole.grads[k], rtol=1e-13, atol=1e-13)
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(shard[0], k), getattr(whole[0], k), rtol=1e-14)
    with no_fusion():  # the same modules run one by one give the same numbers
        shard.zero_grad()
        np.testing.assert_array_equal(shard.forward(x), out_s)
        np.testing.assert_array_equal(shard.backward(dout), dx_s)


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_mode():
    model = Sequential(Conv2d(2, 3, 3, padding=1), BatchNorm2d(3, momentum=0.3),
                       BatchNorm2d(3, eps=1e-3))
    model.eval()
    before = model.state_dict()
    weight = model.params["1.weight"]
    comm = SingleProcess()
    same = SyncBatchNorm.convert_sync_batchnorm(model, comm)
    assert same is model
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds == ["Sequential", "Conv2d", "SyncBatchNorm", "SyncBatchNorm"]
    bn = model.modules()[2]
    assert bn.comm is comm and bn.momentum == 0.3 and not bn.training
    assert model.params["1.weight"] is weight  # the same arrays: nothing drawn again
    after = model.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    root = SyncBatchNorm.convert_sync_batchnorm(BatchNorm2d(4))
    assert isinstance(root, SyncBatchNorm) and root.comm is None
    assert pickle.loads(pickle.dumps(bn)).comm is None  # a communicator is not copied


def test_sync_bn_of_a_coursework_model_is_a_clear_error():
    with pytest.raises(ValueError) as e:
        TrainingRun({"model": "deepconvnet", "sync_bn": True, "num_train": 20}, 1)
    assert str(e.value) == ("sync_bn: deepconvnet is a coursework model whose batch norm runs "
                            "the course's layers on bn_params; SyncBatchNorm replaces the batch "
                            "norm of the zoo models (minidl.nn)")


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_stop_on_interrupt_handles_the_signals_it_is_given():
    class Running:
        is_running, stops = True, 0

        def request_stop(self):
            self.stops += 1

    solver = Running()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_interrupt(solver, signals=(signal.SIGINT, signal.SIGTERM)):
        os.kill(os.getpid(), signal.SIGTERM)
    assert solver.stops == 1
    assert signal.getsignal(signal.SIGTERM) is before
