"""Convolution plans: a geometry validated once, its algorithm chosen once, then run many times.

As a oneDNN primitive or a cuDNN plan, a ``ConvPlan`` is the one place where a convolution's
sizes, output shape, multiply-add count, algorithm and workspace live. ``plan_conv`` builds it
from the arrays and the layer's ``conv_param`` (every check a kernel relies on happens here,
once) and caches it per geometry, dtype, thread count and algorithm setting, so that a training
loop validates each layer's geometry on its first call only. The layers (``FastConv``,
``Conv``), the ``minidl.nn`` modules, ``minidl.summary`` and ``minidl bench`` all read plans;
nothing else computes an output size or a multiply-add count.

Symbols: N images, C input channels, F filters, G groups, Cg = C/G and Fg = F/G channels per
group, KH x KW kernel, H x W input, HO x WO output, P = HO*WO, K = Cg*KH*KW.

Algorithms (``ConvPlan.algorithm``; the public family in parentheses):

* ``gemm_batched`` (gemm): im2col of a chunk of B images side by side, cols (G*K, B, P); per
  group one GEMM out[g] (Fg, B*P) = w[g] (Fg, K) @ cols[g]. The BLAS's own threads do the
  parallel part. Also the NumPy fallback when the kernels are not built.
* ``gemm_images`` (gemm): the same GEMMs one image at a time inside an OpenMP loop over images,
  each thread with its own column workspace and a one-thread BLAS (scipy's).
* ``gemm_packed`` (gemm): minidl's own GEMM (``_gemm``: packed panels, AVX-512 / AVX2
  micro-kernels) on blocks of output positions, parallel over (image, group, block) in one
  OpenMP loop (over (run of images, group) when an image has fewer positions than a block:
  the forward's blocks then hold several whole images); im2col writes each block straight
  into the GEMM's packed panels, where it stays in L2. Backward: dx parallel over (image, group), dw over pieces of its columns, so
  every result is summed in an order that does not depend on the thread count. The default
  whenever the kernels are built.
* ``gemm_1x1`` (gemm): 1x1, stride 1, no padding: x itself is the column matrix (the packed
  path reading x and writing dx directly).
* ``winograd_2x2`` / ``winograd_4x4`` (winograd): Winograd F(2x2,3x3) / F(4x4,3x3)
  (``winograd.py``) for 3x3, stride 1, dilation 1, one group, any padding: 2.25x / 4x fewer
  multiplies than the direct convolution, at float32 errors up to ~1e-6 / ~1e-5 relative
  (see winograd.py). All three passes (forward, data and filter gradients) run Winograd.
  'auto' takes them for float32 only, on the layers where they measured faster than
  gemm_packed (see WINOGRAD_* below); float64 runs them only when forced.
* ``direct_grouped`` (direct): the compiled grouped/depthwise kernel for thin groups
  (G > 1, Cg <= DIRECT_MAX_GROUP_CHANNELS), parallel over (image, group); depthwise backward in
  one pass per (image, channel).

The choice: ``set_conv_algorithm('auto' | 'gemm' | 'winograd' | 'direct')`` (or the
environment variable MINIDL_CONV_ALGO) forces a family wherever it can run (elsewhere 'auto'
decides); ``set_conv_autotune(True)`` (or MINIDL_CONV_AUTOTUNE=1), like
``torch.backends.cudnn.benchmark``, times every candidate once per plan and keeps the fastest.
float64 never takes an inexact algorithm unless one is forced.
"""
import math
import os
import time
from collections import OrderedDict

import numpy as np

from .._validate import (INDEX_LIMIT, check_param_keys, index_int, int_pair,  # noqa: F401
                         window_output_size)
from . import numpy_im2col

ALGORITHM_FAMILIES = ("auto", "gemm", "winograd", "direct")
CONV_PARAM_KEYS = ("stride", "pad", "dilation", "groups", "floor_mode")
FLOATS = (np.float32, np.float64)


# --------------------------------------------------------------------------- settings

def _env_algorithm():
    value = os.environ.get("MINIDL_CONV_ALGO", "auto").strip() or "auto"
    if value not in ALGORITHM_FAMILIES:
        raise ValueError(f"MINIDL_CONV_ALGO must be one of {', '.join(ALGORITHM_FAMILIES)}, "
                         f"got {value!r}")
    return value


def _env_flag(name):
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 0 or 1, got {os.environ[name]!r}")


_settings = {"algorithm": _env_algorithm(), "autotune": _env_flag("MINIDL_CONV_AUTOTUNE"),
             "force": None}
_PLANS = OrderedDict()
PLAN_CACHE_SIZE = 1024
_version = 0  # bumped by every setting that changes what a plan chooses


def settings_changed():
    """Forget every cached plan (called by each setting that a plan's choice depends on:
    the algorithm, autotuning, the thread count, the workspace limit, use_compiled)."""
    global _version
    _version += 1
    _PLANS.clear()


def settings_version():
    """A number that changes whenever a setting a plan depends on changes (modules that
    keep a plan compare it)."""
    return _version


