"""The course's autograder: a student's forward/backward pair checked against numeric
gradients and against minidl's layers, on fixed random cases (``minidl gradcheck`` is its
command line, in minidl.cli.gradcheck).

    forward, backward, path, cls = load_student_pair("my_layers.py:conv_forward,conv_backward")
    report = Report()
    for description, rows in check_student(forward, backward, "Conv", path=path):
        print(report.add(description, rows))
    print(report.verdict("my_layers.py")); report.passed

A student's pair runs on the same random float64 inputs as minidl's reference layer in
several shapes. For every case it checks

- the forward output against the reference layer's output;
- every gradient against numeric gradients of the student's own forward
  (minidl.gradcheck.check_pair, with a random upstream gradient dout);
- every gradient against the reference layer's backward for the same dout;

and reports, per output, pass/fail, the worst relative error (EECS 498's rel_error:
max|a-b| over max(|a|+|b|)), the index of the worst element and both values there.
check_builtin runs the same cases (plus minidl's extensions: groups, dilation, pool padding)
on minidl's own layers against numeric gradients.

The cases use only the course's parameters (stride, pad, pool sizes, batch-norm mode), so
the course's own layer implementations can be checked.
"""
import copy
import importlib.util
import os
import re
import sys
import traceback
from collections import namedtuple

import numpy as np

from . import gradcheck as _gc
from . import layers as L

__all__ = ["SPECS", "Spec", "Row", "Report", "StudentCodeError", "lookup_layer",
           "load_student_pair", "check_builtin", "check_student", "REFERENCE_THRESHOLD"]


class StudentCodeError(ValueError):
    """The student's file raised while it was imported (a bug in the student's code, not in
    how the check was asked for)."""

# A case is a list of (argument name, value): a tuple value is the shape of a random
# standard-normal float64 array, anything else (a param dict, an int) is passed as is.
Spec = namedtuple("Spec", ["layer", "backward", "cases", "extra_cases", "threshold", "student"])

_CONV = [
    [("x", (2, 3, 5, 5)), ("w", (4, 3, 3, 3)), ("b", (4,)),
     ("conv_param", {"stride": 1, "pad": 1})],
    [("x", (2, 2, 7, 7)), ("w", (3, 2, 3, 3)), ("b", (3,)),
     ("conv_param", {"stride": 2, "pad": 1})],
    [("x", (1, 3, 6, 4)), ("w", (2, 3, 2, 3)), ("b", (2,)),   # rectangular filters
     ("conv_param", {"stride": 1, "pad": 0})],
]
_CONV_EXTRA = [
    [("x", (1, 4, 6, 6)), ("w", (4, 2, 3, 3)), ("b", (4,)),
     ("conv_param", {"stride": 1, "pad": 2, "dilation": 2, "groups": 2})],
]
_POOL = [
    [("x", (2, 3, 4, 4)), ("pool_param", {"pool_height": 2, "pool_width": 2, "stride": 2})],
    [("x", (1, 2, 5, 7)), ("pool_param", {"pool_height": 3, "pool_width": 3, "stride": 2})],
    [("x", (2, 1, 6, 6)), ("pool_param", {"pool_height": 2, "pool_width": 3, "stride": 1})],
]
_POOL_EXTRA = [
    [("x", (1, 2, 5, 5)), ("pool_param", {"pool_height": 3, "pool_width": 3, "stride": 2,
                                          "pad": 1})],
]
_LINEAR = [
    [("x", (2, 4)), ("w", (4, 3)), ("b", (3,))],
    [("x", (3, 2, 3)), ("w", (6, 5)), ("b", (5,))],
    [("x", (2, 2, 2, 2)), ("w", (8, 3)), ("b", (3,))],
]
_BN = [
    [("x", (4, 5)), ("gamma", (5,)), ("beta", (5,)), ("bn_param", {"mode": "train"})],
    [("x", (10, 3)), ("gamma", (3,)), ("beta", (3,)), ("bn_param", {"mode": "train"})],
]
_SBN = [
    [("x", (2, 3, 4, 4)), ("gamma", (3,)), ("beta", (3,)), ("bn_param", {"mode": "train"})],
    [("x", (3, 2, 3, 5)), ("gamma", (2,)), ("beta", (2,)), ("bn_param", {"mode": "train"})],
]
_CONV_RELU_POOL = [
    [("x", (2, 3, 4, 4)), ("w", (4, 3, 3, 3)), ("b", (4,)), ("conv_param", {"stride": 1, "pad": 1}),
     ("pool_param", {"pool_height": 2, "pool_width": 2, "stride": 2})],
    [("x", (1, 2, 6, 6)), ("w", (3, 2, 3, 3)), ("b", (3,)), ("conv_param", {"stride": 1, "pad": 1}),
     ("pool_param", {"pool_height": 2, "pool_width": 2, "stride": 2})],
]
_CONV_BN = [
    [("x", (2, 3, 4, 4)), ("w", (4, 3, 3, 3)), ("b", (4,)), ("gamma", (4,)), ("beta", (4,)),
     ("conv_param", {"stride": 1, "pad": 1}), ("bn_param", {"mode": "train"})],
    [("x", (3, 2, 4, 4)), ("w", (3, 2, 3, 3)), ("b", (3,)), ("gamma", (3,)), ("beta", (3,)),
     ("conv_param", {"stride": 1, "pad": 1}), ("bn_param", {"mode": "train"})],
]
_POOL2 = ("pool_param", {"pool_height": 2, "pool_width": 2, "stride": 2})


