"""Kernel and model benchmarks: minidl fast vs its NumPy path, the naive layers and PyTorch.

The code lives in minidl/bench.py (also ``minidl bench``); see its docstring and RESULTS.md.
Run from the repository root, with NumPy's BLAS at its real speed:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py
"""
import sys

from minidl.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
