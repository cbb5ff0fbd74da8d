"""Data parallel over MPI: a thin layer over mpi4py (the way ChainerMN and Horovod do it).

    comm = minidl.distributed.world()     # the processes mpirun started, or this one alone
    comm.rank, comm.size                  # 0 <= rank < size
    comm.broadcast(flat.params)           # rank 0's values to every rank, in place
    comm.allreduce(flat.grads)            # the sum over ranks, in place: one MPI Allreduce
    solver = Solver(model, data, comm=comm, batch_size=128)   # 128 images per step in all

Run a script on K processes with ``mpirun -n K python script.py`` (on several machines:
``mpirun -H host1,host2 -n K ...``); ``mpirun -n K python -m minidl train ...`` trains one
model (see minidl.cli.train). A single process never imports mpi4py: ``world()`` is then a
SingleProcess (rank 0 of 1) whose collectives return their input. Under mpirun without mpi4py
``world()`` raises an ImportError that says how to install it.

What a data-parallel Solver does with a communicator (minidl.solver): parameters and running
statistics are broadcast from rank 0 once; every rank draws the same minibatch (the same seed)
and takes its 1/K share; the gradient buffer is summed with one Allreduce and divided by K;
the loss, the stop flag (Ctrl-C) and the accuracy counts are summed with one small Allreduce
each; every rank applies the same update; only rank 0 prints and writes files.

Faults: with more than one rank, ``world()`` installs a sys.excepthook that prints the
uncaught exception with the rank's number and then calls MPI_Abort, which ends every process
of the job (otherwise the other ranks would wait in their next collective forever). A rank that
is killed is noticed by mpirun itself, which ends the job.
"""
import os
import sys

import numpy as np

__all__ = ["Communicator", "MPICommunicator", "SingleProcess", "world", "as_communicator",
           "under_mpirun", "launcher_size", "install_abort_hook", "MPI_INSTALL_HINT"]

# Environment variables that MPI launchers set in every process they start: Open MPI's
# mpirun, MPICH/Intel MPI's Hydra, MVAPICH, and PMIx launchers (Open MPI 5, srun --mpi=pmix).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCHER_VARIABLES = _SIZE_VARIABLES + ("PMIX_RANK",)

MPI_INSTALL_HINT = ("pip install 'minidl[mpi]' (or pip install mpi4py; it needs an MPI library on "
                    "the machine, e.g. apt-get install openmpi-bin libopenmpi-dev)")

_FLOATS = (np.float32, np.float64)