def _spec(layer, cases, extra=(), threshold=1e-7, backward="backward", student=True):
    # A bias followed by batch norm has a gradient that is zero in exact arithmetic: the
    # engine's noise floor (minidl.gradcheck.noise_floor) passes it, as for any other check.
    return Spec(layer, backward, list(cases), list(extra), threshold, student)


SPECS = {
    "Linear": _spec(L.Linear, _LINEAR),
    "ReLU": _spec(L.ReLU, [[("x", (3, 5))], [("x", (2, 3, 4, 4))]]),
    "Linear_ReLU": _spec(L.Linear_ReLU, _LINEAR),
    "Dropout": _spec(L.Dropout, [[("x", (3, 4)), ("dropout_param",
                                                  {"mode": "train", "p": 0.3, "seed": 0})],
                                 [("x", (2, 3, 2, 2)), ("dropout_param",
                                                        {"mode": "train", "p": 0.5, "seed": 1})]],
                     student=False),  # masks drawn differently cannot be compared
    "Conv": _spec(L.Conv, _CONV, _CONV_EXTRA),
    "FastConv": _spec(L.FastConv, _CONV, _CONV_EXTRA),
    "MaxPool": _spec(L.MaxPool, _POOL, _POOL_EXTRA),
    "FastMaxPool": _spec(L.FastMaxPool, _POOL, _POOL_EXTRA),
    "AvgPool": _spec(L.AvgPool, _POOL, _POOL_EXTRA),
    "GlobalAvgPool": _spec(L.GlobalAvgPool, [[("x", (2, 3, 4, 4))], [("x", (1, 4, 3, 5))]]),
    "BatchNorm": _spec(L.BatchNorm, _BN),
    "BatchNorm.backward_alt": _spec(L.BatchNorm, _BN, backward="backward_alt"),
    "SpatialBatchNorm": _spec(L.SpatialBatchNorm, _SBN),
    "SpatialBatchNormReLU": _spec(L.SpatialBatchNormReLU, _SBN),
    "LayerNorm": _spec(L.LayerNorm, [
        [("x", (4, 5)), ("gamma", (5,)), ("beta", (5,)), ("ln_param", {})],
        [("x", (2, 7)), ("gamma", (7,)), ("beta", (7,)), ("ln_param", {})]]),
    "SpatialGroupNorm": _spec(L.SpatialGroupNorm, [
        [("x", (2, 6, 3, 3)), ("gamma", (6,)), ("beta", (6,)), ("G", 2), ("gn_param", {})],
        [("x", (1, 4, 2, 3)), ("gamma", (4,)), ("beta", (4,)), ("G", 4), ("gn_param", {})]]),
    "Conv_ReLU": _spec(L.Conv_ReLU, _CONV),
    "Conv_ReLU_Pool": _spec(L.Conv_ReLU_Pool, _CONV_RELU_POOL),
    "Conv_BatchNorm_ReLU": _spec(L.Conv_BatchNorm_ReLU, _CONV_BN),
    "Conv_BatchNorm_ReLU_Pool": _spec(L.Conv_BatchNorm_ReLU_Pool,
                                      [case + [_POOL2] for case in _CONV_BN]),
    "AddReLU": _spec(L.AddReLU, [[("a", (3, 5)), ("b", (3, 5))],
                                 [("a", (2, 3, 4, 4)), ("b", (2, 3, 4, 4))]]),
    "Linear_BatchNorm_ReLU": _spec(L.Linear_BatchNorm_ReLU, cases=[
        [("x", (4, 5)), ("w", (5, 3)), ("b", (3,)), ("gamma", (3,)), ("beta", (3,)),
         ("bn_param", {"mode": "train"})],
        [("x", (6, 2, 2)), ("w", (4, 4)), ("b", (4,)), ("gamma", (4,)), ("beta", (4,)),
         ("bn_param", {"mode": "train"})]]),
}