def set_conv_algorithm(name):
    """Force a convolution algorithm family: 'gemm' (im2col + GEMM), 'winograd' (3x3 stride-1
    layers), 'direct' (grouped and depthwise kernels), or 'auto' (the default heuristic).

    A forced family runs wherever it can; other geometries keep the automatic choice. It also
    applies to float64, where 'auto' keeps exact algorithms. Returns the previous setting.
    MINIDL_CONV_ALGO sets it at import.
    """
    if name not in ALGORITHM_FAMILIES:
        raise ValueError(f"set_conv_algorithm: name must be one of "
                         f"{', '.join(map(repr, ALGORITHM_FAMILIES))}, got {name!r}")
    old, _settings["algorithm"] = _settings["algorithm"], name
    settings_changed()
    return old


def get_conv_algorithm():
    """The algorithm family set by set_conv_algorithm (default 'auto')."""
    return _settings["algorithm"]


def set_conv_autotune(flag):
    """Time every algorithm that can run a convolution the first time its geometry is seen,
    and keep the fastest for that plan (like ``torch.backends.cudnn.benchmark``). Returns the
    previous setting. MINIDL_CONV_AUTOTUNE=1 sets it at import."""
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"set_conv_autotune: flag must be True or False, got {flag!r}")
    old, _settings["autotune"] = _settings["autotune"], bool(flag)
    settings_changed()
    return old


def get_conv_autotune():
    return _settings["autotune"]


class forced_algorithm:
    """Context manager for tests and benchmarks: every plan made inside runs exactly
    ``algorithm`` (an error names the plans it cannot run)."""

    def __init__(self, algorithm):
        if algorithm not in _FORWARD:
            raise ValueError(f"forced_algorithm: unknown algorithm {algorithm!r}; expected one "
                             f"of {', '.join(sorted(_FORWARD))}")
        self.algorithm = algorithm

    def __enter__(self):
        self.old = _settings["force"]
        _settings["force"] = self.algorithm
        settings_changed()
        return self

    def __exit__(self, *exc):
        _settings["force"] = self.old
        settings_changed()


def cached_plans():
    """The plans cached now, most recently used last (for kernels_info and bench)."""
    return list(_PLANS.values())


# --------------------------------------------------------------------------- validation

def check_conv_param(layer, conv_param, floor_mode=False):
    """conv_param -> (stride, pad, dilation, groups, floor_mode) as plain ints/pairs.

    Keys: 'stride', 'pad' (the course's), 'dilation', 'groups', 'floor_mode' (minidl's);
    anything else (a typo such as 'strides') is an error rather than silently ignored."""
    check_param_keys(layer, "conv_param", conv_param, CONV_PARAM_KEYS)
    stride = int_pair(layer, "stride", conv_param.get("stride", 1))
    pad = int_pair(layer, "pad", conv_param.get("pad", 0), low=0)
    dilation = int_pair(layer, "dilation", conv_param.get("dilation", 1))
    groups = index_int(layer, "groups", conv_param.get("groups", 1), 1)
    fm = conv_param.get("floor_mode", floor_mode)
    if not isinstance(fm, (bool, np.bool_)):
        raise ValueError(f"{layer}: conv_param['floor_mode'] must be True or False, got {fm!r}")
    return stride, pad, dilation, groups, bool(fm)


def _freeze(value):
    """A hashable key for a param value that keeps types apart (1, 1.0 and True differ)."""
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(_freeze(v) for v in value)
    return (type(value).__name__, value)


# --------------------------------------------------------------------------- the plan

class ConvPlan:
    """One convolution geometry, validated: sizes, output shape, multiply-adds, algorithm.

    Attributes: N, C, H, W (input), F, G, KH, KW (weights (F, C/G, KH, KW)), sh, sw, ph, pw,
    dh, dw (stride, pad, dilation), HO, WO (output), dtype, has_bias, layer (the name errors
    use), algorithm (see the module docstring), threads (OpenMP threads of the per-image
    and packed paths), chunk (images per im2col chunk), block (output positions per block of
    the packed path), span (images per forward block of the packed path when an image has
    fewer positions than a block; 1: blocks within one image), dw_block (columns of dw per
    backward piece of the packed path), workspace_bytes (scratch memory it needs).
    """

    __slots__ = ("layer", "N", "C", "H", "W", "F", "G", "KH", "KW", "sh", "sw", "ph", "pw",
                 "dh", "dw", "HO", "WO", "dtype", "has_bias", "algorithm", "threads", "chunk",
                 "block", "span", "dw_block", "workspace_bytes", "tuned")

    @property
    def Cg(self):
        return self.C // self.G

    @property
    def Fg(self):
        return self.F // self.G

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        return (self.F, self.Cg, self.KH, self.KW)

    @property
    def out_shape(self):
        return (self.N, self.F, self.HO, self.WO)

    @property
    def macs_per_image(self):
        """Multiply-adds of one image's forward pass, counted as the lecture counts them:
        every output value costs Cg*KH*KW (the bias is not counted)."""
        return self.F * self.HO * self.WO * self.Cg * self.KH * self.KW

    @property
    def macs(self):
        """Multiply-adds of the forward pass over the whole batch."""
        return self.N * self.macs_per_image

    @property
    def family(self):
        """The public algorithm family: 'gemm', 'winograd' or 'direct'."""
        return self.algorithm.split("_")[0]

    def kernel_args(self):
        """(KH, KW, sh, sw, ph, pw, dh, dw, HO, WO): what the im2col kernels take."""
        return (self.KH, self.KW, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
                self.HO, self.WO)

    def describe(self):
        """A one-line summary of the plan (bench tables, kernels_info)."""
        return (f"{self.layer}: x {self.x_shape} w {self.w_shape} stride {self.sh},{self.sw} "
                f"pad {self.ph},{self.pw} dilation {self.dh},{self.dw} groups {self.G} "
                f"{np.dtype(self.dtype).name} -> {self.algorithm}"
                + (" (autotuned)" if self.tuned else ""))

    def __repr__(self):
        return f"ConvPlan({self.describe()})"