def under_mpirun():
    """True when an MPI launcher (mpirun, mpiexec, srun with PMIx) started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


def launcher_size():
    """The number of processes the launcher says it started (None when it does not say)."""
    for v in _SIZE_VARIABLES:
        value = os.environ.get(v, "")
        if value.isdigit():
            return int(value)
    return None


def _import_mpi():
    """mpi4py.MPI (initialising MPI on first import), or an ImportError with the fix."""
    if "mpi4py.MPI" not in sys.modules:
        try:
            import mpi4py
        except ImportError as e:
            found = next((f"{v}={os.environ[v]}" for v in _LAUNCHER_VARIABLES
                          if v in os.environ), "no launcher variables")
            raise ImportError(f"minidl.distributed: this process was started by an MPI launcher "
                              f"({found}) but mpi4py is not installed: {MPI_INSTALL_HINT}") \
                from e
        # minidl calls MPI from the main thread only (its OpenMP threads never do).
        mpi4py.rc.thread_level = "funneled"
    try:
        from mpi4py import MPI
    except ImportError as e:  # mpi4py is there but its MPI library is not
        raise ImportError(f"minidl.distributed: mpi4py is installed but cannot load its MPI "
                          f"library ({e}); reinstall it against this machine's MPI: "
                          f"{MPI_INSTALL_HINT}") from e
    return MPI


class Communicator:
    """A group of processes that train one model together: ``rank`` (0 ... size - 1),
    ``size``, ``local_size`` (ranks on this machine), ``is_root`` (rank 0).

    The collectives must be called by every rank of the group in the same order. Buffers
    are C-contiguous NumPy arrays; ``allreduce`` takes float32 or float64 (the flat gradient
    buffer), ``broadcast`` any numeric dtype. SingleProcess and MPICommunicator implement it.
    """

    rank = 0
    size = 1
    local_size = 1

    @property
    def is_root(self):
        return self.rank == 0

    def broadcast(self, buffer, root=0):
        """Overwrite buffer (a C-contiguous array, the same shape and dtype on every rank)
        with root's values, in place. Returns buffer."""
        _check_buffer("Communicator.broadcast", "buffer", buffer, floats_only=False)
        self._check_root(root)
        self._broadcast(buffer, root)
        return buffer

    def allreduce(self, sendbuf, recvbuf=None):
        """The elementwise sum over ranks of sendbuf (float32 or float64, C-contiguous, the
        same shape and dtype on every rank), in one Allreduce: into recvbuf (preallocated,
        sendbuf's shape and dtype) when given, else in place into sendbuf. Returns the
        buffer that holds the sum."""
        owner = "Communicator.allreduce"
        _check_buffer(owner, "sendbuf", sendbuf)
        if recvbuf is not None:
            _check_buffer(owner, "recvbuf", recvbuf)
            if recvbuf.shape != sendbuf.shape or recvbuf.dtype != sendbuf.dtype:
                raise ValueError(f"{owner}: recvbuf is {recvbuf.dtype} {recvbuf.shape}, sendbuf "
                                 f"{sendbuf.dtype} {sendbuf.shape}; they must match")
            if np.shares_memory(sendbuf, recvbuf):
                raise ValueError(f"{owner}: recvbuf overlaps sendbuf; pass recvbuf=None to "
                                 "reduce in place")
        self._allreduce(sendbuf, recvbuf)
        return sendbuf if recvbuf is None else recvbuf

    def sum(self, values):
        """The sum over ranks of a few numbers (losses, counts, flags): a new float64 array
        of values' shape (one small Allreduce)."""
        buffer = np.array(values, dtype=np.float64, copy=True, order="C")
        return self.allreduce(buffer)

    def any(self, flag):
        """True on every rank when flag is true on at least one."""
        return bool(self.sum([1.0 if flag else 0.0])[0] > 0)

    def shard(self, n):
        """This rank's part of n items, slice(rank * n // size, (rank + 1) * n // size):
        contiguous, in rank order, sizes differing by at most one."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def barrier(self):
        """Wait until every rank has called barrier()."""

    def abort(self, status=1):
        """End every process of the group with exit status status (MPI_Abort)."""
        raise SystemExit(status)

    def _check_root(self, root):
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) \
                or not 0 <= root < self.size:
            raise ValueError(f"{type(self).__name__}: root must be a rank in [0, {self.size}), "
                             f"got {root!r}")

    def _broadcast(self, buffer, root):
        pass

    def _allreduce(self, sendbuf, recvbuf):
        if recvbuf is not None:
            np.copyto(recvbuf, sendbuf)

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcess(Communicator):
    """This process alone (rank 0 of 1): broadcast leaves the buffer as it is, allreduce
    returns its input (copied into recvbuf when given). Needs no MPI."""


class MPICommunicator(Communicator):
    """An mpi4py communicator (e.g. ``MPI.COMM_WORLD``). Made by every rank together (it
    asks MPI which ranks share this machine); with more than one rank it installs the abort
    hook (install_abort_hook)."""

    def __init__(self, mpi_comm):
        MPI = _import_mpi()
        if not isinstance(mpi_comm, MPI.Comm):
            raise TypeError(f"MPICommunicator: expected an mpi4py communicator, got "
                            f"{type(mpi_comm).__name__}")
        self._MPI = MPI
        self.comm = mpi_comm
        self.rank = mpi_comm.Get_rank()
        self.size = mpi_comm.Get_size()
        node = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()
        node.Free()
        if self.size > 1:
            install_abort_hook(self)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, status=1):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed stream must not stop the abort
                pass
        self.comm.Abort(int(status))

    def _broadcast(self, buffer, root):
        self.comm.Bcast(buffer, root=root)

    def _allreduce(self, sendbuf, recvbuf):
        MPI = self._MPI
        if recvbuf is None:
            self.comm.Allreduce(MPI.IN_PLACE, sendbuf, op=MPI.SUM)
        else:
            self.comm.Allreduce(sendbuf, recvbuf, op=MPI.SUM)


def _check_buffer(owner, name, a, floats_only=True):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{owner}: {name} must be a NumPy array, got {type(a).__name__}")
    if floats_only and a.dtype.type not in _FLOATS:
        raise TypeError(f"{owner}: {name} must be float32 or float64, got {a.dtype} {a.shape}")
    if not floats_only and a.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: {name} must be a numeric array, got {a.dtype} {a.shape}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{owner}: {name} ({a.dtype} {a.shape}) must be C-contiguous and "
                         "writeable (MPI reads and writes it as one block of memory)")


_world = None


def world():
    """The communicator of this job: every process mpirun started (an MPICommunicator over
    MPI.COMM_WORLD, created on the first call, which every rank must make), or SingleProcess
    when no MPI launcher started this process (mpi4py is then never imported).

    Raises ImportError (saying how to install mpi4py) under mpirun without mpi4py, and
    RuntimeError when mpi4py's MPI is not the launcher's (each process would believe it is
    alone). With more than one rank it installs the abort hook (install_abort_hook)."""
    global _world
    if _world is None:
        if not under_mpirun():
            _world = SingleProcess()
        else:
            MPI = _import_mpi()
            comm = MPICommunicator(MPI.COMM_WORLD)
            expected = launcher_size()
            if expected is not None and expected != comm.size:
                raise RuntimeError(
                    f"minidl.distributed: the launcher started {expected} processes but "
                    f"mpi4py's MPI sees {comm.size} ({MPI.Get_library_version().splitlines()[0]}"
                    f"): mpi4py was built for another MPI than this mpirun; reinstall it "
                    f"against the mpirun you use (pip install --no-binary mpi4py --force-"
                    f"reinstall mpi4py)")
            _world = comm
    return _world


def as_communicator(comm):
    """A Communicator from None (SingleProcess), a Communicator (itself) or an mpi4py
    communicator (wrapped; every rank must make this call)."""
    if comm is None:
        return SingleProcess()
    if isinstance(comm, Communicator):
        return comm
    if "mpi4py.MPI" in sys.modules and isinstance(comm, sys.modules["mpi4py.MPI"].Comm):
        return MPICommunicator(comm)
    raise TypeError(f"comm must be None, a minidl.distributed.Communicator or an mpi4py "
                    f"communicator, got {type(comm).__name__}")


def install_abort_hook(comm):
    """Make an uncaught exception on this rank end the whole job: sys.excepthook prints
    'minidl.distributed: rank R of K failed' and the traceback (through the hook that was
    there before), then calls comm.abort(1) (MPI_Abort, which makes mpirun end every rank).
    Without it the other ranks would wait in their next collective forever. Installed once."""
    previous = sys.excepthook
    if getattr(previous, "_minidl_abort", False):
        return

    def hook(kind, value, traceback):
        try:
            sys.stderr.write(f"minidl.distributed: rank {comm.rank} of {comm.size} failed "
                             f"({kind.__name__}); ending the job\n")
            previous(kind, value, traceback)
        finally:
            comm.abort(1)

    hook._minidl_abort = True
    sys.excepthook = hook
