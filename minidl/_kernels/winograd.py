"""Winograd convolution for 3x3 kernels, stride 1, dilation 1, one group: F(2x2,3x3) and
F(4x4,3x3) (Lavin & Gray 2016), forward, data gradient and filter gradient, float32 and
float64. The kernels are in ``_winograd.pyx`` (transforms in C: ``_winograd_impl.h``).

Symbols: N images, C input channels, F filters, an H x W input, pads ph, pw (any >= 0 whose
output is at least 1x1, padding beyond the input included), an HO x WO output
(HO = H + 2*ph - 2, WO = W + 2*pw - 2), tiles of m x m outputs (m = 2 or 4), alpha = m + 2.

* ``winograd_forward(x, w, b, m, ph, pw)`` -> out (N, F, HO, WO);
* ``winograd_backward_data(dout, w, x_shape, m, ph, pw)`` -> dx (N, C, H, W): the 3x3
  stride-1 convolution of dout with the flipped, in/out-transposed weights, its output
  (0, 0) reading dout at (ph - 2, pw - 2) (dout padded by 2 - ph, or cropped when ph > 2),
  run by the forward machinery;
* ``winograd_backward_filter(x, dout, m, ph, pw, with_db=False)`` -> dw (F, C, 3, 3)
  (and db (F,)): G^T [sum over tiles (A dY A^T) (.) (B^T d B)] G;
* ``winograd_available()``; ``winograd_workspace_bytes(kind, x_shape, f, m, ph, pw, dtype)``.

The convolution plan (``convolution.py``: algorithms ``winograd_2x2`` / ``winograd_4x4``)
calls ``run_forward``, ``run_backward_data`` and ``run_backward_filter``, the same passes
without the argument checks it has made already, and accounts its workspace with
``training_workspace_bytes``.

Each checks its arguments first (ValueError naming the function, argument and shapes;
TypeError for a dtype that is not float32/float64 or a dtype mix, as the other kernels).

Design, as measured on a shared 2-core AMD Zen 5 (AVX-512) machine:

* Tiles are processed in blocks of whole tile rows (about BLOCK_TILES tiles). A block's
  tile-wise products are alpha^2 GEMMs U[xi] (F, C) @ V[xi] (C, B), through the BLAS called
  single-threaded from the OpenMP threads. With OpenBLAS's own AVX-512 kernels they ran at
  90-200 GFLOP/s on one core. In float32 on an AVX-512 CPU whose BLAS runs no AVX-512 code
  (e.g. OpenBLAS held to its Haswell kernels by OPENBLAS_CORETYPE, as on the development
  machine, where it ran them at 50-85 GFLOP/s) a register-blocked kernel of
  ``_winograd.h`` (12 x 32 blocks, masked edges) takes over: 90-160 GFLOP/s there, and as
  fast as OpenBLAS's AVX-512 kernels or up to 30% slower, hence the rule
  (set_simd_products). One multi-threaded NumPy matmul over the alpha^2 matrices measured
  no faster than one BLAS call per tile element on the OpenMP threads and leaves the
  transforms serial; it remains the fallback without scipy's BLAS.
* Many blocks: the blocks are spread over the threads, each transforming, multiplying and
  transforming back its own block in its cache ("blocks"). Fewer than MIN_BLOCKS_PER_THREAD
  blocks per thread (e.g. 14x14 planes at N=8, or N=1): one block at a time with each phase
  parallel, the GEMMs over the alpha^2 tile elements ("phases").
* The transforms run the first 1-D transform along contiguous plane rows and the second
  over the tiles of a tile row; the tile elements of V, M and Z are padded apart so that
  their alpha^2 streams do not share cache sets (a 6x difference at 4 KB multiples).
* The filter gradient sums the products of fixed block ranges into per-slot S, added in a
  fixed order: the same result for every schedule at a given thread count.

Accuracy: float32 Winograd against float64 convolution, N(0, 1) inputs, weights and output
gradients, pad 1, max |error| / max |reference|, the worst of three seeds:

===================================  =========  =========  =========
                                     forward    dx         dw
===================================  =========  =========  =========
C = F = 64, 16x16, N=4: F(2x2,3x3)   3.9e-7     3.6e-7     4.3e-7
C = F = 64, 16x16, N=4: F(4x4,3x3)   7.0e-6     7.0e-6     6.0e-6
C = F = 64, 16x16: im2col + GEMM     6.2e-7     2.4e-7     4.4e-7
C = F = 256, 16x16, N=2: F(2x2)      7.0e-7     7.3e-7     6.4e-7
C = F = 256, 16x16, N=2: F(4x4)      1.2e-5     1.5e-5     4.7e-6
C = F = 64, 56x56, N=2: F(4x4)       7.0e-6     8.3e-6     3.6e-6
===================================  =========  =========  =========

F(2x2) is as accurate as im2col. F(4x4)'s larger error comes from its transforms'
coefficients (up to 5 in B^T and 8 in A^T, at the points +-2) and grows about as sqrt(C);
tests/test_winograd.py asserts 5e-6 (F(2x2)) and 5e-5 (F(4x4)) at C = 64, within the
issue's 1e-4. (Other points, e.g. 0, +-1, 1/2, -2, measured about 2x more accurate in a NumPy
model but need denser transforms; not used.) float64 Winograd is accurate to ~2e-14 and
runs only when asked for.
"""
import numpy as np

