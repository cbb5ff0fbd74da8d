"""Convolution: Conv (readable loops, the coursework reference) and FastConv (im2col + GEMM).

Symbols: N images, C input channels, F filters, G groups, KH x KW kernel, H x W input,
HO x WO output. Weights are (F, C // G, KH, KW), as in PyTorch; filter f reads the input
channels of its group g = f // (F // G).

Output size, per axis: HO = (H + 2*pad - dilation*(KH - 1) - 1) // stride + 1. With the
default ``floor_mode=False`` the division must be exact (the course's assumption); with
``floor_mode=True`` it floors, as PyTorch does.
"""
import numpy as np

from .. import _kernels
from ._checks import (check_array, check_same_dtype, check_shape, nonneg_int, pair,
                      positive_int, window_output_size)


class ConvGeometry:
    """Validated sizes of one convolution (everything a kernel needs, as plain ints)."""

    __slots__ = ("N", "C", "H", "W", "F", "G", "KH", "KW", "sh", "sw", "ph", "pw",
                 "dh", "dw", "HO", "WO")

    def __init__(self, layer, x, w, b, conv_param):
        check_array(layer, "x", x)
        if x.ndim != 4:
            raise ValueError(f"{layer}: x must be 4-D (N, C, H, W), got shape {x.shape}")
        check_array(layer, "w", w)
        if w.ndim != 4:
            raise ValueError(f"{layer}: w must be 4-D (F, C // groups, KH, KW), got shape {w.shape}")
        if b is not None:
            check_array(layer, "b", b)
        check_same_dtype(layer, x=x, w=w, b=b)
        if not isinstance(conv_param, dict):
            raise TypeError(f"{layer}: conv_param must be a dict, got {type(conv_param).__name__}")
        self.sh, self.sw = pair(layer, "stride", conv_param.get("stride", 1))
        self.ph, self.pw = pair(layer, "pad", conv_param.get("pad", 0), nonneg_int)
        self.dh, self.dw = pair(layer, "dilation", conv_param.get("dilation", 1))
        self.G = positive_int(layer, "groups", conv_param.get("groups", 1))
        floor_mode = bool(conv_param.get("floor_mode", False))
        self.N, self.C, self.H, self.W = x.shape
        self.F, cg, self.KH, self.KW = w.shape
        G = self.G
        if self.C % G or self.F % G:
            raise ValueError(f"{layer}: groups={G} must divide both input channels {self.C} "
                             f"(x {x.shape}) and filters {self.F} (w {w.shape})")
        if cg != self.C // G:
            raise ValueError(f"{layer}: w has {cg} input channels per filter (w {w.shape}) but "
                             f"x has {self.C} channels / groups {G} = {self.C // G} (x {x.shape})")
        if b is not None:
            check_shape(layer, "b", b, (self.F,))
        self.HO = window_output_size(layer, "height", self.H, self.KH, self.sh, self.ph,
                                     self.dh, floor_mode)
        self.WO = window_output_size(layer, "width", self.W, self.KW, self.sw, self.pw,
                                     self.dw, floor_mode)

    @property
    def out_shape(self):
        return (self.N, self.F, self.HO, self.WO)

    def kernel_args(self):
        """The positional arguments of minidl._kernels.im2col / col2im after the array."""
        return (self.KH, self.KW, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
                self.HO, self.WO)


