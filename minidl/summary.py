"""Per-layer tables of shapes, memory, parameters and FLOPs: the lecture's tables.

    s = minidl.summary(minidl.models.zoo.alexnet_lecture(), (3, 227, 227))
    print(s)                       # the lecture's table
    s.total_params, s.total_flops, s.total_memory_kb, s.rows[0].flops

Everything comes from shape inference (Module.trace_shapes), never from running the model:
a full-size ResNet-152 table takes a fraction of a second and allocates no parameters.

Counting rules (the lecture's):
- memory_kb: output elements x bytes per element (4: float32) / 1024, for every layer;
- params: every parameter of the layer, biases and batch-norm scale/shift included
  (running statistics are not parameters);
- flops: multiply-adds. conv: Cout * H' * W' * (Cin / groups) * K * K; fully connected:
  Cin * Cout; pooling: C * H' * W' * K * K (global pooling: C * H * W). Batch norm,
  activations, residual additions and concatenations count 0, as in the lecture.

Rows: one per layer module (conv, linear, pool, norm, act, other: flatten, dropout, channel
ops) and one per Concat join (Inception, DenseNet), in execution order. Residual additions
have no row. The printed table hides activation and dropout rows unless show_all=True (the
lecture's tables have none); the totals always cover every row.
"""
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["summary", "Summary", "SummaryRow", "KINDS"]

KINDS = ("conv", "linear", "pool", "norm", "act", "other")
_HIDDEN_LAYERS = ("Dropout", "Identity")


@dataclass
class SummaryRow:
    """One layer: name (dotted, as in state_dict), kind, layer (class name), in_shape and
    out_shape (one sample), filters/kernel/stride/pad (None where they do not apply),
    memory_kb, params, flops (multiply-adds)."""

    name: str
    kind: str
    layer: str
    in_shape: tuple
    out_shape: tuple
    filters: object
    kernel: object
    stride: object
    pad: object
    memory_kb: float
    params: int
    flops: int

    @property
    def hidden_by_default(self):
        return self.kind == "act" or self.layer in _HIDDEN_LAYERS


def _round_half_up(v):
    return int(math.floor(v + 0.5))


def _num(v, decimals=0):
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        return v
    if decimals:
        return f"{v:,.{decimals}f}"
    return f"{_round_half_up(v):,}"


def _plain(v):
    return "" if v is None else str(v)


def _hw(shape):
    if len(shape) != 3:
        return ""
    return str(shape[1]) if shape[1] == shape[2] else f"{shape[1]}x{shape[2]}"


def _c(shape):
    return str(shape[0]) if len(shape) in (1, 3) else "x".join(map(str, shape))


class Summary:
    """A model's per-layer table. Attributes: rows (list of SummaryRow), total_params,
    total_flops (multiply-adds), total_memory_kb, input_shape, name, dtype_bytes."""

    def __init__(self, name, input_shape, output_shape, rows, total_params, dtype_bytes):
        self.name = name
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.rows = rows
        self.total_params = int(total_params)
        self.total_flops = int(sum(r.flops for r in rows))
        self.total_memory_kb = float(sum(r.memory_kb for r in rows))
        self.dtype_bytes = dtype_bytes

    def total(self, field, kinds=None, upto=None):
        """Sum of one column ('memory_kb', 'params', 'flops') over rows of the given kinds,
        optionally only up to and including the row named upto (e.g. the lecture's totals
        that count conv outputs only, or a network's stem)."""
        total = 0
        for r in self.rows:
            if kinds is None or r.kind in kinds:
                total += getattr(r, field)
            if upto is not None and r.name == upto:
                break
        return total

    def table(self, show_all=False, decimals=0):
        """The lecture's table as text. decimals: digits after the point in memory (KB),
        params (k) and flop (M) (the lecture rounds to integers)."""
        rows = [r for r in self.rows if show_all or not r.hidden_by_default]
        header = ["Layer", "C", "H/W", "filters", "kernel", "stride", "pad", "C", "H/W",
                  "memory (KB)", "params (k)", "flop (M)"]
        body = [[r.name, _c(r.in_shape), _hw(r.in_shape), _plain(r.filters), _plain(r.kernel),
                 _plain(r.stride), _plain(r.pad), _c(r.out_shape), _hw(r.out_shape),
                 _num(r.memory_kb, decimals), _num(r.params / 1e3, decimals),
                 _num(r.flops / 1e6, decimals)] for r in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
        left = {0}

        def line(cells):
            return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        group_in = sum(widths[1:3]) + 2
        group_layer = sum(widths[3:7]) + 6
        group_out = sum(widths[7:9]) + 2
        groups = ("".ljust(widths[0]) + "  " + "input".center(group_in) + "  "
                  + "layer".center(group_layer) + "  " + "output".center(group_out)).rstrip()
        shape = "x".join(map(str, self.input_shape))
        out = [f"{self.name}: input {shape}, {self.dtype_bytes} bytes per element", groups,
               line(header), line(["-" * w for w in widths])]
        out += [line(b) for b in body]
        hidden = len(self.rows) - len(rows)
        out.append(line(["-" * w for w in widths]))
        millions = self.total_params / 1e6
        digits = 1 if millions >= 10 else 2
        out.append(f"Total params: {self.total_params:,} ({millions:.{digits}f} M)")
        out.append(f"Total memory: {self.total_memory_kb:,.0f} KB "
                   f"({self.total_memory_kb / 1024:.1f} MB), outputs of all {len(self.rows)} "
                   f"rows")
        out.append(f"Total FLOPs:  {self.total_flops:,} multiply-adds "
                   f"({self.total_flops / 1e9:.2f} G)")
        if hidden:
            out.append(f"({hidden} activation/dropout rows hidden; they are in the totals: "
                       "show_all=True, or --all on the command line, lists them)")
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"Summary({self.name}, input {self.input_shape}: {len(self.rows)} rows, "
                f"{self.total_params:,} params, {self.total_flops:,} multiply-adds, "
                f"{self.total_memory_kb:,.1f} KB)")


def summary(model, input_shape=(3, 224, 224), dtype_bytes=4, name=None):
    """Per-layer table of a minidl.nn.Module for one input of input_shape (no batch axis).

    dtype_bytes: bytes per element for the memory column (4: float32, the lecture's).
    Raises minidl.nn.ShapeError naming the first layer that cannot take its input.
    Returns a Summary; print it for the lecture's table.
    """
    from .nn import Module

    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a minidl.nn.Module, got {type(model).__name__}")
    if isinstance(dtype_bytes, bool) or not isinstance(dtype_bytes, (int, np.integer)) \
            or dtype_bytes < 1:
        raise ValueError(f"summary: dtype_bytes must be a positive integer, got {dtype_bytes!r}")
    out, layers = model.trace_shapes(input_shape)
    rows = []
    for t in layers:
        kind = t.module.kind if t.module.kind in KINDS else "other"
        elements = int(np.prod(t.out_shape, dtype=np.int64))
        rows.append(SummaryRow(t.name, kind, type(t.module).__name__, t.in_shape, t.out_shape,
                               t.filters, t.kernel, t.stride, t.pad,
                               elements * dtype_bytes / 1024, t.num_params, t.flops))
    shape = tuple(int(d) for d in input_shape)
    title = name or getattr(model, "arch", None) or type(model).__name__
    return Summary(title, shape, out, rows, model.num_params(), int(dtype_bytes))