from . import (_SingleThreadedBlas, _check_dtypes, _float_array, _images_blas, direct_available,
               get_parallel_min_work, get_workspace_limit, omp_max_threads, workspace)

try:
    from . import _winograd
except ImportError:  # pragma: no cover - no compiler: minidl._kernels says so once
    _winograd = None

# Tiles per block (whole tile rows, at least one): a block's tile-wise products are alpha^2
# GEMMs with this many columns, and its transformed input and products (alpha^2 * (C + F)
# values per tile) should stay in a core's caches. Measured (1 thread, AVX-512 OpenBLAS):
# 64 tiles were the best or within 15% of it for 32 and 64 channels, but 256-channel layers
# need wider GEMMs (OpenBLAS ran them at 88 GFLOP/s with 56 columns, 131 with 128: forward
# 10.0 -> 7.5 ms on 256->256 14x14 N=8), hence at least max(C, F) / 2 tiles.
BLOCK_TILES = 64
# The most bytes a block's V and M (or Z) may take, whatever the above asks (and at most
# minidl._kernels.get_workspace_limit()).
BLOCK_MAX_BYTES = 16 * 2**20
# Below this many blocks per thread the "phases" schedule runs instead: one block at a time,
# each phase parallel (the GEMMs over the alpha^2 tile elements), blocks of up to
# PHASE_TILES tiles (and BLOCK_MAX_BYTES).
MIN_BLOCKS_PER_THREAD = 2
PHASE_TILES = 256
# The phases' transforms take runs of about PHASE_RUN_TILES tiles per call; the parallel
# pieces are (channel, run) pairs.
PHASE_RUN_TILES = 64
# The filter gradient's blocks schedule sums into one S (alpha^2 * F * C values) per slot, a
# fixed range of blocks each (so the sum does not depend on the schedule). Up to this many
# slots per thread keep the threads busy when one of them is held up, as long as the slots'
# S take at most FILTER_SLOTS_BYTES (never fewer slots than threads).
FILTER_SLOTS_PER_THREAD = 4
FILTER_SLOTS_BYTES = 16 * 2**20
# The GEMMs of the phases schedule: "openmp" (one GEMM per tile element, spread over the
# OpenMP threads) or "numpy" (one multi-threaded matmul over the alpha^2 matrices; used when
# scipy's BLAS is not available to call from the kernels).
PHASE_GEMM = "openmp"


# OpenBLAS core types whose SGEMM kernels use AVX-512 (threadpoolctl's "architecture").
AVX512_OPENBLAS_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_simd_products = None  # None: not decided yet (see _products_kernel)


