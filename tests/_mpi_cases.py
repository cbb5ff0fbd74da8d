"""The training cases that tests/_mpi_worker.py runs on 2 ranks and that
tests/test_distributed_mpi.py runs in one process to compare (not a test module itself)."""
import numpy as np

from minidl.data import load_digits
from minidl.models import FullyConnectedNet
from minidl.nn import ClassifierModel, Optimizer, SyncBatchNorm, manual_seed
from minidl.solver import Solver

BATCH = 20          # the global minibatch: 10 images per rank on 2 ranks
NUM_TRAIN = 120     # 6 iterations in the one epoch
SEED = 3
# name -> (model, update rule, learning rate); 'resnet-sync' converts its batch norm to
# SyncBatchNorm (its one-process reference keeps BatchNorm2d); 'resnet-perrank' keeps
# BatchNorm2d on the ranks too (each rank normalises with its own share's statistics).
CASES = {
    "fc-sgd": ("fc", "sgd", 0.05),
    "fc-sgd_momentum": ("fc", "sgd_momentum", 0.05),
    "fc-adam": ("fc", "adam", 1e-2),
    "resnet-sync-sgd": ("resnet-sync", "sgd", 0.05),
    "resnet-sync-sgd_momentum": ("resnet-sync", "sgd_momentum", 0.02),
    "resnet-sync-adam": ("resnet-sync", "adam", 3e-3),
    "resnet-perrank-adam": ("resnet-perrank", "adam", 3e-3),
}
# SyncBatchNorm on uneven shards: rank 0 holds rows 0-2, rank 1 rows 3-7 of one batch.
SYNC_BN_SHARDS = (slice(0, 3), slice(3, 8))


def digits():
    d = load_digits(dtype=np.float64)
    return {"X_train": d["X_train"][:NUM_TRAIN], "y_train": d["y_train"][:NUM_TRAIN],
            "X_val": d["X_val"][:41], "y_val": d["y_val"][:41]}


def make_model(kind, comm=None, reference=False):
    """A float64 model with fixed initial weights: 'fc' (a coursework dict model, no batch
    norm) or a ResNet-8 of width 4 (zoo modules with batch norm)."""
    if kind == "fc":
        return FullyConnectedNet([16], input_dim=64, num_classes=10, weight_scale=0.1,
                                 dtype=np.float64, seed=0)
    from minidl.models.zoo import resnet_cifar

    manual_seed(0)
    module = resnet_cifar(num_classes=10, in_channels=1, depth=8, width=4, dtype=np.float64)
    if kind == "resnet-sync" and not reference:
        module = SyncBatchNorm.convert_sync_batchnorm(module, comm)
    return ClassifierModel(module)


def solver_for(name, data, comm=None, reference=False):
    kind, rule, lr = CASES[name]
    return Solver(make_model(kind, comm, reference), data, update_rule=rule,
                  optim_config={"learning_rate": lr}, batch_size=BATCH, num_epochs=1,
                  num_train_samples=None, num_val_samples=None, verbose=False, seed=SEED,
                  comm=comm)


def per_rank_reference(name, data, num_ranks=2):
    """What K ranks without SyncBatchNorm compute, in one process: K copies of the model
    (each with its own running statistics) take the same minibatches as the Solver draws
    them, each its 1/K share; the mean of their gradients updates the shared parameters.
    Returns (parameters, rank 0's buffers)."""
    kind, rule, lr = CASES[name]
    models = [make_model(kind, reference=True) for _ in range(num_ranks)]
    flats = [m.flat_parameters() for m in models]
    optimizer = Optimizer(models[0], rule, {"learning_rate": lr})
    rng = np.random.default_rng(SEED)
    X, y, share = data["X_train"], data["y_train"], BATCH // num_ranks
    for _ in range(len(y) // BATCH):
        mask = rng.permutation(len(y))[:BATCH]  # as Solver._sample draws it
        grads = []
        for k, (model, flat) in enumerate(zip(models, flats)):
            flat.params[...] = flats[0].params
            rows = mask[k * share:(k + 1) * share]
            model.loss(X[rows], y[rows])
            grads.append(flat.grads.copy())
        flats[0].grads[...] = sum(grads) / num_ranks
        optimizer.apply_update(flats[0])
    return flats[0].params, dict(models[0].module.named_buffers())


def sync_bn_reference_input():
    rng = np.random.default_rng(11)
    return rng.standard_normal((8, 3, 4, 4)) * 2 + 1, rng.standard_normal((8, 3, 4, 4))