def conv_geometry(layer, x_shape, w_shape, has_bias, dtype, stride, pad, dilation, groups,
                  floor_mode):
    """A ConvPlan's validated sizes from shapes alone (no algorithm yet): what shape inference
    (minidl.nn, summary) needs. Raises ValueError/TypeError naming layer, argument and shapes."""
    x_shape, w_shape = tuple(int(s) for s in x_shape), tuple(int(s) for s in w_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: x must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{layer}: w must be 4-D (F, C // groups, KH, KW), got shape {w_shape}")
    p = ConvPlan()
    p.layer = layer
    p.N, p.C, p.H, p.W = x_shape
    p.F, cg, p.KH, p.KW = w_shape
    (p.sh, p.sw), (p.ph, p.pw), (p.dh, p.dw), p.G = stride, pad, dilation, groups
    for name, value, what in (("C", p.C, f"x {x_shape} has no input channels"),
                              ("H", p.H, f"x {x_shape} has height 0"),
                              ("W", p.W, f"x {x_shape} has width 0"),
                              ("F", p.F, f"w {w_shape} has no filters"),
                              ("KH", p.KH, f"w {w_shape} has kernel height 0"),
                              ("KW", p.KW, f"w {w_shape} has kernel width 0")):
        if value < 1:
            raise ValueError(f"{layer}: {what}; a convolution needs at least one")
    for name, value in (("x's batch size N", p.N), ("x's channels C", p.C),
                        ("x's height H", p.H), ("x's width W", p.W), ("w's filters F", p.F)):
        if value > INDEX_LIMIT:
            raise ValueError(f"{layer}: {name} {value} passes the kernels' 32-bit index range")
    G = p.G
    if p.C % G or p.F % G:
        raise ValueError(f"{layer}: groups={G} must divide both input channels {p.C} "
                         f"(x {x_shape}) and filters {p.F} (w {w_shape})")
    if cg != p.C // G:
        raise ValueError(f"{layer}: w has {cg} input channels per filter (w {w_shape}) but "
                         f"x has {p.C} channels / groups {G} = {p.C // G} (x {x_shape})")
    p.HO = window_output_size(layer, "height", p.H, p.KH, p.sh, p.ph, p.dh, floor_mode)
    p.WO = window_output_size(layer, "width", p.W, p.KW, p.sw, p.pw, p.dw, floor_mode)
    for what, value in (("output plane HO*WO", p.HO * p.WO),
                        ("column height C/G*KH*KW", p.Cg * p.KH * p.KW),
                        ("input plane H*W", p.H * p.W)):
        if value > INDEX_LIMIT:
            raise ValueError(f"{layer}: the {what} = {value} (x {x_shape}, w {w_shape}) passes "
                             f"the kernels' 32-bit index range ({INDEX_LIMIT})")
    p.dtype = np.dtype(dtype).type
    p.has_bias = bool(has_bias)
    p.algorithm, p.threads, p.chunk, p.workspace_bytes, p.tuned = None, 1, p.N, 0, False
    p.block = p.dw_block = 0
    p.span = 1
    return p


def _check_arrays(layer, x, w, b):
    for name, a in (("x", x), ("w", w)) + ((("b", b),) if b is not None else ()):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{layer}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.type not in FLOATS:
            raise TypeError(f"{layer}: {name} must be float32 or float64, got {a.dtype} "
                            f"(shape {a.shape})")
    for name, a in (("w", w), ("b", b)):
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{layer}: dtype mismatch: x is {x.dtype} {x.shape} but {name} is "
                            f"{a.dtype} {a.shape}; cast one of them")
    if x.ndim != 4:
        raise ValueError(f"{layer}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{layer}: w must be 4-D (F, C // groups, KH, KW), got shape {w.shape}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{layer}: b must have shape {(w.shape[0],)}, got {b.shape} (one "
                         f"value per filter of w {w.shape})")


def plan_conv(layer, x, w, b, conv_param, floor_mode=False):
    """The ConvPlan of ``layer`` for these arrays and conv_param, from the cache when this
    geometry (dtype, threads, algorithm setting) was planned before.

    x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None, all float32 or all float64.
    conv_param: 'stride', 'pad', 'dilation', 'groups', 'floor_mode' (default ``floor_mode``).
    Every argument check of a convolution happens here; ValueError/TypeError name the layer,
    the argument and the shapes."""
    _check_arrays(layer, x, w, b)
    try:
        key = (layer, x.shape, w.shape, b is not None, x.dtype.char, floor_mode, _version,
               _omp_threads(), tuple(sorted((k, _freeze(v)) for k, v in conv_param.items())))
        hash(key)
    except (AttributeError, TypeError):  # not a dict, or unhashable values: full check below
        key = None
    plan = _PLANS.get(key) if key is not None else None
    if plan is not None:
        _PLANS.move_to_end(key)
        return plan
    stride, pad, dilation, groups, fm = check_conv_param(layer, conv_param, floor_mode)
    plan = conv_geometry(layer, x.shape, w.shape, b is not None, x.dtype, stride, pad,
                         dilation, groups, fm)
    _choose(plan)
    if _settings["autotune"] and _settings["force"] is None and len(candidates(plan)) > 1:
        _autotune(plan, x, w, b)
    if key is not None:
        _PLANS[key] = plan
        if len(_PLANS) > PLAN_CACHE_SIZE:
            _PLANS.popitem(last=False)
    return plan


# --------------------------------------------------------------------------- choosing

# Grouped convolutions with at most this many input channels per group run the direct kernel
# (depthwise is 1); wider groups are GEMM-shaped enough for im2col + one GEMM per group.
DIRECT_MAX_GROUP_CHANNELS = 8
# The direct kernels copy each group's input into a padded buffer; padding that would make
# that buffer larger than this many times the input and output planes together (pad far
# beyond the kernel's reach) goes to im2col instead, whose workspace follows the output.
DIRECT_MAX_PADDED_RATIO = 4
# Depthwise layers (one input channel per group) take all three gradients in one pass over
# dout; False runs the separate dx and dw/db kernels instead.
DEPTHWISE_FUSED_BACKWARD = True
# Convolutions with at least this many output positions per image, and at least as many
# images as threads, run the per-image path (each OpenMP thread unfolds and multiplies whole
# images with a one-thread BLAS); smaller images batch several into one GEMM instead.
# Measured on a 2-core AVX-512 machine: 8x8 outputs (P = 64, ResNet-20's last stage) are
# already as fast per image at 1 thread and faster in backward, while 7x7 (P = 49, K = 2304)
# is 1.3x slower per image. Keeping a whole network on the OpenMP pool also matters at 2
# threads: a step that mixes this path with the NumPy-BLAS im2col path took twice as long,
# as OpenBLAS's spinning workers and the OpenMP team contend for the cores.
IMAGES_MIN_POSITIONS = 64
# ... and at least IMAGES_MIN_POSITIONS * IMAGES_MACS_PER_POSITION multiply-adds per image:
# below that the per-image GEMM calls cost more than they save (a 3->8 16x16 layer, 55K per
# image, is 10% slower per image; 16->16 8x8, 147K, is 20% faster).
IMAGES_MACS_PER_POSITION = 1024
# The batched path unfolds about this many bytes of columns at a time (at least one image): a
# chunk that stays in the CPU's cache makes im2col + GEMM markedly faster than one big column
# matrix streamed through memory. The hard bound is get_workspace_limit().
CHUNK_TARGET_BYTES = 8 * 2**20
# The batched path keeps the column matrix for backward only when it is at most this many
# bytes; otherwise backward unfolds x again (cheap next to the GEMMs).
CACHE_COLS_BYTES = 8 * 2**20
# The packed path multiplies blocks of this many output positions (in the forward, whole images
# when an image has fewer: _packed_span): each KC-row slice of a block's panels (KC x block)
# stays in L2 while the weights' panels stream past it, and the per-block costs (the weights
# read once per block, a C tile stored per block) are amortised. Measured on a 2-core Zen 5 (1 MB L2 per core), float32,
# forward + backward at 1 thread: 128 to 768 positions are within 5% of each other on the
# ResNet / AlexNet / coursework layers, 32 to 96 are 10-40% slower.
PACKED_BLOCK_POSITIONS = 384
# ... but at most this many bytes of panels per block (very tall im2col matrices, e.g.
# 512 channels x 3x3, get narrower blocks), and never fewer than PACKED_BLOCK_ALIGN positions
# (a multiple of the widest panel, 32 floats): blocks are multiples of it.
PACKED_BLOCK_BYTES = 4 * 2**20
PACKED_BLOCK_ALIGN = 64
# Winograd algorithm -> its output tile m (F(m x m, 3x3)).
WINOGRAD_TILE = {"winograd_2x2": 2, "winograd_4x4": 4}
# 'auto' runs float32 3x3 stride-1 layers (dilation 1, one group) with at least this many
# input channels by Winograd, F(4x4,3x3) on output planes of at least WINOGRAD_4X4_MIN_SIZE
# rows and columns, F(2x2,3x3) on smaller ones (a 4x4 tile there computes mostly padding).
# Measured on the shared 2-core Zen 5 (AVX-512), float32, 3x3 pad 1, ms forward + backward at
# 1 thread, median of 7 interleaved rounds (benchmarks/bench_winograd.py; the forward and
# backward columns and the 2-thread run are in docs/decisions.md):
#   layer                    N   gemm_packed  winograd_2x2  winograd_4x4
#   64ch 56x56               8      40.2          29.6          20.7
#   128ch 28x28              8      36.7          24.1          20.1
#   256ch 14x14              8      36.9          28.0          28.5
#   512ch 7x7                8      51.2          39.7          38.2
#   32ch 32x32 (coursework) 64      38.8          28.4          21.3
#   16ch 32x32 (ResNet-20)  64      15.9          12.0           9.5
#   32ch 16x16 (ResNet-20)  64      12.1           6.0           5.6
#   64ch 8x8 (ResNet-20)    64      10.8           5.9           4.4
#   64ch 4x4 / 2x2 / 1x1    64   5.2 / 3.6 / 2.8  2.1 / 0.9 / 0.8  1.6 / 1.6 / 1.5
#   64->8 / 8->16 32x32     64   50.6 / 9.0    27.9 / 7.7    23.5 / 6.5
#   8->64 32x32             64      19.8          24.8          20.1
#   6->32 / 4->32 32x32     64    9.8 / 8.0    13.3 / 12.2   10.2 / 9.6
#   3->64 32x32             64      10.3          22.8          17.4
# Below 8 input channels the transforms cost more than the products save (8->64 is a tie);
# F(4x4) is the faster tile or within 2% of F(2x2) from 4x4 output planes up.
WINOGRAD_MIN_CHANNELS = 8
WINOGRAD_4X4_MIN_SIZE = 4


def _kernels():
    from .. import _kernels  # the package: availability, threads, workspace bound
    return _kernels


def _omp_threads():
    return _kernels().omp_max_threads()


def _packed_span(N, P, block, G, threads, nr):
    """Images per forward block of the packed path. 1 when an image fills a block; else k
    whole images (k*P <= block) per block, k chosen for the GEMM's panels of nr columns: the
    fewest panel-widths on the busiest thread (the (run, group) pieces dealt to the least
    loaded thread in turn, as the dynamic schedule does), then the fewest panels in all (the
    last panel of a block is padded), then the largest k (the weights stream past once per
    block). The forward's sums do not depend on it. E.g. 8 images of 7x7, 384-wide blocks,
    32-wide panels: 4 images per block at 2 threads (2 x 7 panels), 7 at 1 thread."""
    if P >= block or N <= 1:
        return 1
    best = None
    for k in range(1, min(N, block // P) + 1):
        widths = [-(-min(k, N - n0) * P // nr) for n0 in range(0, N, k)] * G
        total = sum(widths)
        if len(widths) >= 8 * threads:  # many pieces: the schedule evens them out
            busiest = -(-total // threads)
        else:
            loads = [0] * threads
            for width in widths:
                loads[loads.index(min(loads))] += width
            busiest = max(loads)
        key = (busiest, total, -k)
        if best is None or key < best[0]:
            best = (key, k)
    return best[1]


def _is_1x1(p):
    return (p.KH, p.KW, p.sh, p.sw, p.ph, p.pw) == (1, 1, 1, 1, 0, 0)


def _direct_fits(p):
    padded = (p.H + 2 * p.ph) * (p.W + 2 * p.pw)
    return padded <= DIRECT_MAX_PADDED_RATIO * (p.H * p.W + p.HO * p.WO) + 4096


def _winograd_fits(p):
    """Winograd's geometry (the kernels take any padding whose output is at least 1x1, which
    the plan has checked already)."""
    return ((p.KH, p.KW, p.sh, p.sw, p.dh, p.dw, p.G) == (3, 3, 1, 1, 1, 1, 1)
            and _kernels().winograd_available())


def runnable(p):
    """The algorithms that can run plan p on this build (compiled kernels, scipy's BLAS),
    inexact ones (Winograd) included: candidates() says which may be chosen."""
    k = _kernels()
    if not k.use_compiled():
        return ["gemm_batched"]  # the NumPy im2col path
    out = ["gemm_batched", "gemm_packed"]
    if _is_1x1(p):
        out.append("gemm_1x1")
    if _winograd_fits(p):
        out.extend(WINOGRAD_TILE)
    if k.images_available():
        out.append("gemm_images")
    if p.G > 1 and _direct_fits(p):
        out.append("direct_grouped")
    return out


def _images_worthwhile(p):
    return (p.HO * p.WO >= IMAGES_MIN_POSITIONS and p.N >= _omp_threads()
            and p.macs_per_image >= IMAGES_MIN_POSITIONS * IMAGES_MACS_PER_POSITION)


def _winograd_tile(p):
    """The Winograd algorithm the heuristic would run plan p with (see WINOGRAD_*)."""
    small = min(p.HO, p.WO) < WINOGRAD_4X4_MIN_SIZE
    return "winograd_2x2" if small else "winograd_4x4"


def _preferred(p, options):
    """The heuristic's pick among options (the candidates: runnable algorithms, maybe of one
    family). Winograd only where it measured faster than gemm_packed (float32: float64 plans
    have it among their options only when the 'winograd' family is forced)."""
    if "direct_grouped" in options and p.Cg <= DIRECT_MAX_GROUP_CHANNELS:
        return "direct_grouped"
    if "gemm_1x1" in options:
        return "gemm_1x1"
    winograd = _winograd_tile(p)
    if winograd in options and (p.C >= WINOGRAD_MIN_CHANNELS or "gemm_packed" not in options):
        return winograd
    if "gemm_packed" in options:
        return "gemm_packed"
    if "gemm_images" in options and _images_worthwhile(p):
        return "gemm_images"
    return "gemm_batched" if "gemm_batched" in options else options[0]


def candidates(p):
    """What the heuristic and autotuning choose from for plan p: the runnable algorithms of
    the forced family, or all of them; float64 keeps to exact algorithms unless the family
    forced is 'winograd'."""
    family = _settings["algorithm"]
    options = [a for a in runnable(p)
               if a not in WINOGRAD_TILE or p.dtype == np.float32 or family == "winograd"]
    forced = [a for a in options if a.split("_")[0] == family]
    return forced or options


def _choose(p):
    """Set p.algorithm (and its threads/chunk/workspace) from the setting and heuristics."""
    options = runnable(p)
    if _settings["force"] is not None:  # tests: one exact algorithm
        if _settings["force"] not in options:
            raise ValueError(f"{p.layer}: algorithm {_settings['force']!r} cannot run "
                             f"{p.describe()}; runnable: {options}")
        return _use(p, _settings["force"])
    _use(p, _preferred(p, candidates(p)))


def _use(p, algorithm):
    k = _kernels()
    p.algorithm = algorithm
    itemsize = np.dtype(p.dtype).itemsize
    K = p.Cg * p.KH * p.KW
    if algorithm == "gemm_batched":
        per_image = p.C * p.KH * p.KW * p.HO * p.WO * itemsize
        budget = min(k.get_workspace_limit(), CHUNK_TARGET_BYTES)
        p.chunk = max(1, min(p.N, budget // max(per_image, 1)))
        p.threads = 1
        p.workspace_bytes = 2 * p.chunk * per_image + p.F * p.chunk * p.HO * p.WO * itemsize
    elif algorithm == "gemm_images":
        per_image = p.G * K * p.HO * p.WO * itemsize
        work = p.macs
        if work < k.get_parallel_min_work():
            p.threads = 1
        else:
            p.threads = max(1, min(p.N, _omp_threads(),
                                   k.get_workspace_limit() // max(2 * per_image, 1)))
        p.chunk = p.N
        p.workspace_bytes = 2 * p.threads * per_image
    elif algorithm in WINOGRAD_TILE:
        # the Winograd passes pick their own tiling and threads from the same settings
        p.threads = 1 if p.macs < k.get_parallel_min_work() else _omp_threads()
        p.chunk = p.N
        p.workspace_bytes = 0 if p.N == 0 else k.winograd.training_workspace_bytes(
            p.x_shape, p.F, WINOGRAD_TILE[algorithm], p.ph, p.pw, p.dtype)
    elif algorithm in ("gemm_packed", "gemm_1x1"):
        P = p.HO * p.WO
        p.threads = 1 if p.macs < k.get_parallel_min_work() else _omp_threads()
        block = min(PACKED_BLOCK_POSITIONS, PACKED_BLOCK_BYTES // max(K * itemsize, 1))
        block = max(1, block // PACKED_BLOCK_ALIGN) * PACKED_BLOCK_ALIGN
        p.block = max(1, min(P, block))
        nr = k.gemm_info()[np.dtype(p.dtype).name][1]
        p.span = 1 if _is_1x1(p) else _packed_span(p.N, P, block, p.G, p.threads, nr)
        # one dw piece per thread: dw's columns split evenly (the sums do not depend on it)
        p.dw_block = -(-K // p.threads)
        weights, per_thread = _packed_workspace(p)
        p.chunk = p.N
        p.workspace_bytes = (weights + p.threads * per_thread) * itemsize
    else:
        p.threads, p.chunk = 1, p.N
        p.workspace_bytes = 0


def _autotune(p, x, w, b):
    """Time every candidate (forward + backward, the best of two runs) and keep the fastest."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    dout = np.ones(p.out_shape, dtype=p.dtype)
    best = None
    for algorithm in candidates(p):
        _use(p, algorithm)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            out, saved = forward(p, x, w, b)
            backward(p, dout, x, w, saved)
            times.append(time.perf_counter() - t0)
        if best is None or min(times) < best[0]:
            best = (min(times), algorithm)
    _use(p, best[1])
    p.tuned = True


# --------------------------------------------------------------------------- running

def forward(p, x, w, b):
    """out (N, F, HO, WO) = x * w (+ b) by p.algorithm; returns (out, saved), saved being what
    backward reuses (the column matrix of a small batched call, or None). x and w must be the
    C-contiguous arrays the plan was made for."""
    return _FORWARD[p.algorithm](p, x, w, b)


def backward(p, dout, x, w, saved, need_db=None):
    """Gradients of forward: dout (N, F, HO, WO) C-contiguous -> (dx, dw, db); db is None when
    the plan has no bias (or need_db is False)."""
    need_db = p.has_bias if need_db is None else need_db
    return _BACKWARD[p.algorithm](p, dout, x, w, saved, need_db)


def _bias_grad(dout, need_db):
    return dout.sum(axis=(0, 2, 3)) if need_db else None


def _forward_batched(p, x, w, b):
    k = _kernels()
    out = np.empty(p.out_shape, dtype=p.dtype)
    G, Fg, K, P = p.G, p.Fg, p.Cg * p.KH * p.KW, p.HO * p.WO
    wg = w.reshape(G, Fg, K)
    chunks = [(n0, min(n0 + p.chunk, p.N)) for n0 in range(0, p.N, p.chunk)]
    keep = len(chunks) == 1 and G * K * p.N * P * x.itemsize <= CACHE_COLS_BYTES
    cols = None
    for n0, n1 in chunks:
        B = n1 - n0
        buf = None if keep else k.workspace("cols", (G * K, B, P), p.dtype)
        # one OpenMP thread: the BLAS threads do the parallel part of this path
        cols = _im2col_batched(p, x[n0:n1], buf)
        res = np.matmul(wg, cols.reshape(G, K, -1),
                        out=k.workspace("gemm", (G, Fg, B * P), p.dtype))
        out[n0:n1] = res.reshape(p.F, B, p.HO, p.WO).transpose(1, 0, 2, 3)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out, (cols if keep else None)


def _im2col_batched(p, x, out):
    k = _kernels()
    shape = (p.C * p.KH * p.KW, x.shape[0], p.HO * p.WO)
    if k._compiled() is None:  # (warns once when the kernels are not built)
        cols = numpy_im2col.im2col(x, *p.kernel_args()).transpose(1, 0, 2)
        if out is None:
            return np.ascontiguousarray(cols)
        out[...] = cols
        return out
    if out is None:
        out = np.empty(shape, dtype=p.dtype)
    if out.size:
        k._conv.im2col_batched(x, out, *p.kernel_args(), 1)
    return out


def _col2im_batched(p, dcols, dx):
    k = _kernels()
    if k._compiled() is None:
        dx[...] = numpy_im2col.col2im(dcols.transpose(1, 0, 2), dx.shape, *p.kernel_args())
        return dx
    dx.fill(0)
    if dcols.size:
        k._conv.col2im_batched(dcols, dx, *p.kernel_args(), 1)
    return dx


def _backward_batched(p, dout, x, w, cols, need_db):
    k = _kernels()
    G, Fg, K, P = p.G, p.Fg, p.Cg * p.KH * p.KW, p.HO * p.WO
    wgT = w.reshape(G, Fg, K).transpose(0, 2, 1)
    dw = np.zeros((G, Fg, K), dtype=p.dtype)
    dx = np.empty(p.x_shape, dtype=p.dtype)
    for n0 in range(0, p.N, p.chunk):
        n1 = min(n0 + p.chunk, p.N)
        B = n1 - n0
        if cols is None or cols.shape[1] != B:
            c = _im2col_batched(p, x[n0:n1], k.workspace("cols", (G * K, B, P), p.dtype))
        else:
            c = cols
        # dout chunk as (G, Fg, B*P): images side by side, like the columns
        d = k.workspace("dout", (p.F, B, P), p.dtype)
        d[...] = dout[n0:n1].reshape(B, p.F, P).transpose(1, 0, 2)
        d = d.reshape(G, Fg, B * P)
        dw += np.matmul(d, c.reshape(G, K, -1).transpose(0, 2, 1))
        dcols = np.matmul(wgT, d, out=k.workspace("gemm", (G, K, B * P), p.dtype))
        _col2im_batched(p, dcols.reshape(G * K, B, P), dx[n0:n1])
    return dx, dw.reshape(p.w_shape), _bias_grad(dout, need_db)


def _forward_images(p, x, w, b):
    k = _kernels()
    K = p.C * p.KH * p.KW
    ws = k.workspace("images_cols", (p.threads, K * p.HO * p.WO), p.dtype)
    out = np.empty((p.N, p.F, p.HO * p.WO), dtype=p.dtype)
    if out.size:
        with k._SingleThreadedBlas():
            k._conv.conv_forward_images(x, w, b, out, ws, p.G, p.sh, p.sw, p.ph, p.pw, p.dh,
                                        p.dw, p.HO, p.WO)
    return out.reshape(p.out_shape), None


def _backward_images(p, dout, x, w, saved, need_db):
    k = _kernels()
    K = p.C * p.KH * p.KW
    ws_cols = k.workspace("images_cols", (p.threads, K * p.HO * p.WO), p.dtype)
    ws_dcols = k.workspace("images_dcols", (p.threads, K * p.HO * p.WO), p.dtype)
    dw_part = np.zeros((p.threads, int(np.prod(p.w_shape))), dtype=p.dtype)
    dx = np.empty(p.x_shape, dtype=p.dtype)
    if dx.size and dout.size:
        with k._SingleThreadedBlas():
            k._conv.conv_backward_images(x, w, dout.reshape(p.N, p.F, p.HO * p.WO), dx,
                                         dw_part, ws_cols, ws_dcols, p.G, p.sh, p.sw, p.ph,
                                         p.pw, p.dh, p.dw, p.HO, p.WO)
    else:
        dx[...] = 0
    return dx, dw_part.sum(axis=0).reshape(p.w_shape), _bias_grad(dout, need_db)


def _packed_workspace(p):
    """(weights, per_thread) elements of the packed path's scratch arrays for plan p."""
    return _kernels()._conv.packed_workspace(p.dtype == np.float64, p.G, p.Fg,
                                             p.Cg * p.KH * p.KW, p.block, p.dw_block,
                                             _is_1x1(p), p.span, p.HO * p.WO)


def _forward_packed(p, x, w, b):
    k = _kernels()
    out = np.empty((p.N, p.F, p.HO * p.WO), dtype=p.dtype)
    if out.size:
        weights, per_thread = _packed_workspace(p)
        k._conv.conv_forward_packed(x, w, b, out, k.workspace("packed_w", (weights,), p.dtype),
                                    k.workspace("packed", (p.threads, per_thread), p.dtype),
                                    p.G, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.HO, p.WO,
                                    p.block, p.span)
    return out.reshape(p.out_shape), None


def _backward_packed(p, dout, x, w, saved, need_db):
    k = _kernels()
    dx = np.empty(p.x_shape, dtype=p.dtype)
    dw = np.zeros((p.F, p.Cg * p.KH * p.KW), dtype=p.dtype)
    if dx.size and dout.size:
        weights, per_thread = _packed_workspace(p)
        k._conv.conv_backward_packed(x, w, dout.reshape(p.N, p.F, p.HO * p.WO), dx, dw,
                                     k.workspace("packed_w", (weights,), p.dtype),
                                     k.workspace("packed", (p.threads, per_thread), p.dtype),
                                     p.G, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.HO, p.WO,
                                     p.block, p.dw_block)
    else:
        dx[...] = 0
    return dx, dw.reshape(p.w_shape), _bias_grad(dout, need_db)


def _forward_direct(p, x, w, b):
    k = _kernels()
    out = np.empty(p.out_shape, dtype=p.dtype)
    if out.size and k._direct_conv.gconv_forward(x, w, b, out, p.G, p.sh, p.sw, p.ph, p.pw,
                                                 p.dh, p.dw):
        raise MemoryError(f"{p.layer}: could not allocate the direct kernel's padded input "
                          f"buffer for x {p.x_shape}")
    return out, None


def _backward_direct(p, dout, x, w, saved, need_db):
    k = _kernels()
    if p.N == 0:
        return (np.zeros(p.x_shape, p.dtype), np.zeros(p.w_shape, p.dtype),
                np.zeros(p.F, p.dtype) if need_db else None)
    if p.Cg == 1 and DEPTHWISE_FUSED_BACKWARD:
        # all three depthwise gradients in one pass per (image, channel); each image writes
        # its own share of dw/db (summed here, so the result does not depend on threads)
        dx = np.empty(p.x_shape, dtype=p.dtype)
        dw_part = np.empty((p.N, p.F, p.KH, p.KW), dtype=p.dtype)
        db_part = np.empty((p.N, p.F), dtype=p.dtype) if need_db else None
        wflip = np.ascontiguousarray(w[:, :, ::-1, ::-1])
        if k._direct_conv.depthwise_backward_fused(x, dout, w, wflip, dx, dw_part, db_part,
                                                   p.sh, p.sw, p.ph, p.pw, p.dh, p.dw):
            raise MemoryError(f"{p.layer}: could not allocate the depthwise backward buffers")
        return (dx, dw_part.sum(axis=0).reshape(p.w_shape),
                db_part.sum(axis=0) if need_db else None)
    G, Fg, Cg, KH, KW = p.G, p.Fg, p.Cg, p.KH, p.KW
    qh, qw = p.dh * (KH - 1) - p.ph, p.dw * (KW - 1) - p.pw
    if p.sh == p.sw == 1 and qh >= 0 and qw >= 0:
        # stride 1: the input gradient is itself a grouped convolution, of dout padded by
        # dilation*(K-1) - pad with the flipped kernel and in/out channels swapped per group,
        # so it runs the (faster) forward kernel
        wt = w.reshape(G, Fg, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
        wt = np.ascontiguousarray(wt).reshape(G * Cg, Fg, KH, KW)
        dx = np.empty(p.x_shape, dtype=p.dtype)
        if k._direct_conv.gconv_forward(dout, wt, None, dx, G, 1, 1, qh, qw, p.dh, p.dw):
            raise MemoryError(f"{p.layer}: could not allocate the direct kernel's buffer")
    else:
        dx = np.empty(p.x_shape, dtype=p.dtype)
        if k._direct_conv.gconv_backward_data(dout, w, dx, G, p.sh, p.sw, p.ph, p.pw, p.dh,
                                              p.dw):
            raise MemoryError(f"{p.layer}: could not allocate the direct kernel's buffer")
    dw = np.zeros(p.w_shape, dtype=p.dtype)
    db = np.zeros(p.F, dtype=p.dtype) if need_db else None
    if k._direct_conv.gconv_backward_filter(x, dout, dw, db, G, p.sh, p.sw, p.ph, p.pw, p.dh,
                                            p.dw):
        raise MemoryError(f"{p.layer}: could not allocate the direct kernel's buffer")
    return dx, dw, db


def _forward_winograd(p, x, w, b):
    m = WINOGRAD_TILE[p.algorithm]
    return _kernels().winograd.run_forward(x, w, b, m, p.ph, p.pw), None


def _backward_winograd(p, dout, x, w, saved, need_db):
    winograd, m = _kernels().winograd, WINOGRAD_TILE[p.algorithm]
    dx = winograd.run_backward_data(dout, w, p.x_shape, m, p.ph, p.pw)
    dw = winograd.run_backward_filter(x, dout, m, p.ph, p.pw)
    return dx, dw, _bias_grad(dout, need_db)


_FORWARD = {"gemm_batched": _forward_batched, "gemm_packed": _forward_packed,
            "gemm_1x1": _forward_packed, "gemm_images": _forward_images,
            "direct_grouped": _forward_direct, "winograd_2x2": _forward_winograd,
            "winograd_4x4": _forward_winograd}
_BACKWARD = {"gemm_batched": _backward_batched, "gemm_packed": _backward_packed,
             "gemm_1x1": _backward_packed, "gemm_images": _backward_images,
             "direct_grouped": _backward_direct, "winograd_2x2": _backward_winograd,
             "winograd_4x4": _backward_winograd}