def winograd_available():
    """True when the compiled Winograd kernels are built and usable now."""
    return _winograd is not None and direct_available()


def _blas_ready():
    return bool(_images_blas())


def set_simd_products(flag):
    """Run the float32 tile-wise products on minidl's AVX-512 kernel (True, where the CPU has
    AVX-512), on the BLAS (False), or decide as by default (None): the kernel only when the
    BLAS does not run AVX-512 code itself. Returns the previous setting (None: undecided).

    Measured on AMD Zen 5: OpenBLAS's own AVX-512 (SkylakeX) kernels were as fast as this
    kernel or up to 30% faster on these products; OpenBLAS held to its AVX2 kernels
    (OPENBLAS_CORETYPE=Haswell) was 1.5-2.5x slower than it.
    """
    global _simd_products
    old, _simd_products = _simd_products, None if flag is None else bool(flag)
    if _winograd is not None and flag is not None:
        _winograd.set_simd_products(bool(flag))
    return old


def _products_kernel():
    """Decide once whether the float32 products run the AVX-512 kernel (see
    set_simd_products): when the CPU has AVX-512 and the BLAS found at run time is not an
    OpenBLAS running AVX-512 kernels (any other BLAS, or none, counts as without)."""
    global _simd_products
    if _simd_products is None:
        lib = _images_blas()
        arch = str(getattr(lib, "architecture", "") or "").lower() if lib else ""
        blas_avx512 = bool(lib) and lib.internal_api == "openblas" and arch in AVX512_OPENBLAS_CORES
        _simd_products = _winograd.simd_products_available() and not blas_avx512
        _winograd.set_simd_products(_simd_products)
    return _simd_products


# --------------------------------------------------------------------------- checks