class Conv:
    """Convolution with explicit loops over images, filters and output positions.

    The reference implementation: slow, but every line maps to the definition
    out[n, f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw].
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) -> out (N, F, HO, WO), cache."""
        g = ConvGeometry("Conv", x, w, b, conv_param)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        Fg, Cg = g.F // g.G, g.C // g.G
        ext_h, ext_w = g.dh * (g.KH - 1) + 1, g.dw * (g.KW - 1) + 1
        out = np.empty(g.out_shape, dtype=x.dtype)
        for n in range(g.N):
            for f in range(g.F):
                c0 = (f // Fg) * Cg
                for y in range(g.HO):
                    for xo in range(g.WO):
                        y0, x0 = y * g.sh, xo * g.sw
                        window = xpad[n, c0:c0 + Cg, y0:y0 + ext_h:g.dh, x0:x0 + ext_w:g.dw]
                        out[n, f, y, xo] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
        return out, (x, w, b, conv_param)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,)."""
        x, w, b, conv_param = cache
        g = ConvGeometry("Conv", x, w, b, conv_param)
        check_shape("Conv", "dout", dout, g.out_shape)
        xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
        dxpad = np.zeros_like(xpad)
        dw = np.zeros_like(w)
        Fg, Cg = g.F // g.G, g.C // g.G
        ext_h, ext_w = g.dh * (g.KH - 1) + 1, g.dw * (g.KW - 1) + 1
        for n in range(g.N):
            for f in range(g.F):
                c0 = (f // Fg) * Cg
                for y in range(g.HO):
                    for xo in range(g.WO):
                        y0, x0 = y * g.sh, xo * g.sw
                        win = (n, slice(c0, c0 + Cg), slice(y0, y0 + ext_h, g.dh),
                               slice(x0, x0 + ext_w, g.dw))
                        dw[f] += dout[n, f, y, xo] * xpad[win]
                        dxpad[win] += dout[n, f, y, xo] * w[f]
        dx = dxpad[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]
        db = dout.sum(axis=(0, 2, 3)) if b is not None else None
        return np.ascontiguousarray(dx), dw, db


# FastConv keeps the column matrix for backward only when it is at most this many bytes;
# otherwise backward unfolds x again (cheap next to the GEMMs) and the cache holds just x.
CACHE_COLS_BYTES = 8 * 2**20
# Grouped convolutions with at most this many input channels per group run the direct kernel
# (depthwise is 1); wider groups are GEMM-shaped enough for im2col + one GEMM per group.
DIRECT_MAX_GROUP_CHANNELS = 8
# Depthwise layers (one input channel per group) take all three gradients in one pass over
# dout (``conv_depthwise_backward``); False runs the separate dx and dw/db kernels instead.
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
# image, is 10% slower per image; 16->16 8x8, 147K, is 20% faster). The work floor scales
# with the position floor, so lowering IMAGES_MIN_POSITIONS lowers both.
IMAGES_MACS_PER_POSITION = 1024


def _conv_path(g):
    """'direct', '1x1', 'images' or 'im2col': which FastConv algorithm fits this geometry."""
    if g.G > 1 and g.C // g.G <= DIRECT_MAX_GROUP_CHANNELS and _kernels.direct_available():
        return "direct"
    if (g.KH, g.KW, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0):
        return "1x1"
    positions = g.HO * g.WO
    if (positions >= IMAGES_MIN_POSITIONS and g.N >= _kernels.omp_max_threads()
            and g.F * (g.C // g.G) * g.KH * g.KW * positions
            >= IMAGES_MIN_POSITIONS * IMAGES_MACS_PER_POSITION
            and _kernels.images_available()):
        return "images"
    return "im2col"


# FastConv unfolds about this many bytes of columns at a time (at least one image): a chunk
# that stays in the CPU's cache makes im2col + GEMM markedly faster than one big column matrix
# streamed through memory. The hard bound is minidl._kernels.get_workspace_limit().
CHUNK_TARGET_BYTES = 8 * 2**20


def _chunks(g, itemsize):
    """Image ranges [n0, n1) whose column matrix fits in the chunk target and workspace bound."""
    per_image = g.C * g.KH * g.KW * g.HO * g.WO * itemsize
    budget = min(_kernels.get_workspace_limit(), CHUNK_TARGET_BYTES)
    step = max(1, min(g.N, budget // max(per_image, 1)))
    return [(n0, min(n0 + step, g.N)) for n0 in range(0, g.N, step)]


class FastConv:
    """Convolution through the BLAS (im2col + GEMM), or a direct kernel for thin groups.

    Symbols: N images, G groups, Cg = C/G and Fg = F/G channels per group, K = Cg*KH*KW,
    P = HO*WO, B images in one chunk of the batch.

    * im2col: cols = im2col_batched(x[chunk]) (G*K, B, P); per group one GEMM
      out[g] (Fg, B*P) = w[g] (Fg, K) @ cols[g] (K, B*P). Backward: dw[g] += dout[g] @ cols[g]^T,
      dcols[g] = w[g]^T @ dout[g], dx = col2im(dcols). The chunk B is the largest that keeps
      cols within CHUNK_TARGET_BYTES (cache-sized, for speed) and never above
      ``minidl._kernels.get_workspace_limit()`` (256 MB by default), but at least one image.
      The copies run on one OpenMP thread here: the BLAS's own threads parallelise this path.
    * images (HO*WO >= IMAGES_MIN_POSITIONS, N >= threads, enough multiply-adds per image,
      scipy's BLAS available): the same
      GEMMs one image at a time inside an OpenMP loop over images, each thread with its own
      column workspace and a one-thread BLAS (no thread pool competes with another).
    * 1x1, stride 1, no pad: x itself is the column matrix; no im2col.
    * direct (G > 1 and Cg <= DIRECT_MAX_GROUP_CHANNELS, depthwise included): the compiled
      grouped kernel, parallel over (image, group), no GEMM. Depthwise backward (Cg == 1)
      computes dx, dw and db in one pass per (image, channel) plane.

    The cache holds x and w (plus the column matrix when it is at most CACHE_COLS_BYTES).
    Same arguments, results and errors as Conv.
    """

    @staticmethod
    def forward(x, w, b, conv_param):
        """x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None -> out (N, F, HO, WO), cache."""
        g = ConvGeometry("FastConv", x, w, b, conv_param)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        G, Fg, Cg = g.G, g.F // g.G, g.C // g.G
        path = _conv_path(g)
        cols = None
        if path == "direct":
            out = _kernels.conv_direct_forward(x, w, G, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                                               g.HO, g.WO, b=b)
            return out, (x, w, b, conv_param, None)
        elif path == "1x1":
            # (G, Fg, Cg) @ (N, G, Cg, P) -> (N, G, Fg, P): one GEMM per image and group
            out = np.matmul(w.reshape(G, Fg, Cg), x.reshape(g.N, G, Cg, -1)).reshape(g.out_shape)
        elif path == "images":
            out = _kernels.conv_images_forward(x, w, G, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                                               g.HO, g.WO, b=b)
            return out, (x, w, b, conv_param, None)
        else:
            out = np.empty(g.out_shape, dtype=x.dtype)
            K = Cg * g.KH * g.KW
            wg = w.reshape(G, Fg, K)
            chunks = _chunks(g, x.itemsize)
            # keep the columns for backward only when the whole batch is one small chunk
            keep = len(chunks) == 1 and g.C * g.KH * g.KW * g.N * g.HO * g.WO * x.itemsize \
                <= CACHE_COLS_BYTES
            for n0, n1 in chunks:
                B = n1 - n0
                shape = (g.C * g.KH * g.KW, B, g.HO * g.WO)
                buf = None if keep else _kernels.workspace("cols", shape, x.dtype)
                # one OpenMP thread: the BLAS threads do the parallel part of this path
                cols = _kernels.im2col_batched(x[n0:n1], *g.kernel_args(), out=buf, threads=1)
                res = np.matmul(wg, cols.reshape(G, K, -1),
                                out=_kernels.workspace("gemm", (G, Fg, B * g.HO * g.WO), x.dtype))
                out[n0:n1] = res.reshape(g.F, B, g.HO, g.WO).transpose(1, 0, 2, 3)
            if not keep:
                cols = None
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out, (x, w, b, conv_param, cols)

    @staticmethod
    def backward(dout, cache):
        """dout (N, F, HO, WO) -> dx (N, C, H, W), dw (F, C/G, KH, KW), db (F,) or None."""
        x, w, b, conv_param, cols = cache
        g = ConvGeometry("FastConv", x, w, b, conv_param)
        check_shape("FastConv", "dout", dout, g.out_shape)
        check_same_dtype("FastConv", x=x, dout=dout)
        dout = np.ascontiguousarray(dout)
        G, Fg, Cg = g.G, g.F // g.G, g.C // g.G
        path = _conv_path(g)
        if path == "direct" and Cg == 1 and DEPTHWISE_FUSED_BACKWARD:
            dx, dw, db = _kernels.conv_depthwise_backward(x, w, dout, g.sh, g.sw, g.ph, g.pw,
                                                          g.dh, g.dw, with_db=b is not None)
            return dx, dw, db
        if path == "direct":
            args = (G, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
            dx = _kernels.conv_direct_backward_data(dout, w, x.shape, *args)
            dw, db = _kernels.conv_direct_backward_filter(x, dout, w.shape, *args, with_db=True)
            return dx, dw, (db if b is not None else None)
        db = dout.sum(axis=(0, 2, 3)) if b is not None else None
        if path == "images":
            dx, dw = _kernels.conv_images_backward(x, w, dout, G, g.sh, g.sw, g.ph, g.pw,
                                                   g.dh, g.dw)
            return dx, dw, db
        if path == "1x1":
            d = dout.reshape(g.N, G, Fg, -1)
            xr = x.reshape(g.N, G, Cg, -1)
            dw = np.matmul(d, xr.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
            dx = np.matmul(w.reshape(G, Fg, Cg).transpose(0, 2, 1), d).reshape(x.shape)
            return dx, dw, db
        K = Cg * g.KH * g.KW
        wgT = w.reshape(G, Fg, K).transpose(0, 2, 1)
        dw = np.zeros((G, Fg, K), dtype=x.dtype)
        dx = np.empty(x.shape, dtype=x.dtype)
        for n0, n1 in _chunks(g, x.itemsize):
            B, P = n1 - n0, g.HO * g.WO
            if cols is None or cols.shape[1] != B:
                c = _kernels.im2col_batched(x[n0:n1], *g.kernel_args(), threads=1,
                                            out=_kernels.workspace("cols", (G * K, B, P), x.dtype))
            else:
                c = cols
            # dout chunk as (G, Fg, B*P): images side by side, like the columns
            d = _kernels.workspace("dout", (g.F, B, P), x.dtype)
            d[...] = dout[n0:n1].reshape(B, g.F, P).transpose(1, 0, 2)
            d = d.reshape(G, Fg, B * P)
            dw += np.matmul(d, c.reshape(G, K, -1).transpose(0, 2, 1))
            dcols = np.matmul(wgT, d, out=_kernels.workspace("gemm", (G, K, B * P), x.dtype))
            _kernels.col2im_batched(dcols.reshape(G * K, B, P), (B,) + x.shape[1:],
                                    *g.kernel_args(), out=dx[n0:n1], threads=1)
        return dx, dw.reshape(w.shape), db
