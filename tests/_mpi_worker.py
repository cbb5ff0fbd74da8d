"""Run under ``mpirun -n 2`` by tests/test_distributed_mpi.py (not a test module itself).

    mpirun -n 2 python tests/_mpi_worker.py OUT_DIR

Every rank trains the cases of ``cases()`` with a data-parallel Solver over
minidl.distributed.world() in float64 and writes what it ended with to OUT_DIR/rank<r>.npz
(keys '<case>/<what>'); the test compares rank 0's with one process doing the same. The
models and data come from tests/_mpi_cases.py, which the test imports too.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _mpi_cases import (BATCH, CASES, SYNC_BN_SHARDS, digits, solver_for,  # noqa: E402
                        sync_bn_reference_input)

from minidl import distributed  # noqa: E402
from minidl._checkpoint import model_state  # noqa: E402
from minidl.nn import SyncBatchNorm  # noqa: E402


def main(out_dir):
    comm = distributed.world()
    assert comm.size == 2, comm
    results = {}

    # The collectives themselves.
    x = np.arange(5, dtype=np.float32) * (comm.rank + 1)
    results["comm/allreduce_in_place"] = comm.allreduce(x.copy())
    recv = np.empty(5)
    comm.allreduce(np.arange(5.0) * (comm.rank + 1), recv)
    results["comm/allreduce_into"] = recv
    results["comm/broadcast"] = comm.broadcast(np.full(3, comm.rank + 7, dtype=np.int64))
    results["comm/shard"] = np.array([comm.shard(7).start, comm.shard(7).stop])
    results["comm/local_size"] = np.array(comm.local_size)

    data = digits()
    for name in CASES:
        solver = solver_for(name, data, comm)
        solver.train(return_best_params=False)
        results[f"{name}/params"] = solver.optimizer.parameters().params
        results[f"{name}/loss_history"] = np.array(solver.loss_history)
        results[f"{name}/val_acc_history"] = np.array(solver.val_acc_history)
        results[f"{name}/val_acc_odd"] = np.array(
            solver.check_accuracy(data["X_val"][:35], data["y_val"][:35]))
        for k, v in model_state(solver.model)["buffers"].items():
            results[f"{name}/buffer/{k}"] = v

    # SyncBatchNorm on shards of different sizes (3 and 5 rows of one batch of 8).
    x, dout = sync_bn_reference_input()
    rows = SYNC_BN_SHARDS[comm.rank]
    bn = SyncBatchNorm(x.shape[1], comm=comm).astype(np.float64)
    bn.load_state_dict({"weight": np.linspace(0.5, 1.5, x.shape[1]),
                        "bias": np.linspace(-1, 1, x.shape[1])}, strict=False)
    results["syncbn/out"] = bn.forward(x[rows])
    results["syncbn/dx"] = bn.backward(dout[rows])
    grads = bn.flat_parameters().grads
    results["syncbn/grads"] = comm.allreduce(grads.copy())  # dgamma, dbeta summed
    results["syncbn/running_mean"] = bn.running_mean
    results["syncbn/running_var"] = bn.running_var

    assert BATCH % comm.size == 0
    np.savez(os.path.join(out_dir, f"rank{comm.rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
