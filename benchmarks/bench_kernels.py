"""Kernel and model benchmarks: minidl fast vs its NumPy path, the naive layers and PyTorch.

The same command as ``minidl bench`` (the timing is minidl/bench.py, the command line and the
markdown/chart output minidl/cli/bench.py); see RESULTS.md. Run from the repository root,
with NumPy's BLAS at its real speed:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py

It writes to runs/bench/; add --out benchmarks/results to re-record the committed results.
"""
import sys

from minidl.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