# Student outputs are compared with minidl's: both are float64 computations of the same
# formula, so only rounding may differ.
REFERENCE_THRESHOLD = 1e-8
REFERENCE_ATOL = 1e-10


def lookup_layer(name):
    """The SPECS key for name, case-insensitively; ValueError naming close matches otherwise."""
    for key in SPECS:
        if key.lower() == name.lower():
            return key
    import difflib

    close = difflib.get_close_matches(name, list(SPECS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown layer {name!r}{hint} (the names: minidl.autograder.SPECS, or "
                     "`minidl gradcheck --list`)")


def _make_args(case, seed, index):
    """Fresh arguments for one case: random float64 arrays from (seed, case index)."""
    rng = np.random.default_rng([seed, index])
    names, args = [], []
    for name, value in case:
        names.append(name)
        args.append(rng.standard_normal(value) if isinstance(value, tuple)
                    else copy.deepcopy(value))
    return names, args


def _describe(names, args):
    parts = []
    for n, a in zip(names, args):
        parts.append(f"{n} {a.shape}" if isinstance(a, np.ndarray) else f"{n} {a!r}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- one row of output

class Row:
    """One line of a report: an output ('out', 'dx', ...) checked against something."""

    def __init__(self, output, against, result=None, problem=None):
        self.output, self.against = output, against
        self.problem = problem if problem is not None else getattr(result, "problem", None)
        self.rel_error = getattr(result, "rel_error", None) if result is not None else None
        self.index = getattr(result, "index", None) if result is not None else None
        self.value = getattr(result, "analytic", None) if result is not None else None
        self.expected = getattr(result, "numeric", None) if result is not None else None
        self.n_bad = getattr(result, "n_bad", None) if result is not None else None
        self.size = result.n_checked if result is not None else None
        self.passed = result is not None and result.passed and self.problem is None
        # Passed only because every difference is below the noise floor (a zero gradient).
        self.noise = self.passed and bool(getattr(result, "at_noise_floor", False))


def _compare(output, against, value, expected):
    """Row comparing an array with the expected one (shape, rel_error, worst index)."""
    if value is None:
        return Row(output, against, problem="returned None")
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return Row(output, against, problem=f"returned {type(value).__name__}, not an array")
    if value.shape != expected.shape:
        return Row(output, against, problem=f"shape {value.shape}, expected {expected.shape}")
    # GradResult does the bookkeeping (rel_error, worst index, bad elements); "numeric" is
    # the expected array here.
    result = _gc.GradResult(output, expected.shape, REFERENCE_THRESHOLD,
                            expected.astype(np.float64), value.astype(np.float64),
                            atol=REFERENCE_ATOL)
    return Row(output, against, result)


def _student_error(e, path):
    """'ZeroDivisionError: ... (student.py line 12)' naming the student's line when known."""
    where = ""
    if path is not None:
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if os.path.abspath(f.filename) == path]
        if frames:
            where = f" ({os.path.basename(path)} line {frames[-1].lineno}: " \
                    f"{(frames[-1].line or '').strip()})"
    if isinstance(e, SyntaxError) and e.lineno:
        where = f" ({os.path.basename(e.filename or path or '?')} line {e.lineno})"
    return f"{type(e).__name__}: {e}{where}"


# --------------------------------------------------------------------------- the checks

def check_builtin(key, seed=0, include_extra=True):
    """Check minidl's layer SPECS[key] on each case: yields (description, [Row, ...])."""
    spec = SPECS[key]
    cases = spec.cases + (spec.extra_cases if include_extra else [])
    for i, case in enumerate(cases):
        names, args = _make_args(case, seed, i)
        report = _gc.check_layer(spec.layer, *args, backward=spec.backward, names=names,
                                 seed=seed, threshold=spec.threshold, title=key)
        yield _describe(names, args), [Row(f"d{r.name}", "numeric", r) for r in report]


def check_student(forward, backward, key, seed=0, path=None):
    """Check a student's forward/backward pair against numeric gradients and against minidl's
    layer SPECS[key], on the course cases: yields (description, [Row, ...])."""
    spec = SPECS[key]
    ref_name = f"minidl {key}"
    ref_backward = getattr(spec.layer, spec.backward)
    for i, case in enumerate(spec.cases):
        names, args = _make_args(case, seed, i)
        rows = []
        ref_out, ref_cache = spec.layer.forward(*copy.deepcopy(args))
        dout = _gc.upstream_gradient(ref_out.shape, seed, i)
        ref_grads = ref_backward(dout, ref_cache)
        if not isinstance(ref_grads, tuple):
            ref_grads = (ref_grads,)
        array_names = [n for n, a in zip(names, args) if isinstance(a, np.ndarray)]
        ref_by_name = dict(zip(array_names, ref_grads))
        try:
            result = forward(*copy.deepcopy(args))
        except Exception as e:
            rows.append(Row("out", ref_name, problem=f"forward raised {_student_error(e, path)}"))
            yield _describe(names, args), rows
            continue
        if not (isinstance(result, tuple) and len(result) == 2):
            rows.append(Row("out", ref_name, problem="forward must return (out, cache), got "
                            f"{type(result).__name__}"))
            yield _describe(names, args), rows
            continue
        out = result[0]
        out_row = _compare("out", ref_name, out, ref_out)
        rows.append(out_row)
        same_shape = isinstance(out, np.ndarray) and out.shape == ref_out.shape
        student_dout = dout if same_shape else (
            _gc.upstream_gradient(out.shape, seed, i) if isinstance(out, np.ndarray) else None)
        if student_dout is None:
            yield _describe(names, args), rows
            continue
        try:
            report = _gc.check_pair(forward, backward, args, names=names, dout=student_dout,
                                    seed=seed, threshold=spec.threshold, title=key)
        except Exception as e:
            rows.append(Row("grads", "numeric",
                            problem=f"backward failed: {_student_error(e, path)}"))
            yield _describe(names, args), rows
            continue
        for r in report:
            rows.append(Row(f"d{r.name}", "numeric", r))
            if not same_shape:
                rows.append(Row(f"d{r.name}", ref_name, problem="not compared: out has the "
                                "wrong shape"))
                continue
            rows.append(_compare(f"d{r.name}", ref_name, r.analytic_grad, ref_by_name[r.name]))
        yield _describe(names, args), rows


def load_student_pair(target):
    """'path.py:forward,backward' or 'path.py:Class' -> (forward, backward, path, class name
    or None). Names may be dotted ('Conv.forward'). ValueError with one line otherwise."""
    path, _, names = target.rpartition(":")
    if not path or not names:
        raise ValueError(f"{target!r}: expected FILE.py:FORWARD,BACKWARD or FILE.py:CLASS")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    module_name = "_minidl_student_" + re.sub(r"\W", "_", os.path.splitext(
        os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)  # so the student's file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise StudentCodeError(f"cannot import {path}: {_student_error(e, path)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)

    def get(dotted):
        obj = module
        for part in dotted.split("."):
            if not hasattr(obj, part):
                raise ValueError(f"{os.path.basename(path)} has no {dotted!r}")
            obj = getattr(obj, part)
        return obj

    parts = [p.strip() for p in names.split(",")]
    if len(parts) == 1:
        cls = get(parts[0])
        fw, bw = getattr(cls, "forward", None), getattr(cls, "backward", None)
        if not (callable(fw) and callable(bw)):
            raise ValueError(f"{parts[0]} in {os.path.basename(path)} has no forward and "
                             "backward; name the functions: FILE.py:FORWARD,BACKWARD")
        return fw, bw, path, parts[0].split(".")[-1]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{target!r}: expected FILE.py:FORWARD,BACKWARD (two names)")
    fw, bw = get(parts[0]), get(parts[1])
    for n, f in zip(parts, (fw, bw)):
        if not callable(f):
            raise ValueError(f"{n} in {os.path.basename(path)} is not a function")
    return fw, bw, path, None


# --------------------------------------------------------------------------- the report

def _fmt(v):
    return "-" if v is None else f"{v: .6e}"


def format_case(number, total, description, rows):
    """The table of one case: 'case 2/3: x (2, 3, 5, 5), ...' and a line per Row."""
    lines = [f"case {number}/{total}: {description}"]
    table = [["output", "against", "status", "rel error", "worst index", "value", "expected"]]
    for r in rows:
        if r.problem is not None:
            table.append([r.output, r.against, "FAIL", "-", r.problem, "", ""])
            continue
        status = ("pass*" if r.noise else "pass") if r.passed else \
            f"FAIL ({r.n_bad}/{r.size} wrong)"
        table.append([r.output, r.against, status, f"{r.rel_error:.1e}", str(r.index),
                      "" if r.passed else _fmt(r.value), "" if r.passed else _fmt(r.expected)])
    widths = [max(len(row[i]) for row in table if len(row[i]) < 40) for i in range(len(table[0]))]
    for row in table:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if any(r.noise for r in rows):
        lines.append("  * a zero gradient: every difference is below the finite-difference "
                     "noise floor")
    return "\n".join(lines)


class Report:
    """The cases of one check, collected as they come (check_builtin and check_student yield
    them one at a time, so a caller can show each at once).

    add(description, rows) -> the case's table (format_case); passed; n_checks;
    failures [(case number, Row)]; verdict(name) -> the one-line summary.
    """

    def __init__(self, total=None):
        self.total = total
        self.n_cases, self.n_checks, self.failures = 0, 0, []

    def add(self, description, rows):
        self.n_cases += 1
        self.n_checks += len(rows)
        self.failures += [(self.n_cases, r) for r in rows if not r.passed]
        return format_case(self.n_cases, self.total or self.n_cases, description, rows)

    @property
    def passed(self):
        return not self.failures

    def verdict(self, name):
        """'NAME: all 21 checks passed', or 'NAME: FAILED k of n checks: dw vs numeric in
        case(s) 1, 2 (rel error ... at index ...); ...' (the first failure of each output)."""
        if not self.failures:
            return f"{name}: all {self.n_checks} checks passed"
        worst = {}
        for number, r in self.failures:
            worst.setdefault((r.output, r.against), []).append((number, r))
        parts = []
        for (output, against), items in worst.items():
            cases = ", ".join(str(n) for n, _ in items)
            r = items[0][1]
            detail = (r.problem if r.problem is not None else
                      f"rel error {r.rel_error:.1e} at index {r.index}")
            parts.append(f"{output} vs {against} in case(s) {cases} ({detail})")
        return (f"{name}: FAILED {len(self.failures)} of {self.n_checks} checks: "
                + "; ".join(parts))