def _int_arg(fn, name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{fn}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _common_args(fn, m, ph, pw):
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m not in (2, 4):
        raise ValueError(f"{fn}: m must be 2 (F(2x2,3x3)) or 4 (F(4x4,3x3)), got {m!r}")
    if not winograd_available():
        raise RuntimeError(f"{fn}: the compiled Winograd kernels are not available (not "
                           f"built, or use_compiled(False))")
    return int(m), _int_arg(fn, "ph", ph, 0), _int_arg(fn, "pw", pw, 0)


def _out_size(fn, h, w, ph, pw):
    ho, wo = h + 2 * ph - 2, w + 2 * pw - 2
    if ho < 1 or wo < 1:
        raise ValueError(f"{fn}: a 3x3 kernel does not fit an input of {h}x{w} padded by "
                         f"({ph}, {pw}): the output would be {ho}x{wo}")
    return ho, wo


def _check_weights(fn, w, c, x_name, x_shape):
    if w.shape[2:] != (3, 3):
        raise ValueError(f"{fn}: w must be (F, C, 3, 3), got shape {w.shape}")
    if w.shape[1] != c:
        raise ValueError(f"{fn}: w {w.shape} has {w.shape[1]} input channels but {x_name} "
                         f"{tuple(x_shape)} has {c}")


# --------------------------------------------------------------------------- schedule

class _Schedule:
    """How one Winograd pass runs: tiling, schedule and workspaces (shapes in values).

    kind: "forward" or "data" (channels c in, f out) or "filter"; (ho, wo) the plane the
    tiles cover (the output of the convolution that is run).
    """

    def __init__(self, kind, n, c, f, ho, wo, m, itemsize, block_rows=None):
        A2 = (m + 2) ** 2
        self.m, self.th, self.tw = m, -(-ho // m), -(-wo // m)
        self.rows = n * self.th  # tile rows in all
        work = n * c * f * 9 * ho * wo  # multiply-adds of the direct convolution
        threads = 1 if work < get_parallel_min_work() else max(1, omp_max_threads())
        row_bytes = A2 * (c + f) * self.tw * itemsize  # V and M (or Z) of one tile row
        max_rows = max(1, min(BLOCK_MAX_BYTES, get_workspace_limit()) // row_bytes)
        if block_rows is None:
            tiles = max(BLOCK_TILES, max(c, f) // 2)
            per_block = max(1, min(max_rows, -(-tiles // self.tw)))
            blocks = -(-self.rows // per_block)
            if _blas_ready() and (threads == 1 or blocks >= MIN_BLOCKS_PER_THREAD * threads):
                block_rows = per_block
            else:
                block_rows = 0
        if block_rows == 0:
            self.mode = "phases"
            self.block_rows = max(1, min(self.rows, max_rows, -(-PHASE_TILES // self.tw)))
            self.threads = threads
            # the transforms take runs of about PHASE_RUN_TILES tiles
            self.chunk_rows = max(1, min(self.block_rows, -(-PHASE_RUN_TILES // self.tw)))
        else:
            self.mode = "blocks"
            self.block_rows = min(block_rows, self.rows)
            self.threads = max(1, min(threads, -(-self.rows // self.block_rows)))
            self.chunk_rows = self.block_rows  # a thread transforms its whole block at once
        cols = self.block_rows * self.tw
        # tile elements of V and M (or Z) lie this far apart (see _winograd.xi_stride)
        self.vxs = _winograd.xi_stride(c * cols, itemsize)
        self.mxs = _winograd.xi_stride(f * cols, itemsize)
        scratch = _winograd.scratch_size(m, self.tw, self.chunk_rows * self.tw, max(c, f))
        slots = 1
        self.spaces = {  # name -> shape, allocated through minidl._kernels.workspace
            "wino_v": (self.threads if self.mode == "blocks" else 1, A2 * self.vxs),
            "wino_m": (self.threads if self.mode == "blocks" else 1, A2 * self.mxs),
            "wino_scratch": (self.threads, scratch),
        }
        if kind == "filter":
            if self.mode == "blocks":
                s_bytes = A2 * f * c * itemsize
                slots = max(self.threads, min(-(-self.rows // self.block_rows),
                                              FILTER_SLOTS_PER_THREAD * self.threads,
                                              FILTER_SLOTS_BYTES // s_bytes))
            self.spaces["wino_s"] = (slots, A2, f, c)
            self.spaces["wino_t"] = (self.threads, cols * c)  # one transposed V[xi]
        else:
            self.spaces["wino_u"] = (A2, f, c)

    def nbytes(self, itemsize):
        return sum(int(np.prod(s)) for s in self.spaces.values()) * itemsize

    def space(self, name, dtype):
        return workspace(name, self.spaces[name], dtype)

    def matrices(self, name, dtype, rows, r0, r1):
        """The (alpha^2, rows, (r1 - r0)*tw) view of workspace `name` for the block [r0, r1)
        of the phases schedule: contiguous matrices, tile elements xi_stride apart."""
        cols = (r1 - r0) * self.tw
        xs = self.vxs if name == "wino_v" else self.mxs
        flat = self.space(name, dtype).reshape(-1)[:(self.m + 2) ** 2 * xs]
        return flat.reshape(-1, xs)[:, :rows * cols].reshape(-1, rows, cols)


def _schedule_for(fn, kind, n, c, f, ho, wo, m, itemsize, block_rows):
    if block_rows is not None:
        block_rows = _int_arg(fn, "block_rows", block_rows, 0)
        if block_rows and not _blas_ready():
            raise RuntimeError(f"{fn}: block_rows > 0 needs scipy's BLAS")
    return _Schedule(kind, n, c, f, ho, wo, m, itemsize, block_rows)


def winograd_workspace_bytes(kind, x_shape, f, m, ph, pw, dtype=np.float32):
    """Bytes of scratch one call of a pass takes at the current thread count (kept between
    calls in minidl._kernels.workspace, per Python thread).

    kind: "forward" (x_shape (N, C, H, W), f filters, pads ph, pw), "data" (the data
    gradient of that forward) or "filter" (its filter gradient). Every pass returns a fresh
    output array on top of this.
    """
    fn = "winograd_workspace_bytes"
    if kind not in ("forward", "data", "filter"):
        raise ValueError(f"{fn}: kind must be 'forward', 'data' or 'filter', got {kind!r}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m not in (2, 4):
        raise ValueError(f"{fn}: m must be 2 or 4, got {m!r}")
    x_shape = tuple(x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x_shape must be (N, C, H, W), got {x_shape}")
    n, c, h, w = (_int_arg(fn, "x_shape", s, 0) for s in x_shape)
    f = _int_arg(fn, "f", f, 0)
    ho, wo = _out_size(fn, h, w, _int_arg(fn, "ph", ph, 0), _int_arg(fn, "pw", pw, 0))
    itemsize = np.dtype(dtype).itemsize
    return _schedule_of(kind, (n, c, h, w), f, int(m), ho, wo, itemsize).nbytes(itemsize)


def _schedule_of(kind, x_shape, f, m, ho, wo, itemsize):
    n, c, h, w = x_shape
    if kind == "data":  # the convolution of dout (N, F, HO, WO) into dx (N, C, H, W)
        return _Schedule(kind, n, f, c, h, w, m, itemsize)
    return _Schedule(kind, n, c, f, ho, wo, m, itemsize)


def training_workspace_bytes(x_shape, f, m, ph, pw, dtype):
    """Bytes of scratch a forward + backward (data and filter gradients) leaves allocated:
    the passes share their workspaces by name, each grown to the largest pass's need. For
    ConvPlan.workspace_bytes; the arguments are assumed valid (the plan checked them)."""
    itemsize = np.dtype(dtype).itemsize
    n, c, h, w = x_shape
    ho, wo = h + 2 * ph - 2, w + 2 * pw - 2
    sizes = {}
    for kind in ("forward", "data", "filter"):
        for name, shape in _schedule_of(kind, x_shape, f, m, ho, wo, itemsize).spaces.items():
            sizes[name] = max(sizes.get(name, 0), int(np.prod(shape)))
    return sum(sizes.values()) * itemsize


# --------------------------------------------------------------------------- passes

def _convolve(fn, kind, x, wt, b, out_shape, m, oy, ox, block_rows):
    """out (N, F, HO, WO) = x (N, C, H, W) convolved with wt (F, C, 3, 3) (+ b), output
    (0, 0) reading input (oy, ox): the machinery of the forward and data-gradient passes."""
    n, c = x.shape[:2]
    f, ho, wo = out_shape[1:]
    out = np.empty(out_shape, dtype=x.dtype)
    if out.size == 0:
        return out
    if x.size == 0 or wt.size == 0:  # no input channels or an empty plane: only the bias
        out[...] = 0 if b is None else b.reshape(1, -1, 1, 1)
        return out
    s = _schedule_for(fn, kind, n, c, f, ho, wo, m, x.itemsize, block_rows)
    u = s.space("wino_u", x.dtype)
    scratch = s.space("wino_scratch", x.dtype)
    _winograd.filter_transform(wt, u, scratch, m)
    if s.mode == "blocks":
        with _SingleThreadedBlas():
            _winograd.forward_blocks(x, u, b, out, s.space("wino_v", x.dtype),
                                     s.space("wino_m", x.dtype), scratch, m, oy, ox,
                                     s.block_rows, s.vxs, s.mxs)
        return out
    for r0 in range(0, s.rows, s.block_rows):
        r1 = min(r0 + s.block_rows, s.rows)
        v = s.matrices("wino_v", x.dtype, c, r0, r1)
        mm = s.matrices("wino_m", x.dtype, f, r0, r1)
        _winograd.input_block(x, v, scratch, m, oy, ox, ho, wo, r0, r1, s.chunk_rows)
        _phase_products(u, v, mm, s.threads)
        _winograd.output_block(mm, b, out, scratch, m, r0, r1, s.chunk_rows)
    return out


def _phase_products(u, v, mm, threads):
    if PHASE_GEMM == "openmp" and _blas_ready():
        with _SingleThreadedBlas():
            _winograd.products_block(u, v, mm, threads)
    else:
        np.matmul(u, v, out=mm)


def winograd_forward(x, w, b, m, ph, pw, *, block_rows=None):
    """3x3 stride-1 convolution by Winograd F(m x m, 3x3).

    x (N, C, H, W), w (F, C, 3, 3), b (F,) or None -> out (N, F, HO, WO) with
    HO = H + 2*ph - 2, WO = W + 2*pw - 2 (both must be >= 1). float32 or float64, one dtype.

    m: 2 (F(2x2,3x3), 2.25x fewer multiplies than direct) or 4 (F(4x4,3x3), 4x fewer, less
    accurate in float32; see the module docstring). block_rows: tile rows per block (None:
    chosen here; 0: the "phases" schedule), for tuning and tests.
    """
    fn = "winograd_forward"
    m, ph, pw = _common_args(fn, m, ph, pw)
    x = _float_array(fn, "x", x, 4)
    w = _float_array(fn, "w", w, 4)
    _check_dtypes(fn, x=x, w=w)
    _check_weights(fn, w, x.shape[1], "x", x.shape)
    if b is not None:
        b = _float_array(fn, "b", b, 1)
        _check_dtypes(fn, x=x, b=b)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{fn}: b {b.shape} must have one value per filter of w {w.shape}")
    _out_size(fn, x.shape[2], x.shape[3], ph, pw)
    return run_forward(x, w, b, m, ph, pw, block_rows=block_rows, fn=fn)


def run_forward(x, w, b, m, ph, pw, *, block_rows=None, fn="winograd_forward"):
    """winograd_forward without its argument checks, for callers that made them already
    (a ConvPlan): C-contiguous x, w (and b) of one float dtype, shapes that fit, m 2 or 4."""
    _products_kernel()
    n, _, h, wd = x.shape
    ho, wo = h + 2 * ph - 2, wd + 2 * pw - 2
    return _convolve(fn, "forward", x, w, b, (n, w.shape[0], ho, wo), m, -ph, -pw, block_rows)


def winograd_backward_data(dout, w, x_shape, m, ph, pw, *, block_rows=None):
    """Gradient to the input of winograd_forward: dout (N, F, HO, WO), w (F, C, 3, 3)
    -> dx (x_shape = (N, C, H, W)), with HO = H + 2*ph - 2 and WO = W + 2*pw - 2.

    It is the 3x3 stride-1 convolution of dout with w flipped and transposed to (C, F, 3, 3),
    padded by 2 - ph (dout cropped by ph - 2 when ph > 2), through the forward machinery.
    """
    fn = "winograd_backward_data"
    m, ph, pw = _common_args(fn, m, ph, pw)
    dout = _float_array(fn, "dout", dout, 4)
    w = _float_array(fn, "w", w, 4)
    _check_dtypes(fn, dout=dout, w=w)
    try:
        x_shape = tuple(_int_arg(fn, "x_shape", s, 0) for s in x_shape)
    except TypeError:
        raise ValueError(f"{fn}: x_shape must be (N, C, H, W), got {x_shape!r}") from None
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x_shape must be (N, C, H, W), got {x_shape}")
    n, c, h, wd = x_shape
    _check_weights(fn, w, c, "x_shape", x_shape)
    ho, wo = _out_size(fn, h, wd, ph, pw)
    if dout.shape != (n, w.shape[0], ho, wo):
        raise ValueError(f"{fn}: dout {dout.shape} must be {(n, w.shape[0], ho, wo)} for x "
                         f"{x_shape}, w {w.shape} and pad ({ph}, {pw})")
    return run_backward_data(dout, w, x_shape, m, ph, pw, block_rows=block_rows, fn=fn)


def run_backward_data(dout, w, x_shape, m, ph, pw, *, block_rows=None,
                      fn="winograd_backward_data"):
    """winograd_backward_data without its argument checks (see run_forward)."""
    _products_kernel()
    wt = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    return _convolve(fn, "data", dout, wt, None, tuple(x_shape), m, ph - 2, pw - 2, block_rows)


def winograd_backward_filter(x, dout, m, ph, pw, with_db=False, *, block_rows=None):
    """Gradient to the weights of winograd_forward: x (N, C, H, W), dout (N, F, HO, WO)
    -> dw (F, C, 3, 3), or (dw, db) with ``with_db`` (db (F,): dout summed per filter).

    dw = G^T [sum over images and tiles (A dY A^T) (.) (B^T d B)] G, the products summed by
    alpha^2 GEMMs per block of tiles.
    """
    fn = "winograd_backward_filter"
    m, ph, pw = _common_args(fn, m, ph, pw)
    x = _float_array(fn, "x", x, 4)
    dout = _float_array(fn, "dout", dout, 4)
    _check_dtypes(fn, x=x, dout=dout)
    n, c, h, wd = x.shape
    ho, wo = _out_size(fn, h, wd, ph, pw)
    if dout.shape[0] != n or dout.shape[2:] != (ho, wo):
        raise ValueError(f"{fn}: dout {dout.shape} must be (N={n}, F, {ho}, {wo}) for x "
                         f"{x.shape} and pad ({ph}, {pw})")
    return run_backward_filter(x, dout, m, ph, pw, with_db, block_rows=block_rows, fn=fn)


def run_backward_filter(x, dout, m, ph, pw, with_db=False, *, block_rows=None,
                        fn="winograd_backward_filter"):
    """winograd_backward_filter without its argument checks (see run_forward)."""
    _products_kernel()
    c, f = x.shape[1], dout.shape[1]
    dw = np.zeros((f, c, 3, 3), dtype=x.dtype)
    db = dout.sum(axis=(0, 2, 3)) if with_db else None
    if dw.size and x.size and dout.size:
        _filter_gradient(fn, x, dout, dw, m, -ph, -pw, block_rows)
    return (dw, db) if with_db else dw


def _filter_gradient(fn, x, dout, dw, m, oy, ox, block_rows):
    """dw (F, C, 3, 3) = G^T S G, S the products of the transformed x and dout tiles summed
    over every block (in a fixed order)."""
    n, c = x.shape[:2]
    f, ho, wo = dout.shape[1:]
    s = _schedule_for(fn, "filter", n, c, f, ho, wo, m, x.itemsize, block_rows)
    scratch = s.space("wino_scratch", x.dtype)
    parts = s.space("wino_s", x.dtype)
    parts.fill(0)
    if s.mode == "blocks":
        with _SingleThreadedBlas():
            _winograd.filter_grad_blocks(x, dout, parts, s.space("wino_v", x.dtype),
                                         s.space("wino_m", x.dtype), s.space("wino_t", x.dtype),
                                         scratch, m, oy, ox, s.block_rows, s.vxs, s.mxs)
        total = parts[0] if parts.shape[0] == 1 else parts.sum(axis=0)
    else:
        total = parts[0]
        for r0 in range(0, s.rows, s.block_rows):
            r1 = min(r0 + s.block_rows, s.rows)
            v = s.matrices("wino_v", x.dtype, c, r0, r1)
            z = s.matrices("wino_m", x.dtype, f, r0, r1)
            _winograd.input_block(x, v, scratch, m, oy, ox, ho, wo, r0, r1, s.chunk_rows)
            _winograd.grad_block(dout, z, scratch, m, r0, r1, s.chunk_rows)
            if PHASE_GEMM == "openmp" and _blas_ready():
                with _SingleThreadedBlas():
                    _winograd.filter_products_block(z, v, total, s.space("wino_t", x.dtype))
            else:
                total += np.matmul(z, v.transpose(0, 2, 1))
    _winograd.filter_grad_transform(np.ascontiguousarray(total), dw, scratch, m)
