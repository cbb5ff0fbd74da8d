"""Numeric gradients, relative errors, and the one gradient-check engine.

Course helpers, with the courses' signatures:

    compute_numeric_gradient(f, x, dLdf=None, h=1e-7)   EECS 498-007
    centered_difference(f, x, idx, dLdf, h)             the same, for one element of x
    rel_error(x, y, eps=1e-10)                          EECS 498-007: max|x-y| / max(|x|+|y|)
    rel_error_max(x, y)                                 CS231n: max of elementwise |x-y|/(|x|+|y|)
    eval_numerical_gradient(f, x, verbose=True, h=1e-5)         CS231n (f returns a scalar)
    eval_numerical_gradient_array(f, x, df, h=1e-5)             CS231n (f returns an array)

Gradient checks, all on one engine with one report (GradCheckReport):

    check_layer(Conv, x, w, b, conv_param)   a layer class (element-wise by default)
    check_pair(forward, backward, args)      any forward/backward pair (element-wise)
    check_module(module, x)                  a module, along random directions
                                             (minidl.nn.check_gradients)
    check_arrays(evaluate, arrays, analytic, dout, mode=...)    the engine, on callables

Each compares the analytic gradients of L = sum(dout * out), for a random upstream gradient
dout (upstream_gradient), with centered differences, 'elementwise' (the courses': every
element) or 'directional' (Chainer's check_backward: the derivative along random directions
checks every element in two evaluations, plus a few single elements to name an index). A
value passes within ``threshold`` relative to its array's scale (rel_error) or within the
noise floor of the centered difference (noise_floor); see docs/decisions.md.
"""
import copy
import inspect
from typing import NamedTuple

import numpy as np

__all__ = ["compute_numeric_gradient", "centered_difference", "directional_difference",
           "rel_error", "rel_error_max", "eval_numerical_gradient",
           "eval_numerical_gradient_array", "noise_floor", "upstream_gradient", "check_arrays",
           "check_pair", "check_layer", "check_module", "GradCheckReport", "GradResult",
           "Probe", "NOISE_FACTOR", "MODES"]

MODES = ("elementwise", "directional")


# --------------------------------------------------------------------------- numeric gradients

def _numeric_gradient(f, x, dLdf, h, verbose=False):
    """sum over outputs of dLdf * d f(x) / dx, by centered differences, perturbing x in place."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"numeric gradient: x must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"numeric gradient: x must be a float array, got {x.dtype} {x.shape}")
    fx = np.asarray(f(x))
    dLdf = np.ones_like(fx) if dLdf is None else np.asarray(dLdf)
    if dLdf.shape != fx.shape:
        raise ValueError(f"numeric gradient: dLdf has shape {dLdf.shape} but f(x) has shape "
                         f"{fx.shape}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        grad[idx] = centered_difference(f, x, idx, dLdf, h)
        if verbose:
            print(idx, grad[idx])
    return grad


def _slope(f_plus, f_minus, dLdf, h):
    # Outputs are subtracted before they are weighted and summed: outputs the step does not
    # reach cancel exactly instead of adding their rounding to the difference.
    diff = np.asarray(f_plus) - np.asarray(f_minus)
    return np.sum(diff if dLdf is None else diff * dLdf) / (2 * h)


def centered_difference(f, x, idx, dLdf, h):
    """sum(dLdf * (f(x + h e_idx) - f(x - h e_idx))) / (2h): the numeric derivative along one
    element idx of x, which is perturbed in place and restored. dLdf None means 1."""
    old = x[idx]
    x[idx] = old + h
    fxph = np.array(f(x), copy=True)  # copy: f may return a buffer it reuses
    x[idx] = old - h
    fxmh = np.array(f(x), copy=True)
    x[idx] = old
    return _slope(fxph, fxmh, dLdf, h)


def directional_difference(f, x, v, dLdf, h):
    """sum(dLdf * (f(x + h v) - f(x - h v))) / (2h): the numeric derivative of
    sum(dLdf * f) along the direction v (x's shape); x is not modified. dLdf None means 1."""
    fxph = np.array(f(x + h * v), copy=True)
    fxmh = np.array(f(x - h * v), copy=True)
    return _slope(fxph, fxmh, dLdf, h)


def compute_numeric_gradient(f, x, dLdf=None, h=1e-7):
    """Numeric gradient dL/dx of L = sum(dLdf * f(x)) by centered differences (EECS 498).

    f: callable taking x and returning an array (or a scalar); x: float array, perturbed in
    place one element at a time and restored; dLdf: upstream gradient of f(x)'s shape
    (default all ones); h: step. Returns an array of x's shape and dtype. Use float64: h=1e-7
    is below float32's resolution.
    """
    return _numeric_gradient(f, x, dLdf, h)


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """CS231n: numeric gradient of a scalar function f at x (printing each element when
    verbose). x (any shape) is perturbed in place and restored; returns grad of x's shape."""
    return _numeric_gradient(f, x, None, h, verbose=verbose)


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """CS231n: numeric gradient of sum(df * f(x)) at x, for f returning an array."""
    return _numeric_gradient(f, x, df, h)


def _as_pair(x, y, what):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"{what}: x and y must have the same shape, got {x.shape} and {y.shape}")
    return x, y


def rel_error(x, y, eps=1e-10):
    """EECS 498's relative error: max_i |x_i - y_i| / max(max_i (|x_i| + |y_i|), eps).

    One number for the whole array, scaled by its largest entries, so tiny entries with a
    large *relative* error (e.g. gradients that are nearly zero) do not dominate it.
    """
    x, y = _as_pair(x, y, "rel_error")
    if x.size == 0:
        return 0.0
    top = np.max(np.abs(x - y))
    bot = max(np.max(np.abs(x) + np.abs(y)), eps)
    return float(top / bot)


def rel_error_max(x, y):
    """CS231n's relative error: max_i |x_i - y_i| / max(1e-8, |x_i| + |y_i|)."""
    x, y = _as_pair(x, y, "rel_error_max")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


# --------------------------------------------------------------------------- noise, upstream

# The rounding error of L = sum(dout * out) is a few eps per unit of sum|dout * out| (or of
# the network's O(1) activations when its few outputs are small), and a centered difference
# divides the difference of two such values by 2h. Measured on every layer, sandwich and zoo
# family here with a gradient that is zero in exact arithmetic (a bias before batch norm),
# |numeric| stays below 3.5 * eps * max(sum|dout * out|, 1) / h; 16 leaves a margin of 4.
# Why this rule: docs/decisions.md ("Gradient checks").
NOISE_FACTOR = 16


def noise_floor(outputs, dout, h):
    """The finite-difference noise floor: NOISE_FACTOR * eps * max(sum|dout * out|, 1) / h.

    outputs, dout: an array or a tuple of arrays (one upstream gradient per output); eps is
    that of the outputs' float dtype (float64 for anything else); h: the step. Differences
    |numeric - analytic| below it are rounding noise, whatever their relative size.
    """
    outputs, dout = _as_tuple(outputs), _as_tuple(dout)
    scale = sum(float(np.sum(np.abs(np.asarray(d, dtype=np.float64) * o)))
                for d, o in zip(dout, outputs))
    dtype = np.result_type(*outputs) if outputs else np.float64
    eps = np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).eps
    return NOISE_FACTOR * float(eps) * max(scale, 1.0) / h


_DOUT_STREAM = 0x646F7574  # "dout"
_DIRECTION_STREAM = 0x64697273  # "dirs"


def upstream_gradient(shape, seed=0, *stream, dtype=np.float64):
    """The checks' random upstream gradient: standard normal of ``shape`` from
    default_rng([seed, *stream, "dout"]). A stream of its own, so that it never equals data
    drawn from default_rng(seed) (with x = a + b * dout, batch norm's dx is exactly zero and
    the check compares noise); ``stream`` (ints) tells cases or outputs apart."""
    rng = np.random.default_rng([int(seed), *(int(s) for s in stream), _DOUT_STREAM])
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- results, report

class Probe(NamedTuple):
    """One derivative of a directional check: ``what`` ('direction 0' or 'element (i, j)'),
    index (the element; None for a random direction), the numeric and analytic derivatives,
    the step that gave them, the noise floor at that step, and passed."""

    what: str
    index: object
    numeric: float
    analytic: float
    step: float
    atol: float
    passed: bool

    @property
    def rel_error(self):
        return rel_error([self.numeric], [self.analytic])


def _within(diff, scale, threshold, atol):
    """The one pass rule: |numeric - analytic| within threshold * scale (scale: the largest
    |numeric| + |analytic| of the array, or of the probe) or within the noise floor atol.
    NaN is never within."""
    return diff <= max(threshold * scale, atol)


class GradResult:
    """The check of one gradient (one array, or several together as 'all parameters').

    name, shape, threshold, atol (the noise floor at h); rel_error (element-wise: EECS 498's
    rel_error of the whole gradient; directional: the largest probe's); worst, the element
    index or probe that exceeds its bound most, with index (None for a random direction),
    numeric and analytic (the two values there); n_bad of n_checked elements or probes
    fail (_within); passed; problem (why the gradient could not be compared, e.g. backward
    returned the wrong shape); numeric_grad (element-wise) and analytic_grad arrays; probes
    (directional: the Probe list).
    """

    def __init__(self, name, shape, threshold, numeric_grad, analytic_grad, problem=None,
                 atol=0.0, probes=None):
        self.name, self.shape, self.threshold, self.atol = name, tuple(shape), threshold, atol
        self.numeric_grad, self.analytic_grad, self.problem = numeric_grad, analytic_grad, problem
        self.probes = probes
        self.rel_error, self.index, self.worst = np.inf, None, None
        self.numeric = self.analytic = None
        self.n_checked = len(probes) if probes is not None else int(np.prod(self.shape))
        self.n_bad = self.n_checked
        if problem is not None:
            return
        if probes is not None:
            self._from_probes(probes)
            return
        diff = np.abs(numeric_grad - analytic_grad)
        scale = max(np.max(np.abs(numeric_grad) + np.abs(analytic_grad), initial=0.0), 1e-10)
        if diff.size:
            self.index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
            self.worst = self.index
            self.numeric = float(numeric_grad[self.index])
            self.analytic = float(analytic_grad[self.index])
        self.rel_error = rel_error(numeric_grad, analytic_grad)
        self.n_bad = int(np.count_nonzero(~_within(diff, scale, threshold, atol)))

    def _from_probes(self, probes):
        def excess(p):  # how far past its bound a probe's difference is (NaN: the worst)
            d = abs(p.numeric - p.analytic)
            bound = max(self.threshold * (abs(p.numeric) + abs(p.analytic)), p.atol, 1e-300)
            return d / bound if d == d else np.inf
        self.rel_error = max((p.rel_error for p in probes), default=0.0)
        if probes:
            worst = max(probes, key=excess)
            self.worst, self.index = worst.what, worst.index
            self.numeric, self.analytic = worst.numeric, worst.analytic
        self.n_bad = sum(not p.passed for p in probes)

    @property
    def passed(self):
        return self.problem is None and self.n_bad == 0

    @property
    def at_noise_floor(self):
        """Passed only thanks to atol: the gradient is zero to numeric precision (e.g. the
        bias of a convolution followed by batch norm), so rel_error compares noise."""
        return self.passed and self.rel_error > self.threshold

    def __repr__(self):
        return (f"GradResult(d{self.name}, rel_error={self.rel_error:.3g}, worst={self.worst}, "
                f"passed={self.passed})")


class GradCheckReport:
    """Results of a gradient check: one GradResult per checked array.

    ``report.passed`` is True when every gradient passed; ``report['w']`` is w's result;
    iterating gives the results in order; ``print(report)`` prints the table (and, for a
    failed directional check, every failed probe); ``report.assert_passed()`` raises
    AssertionError with the table when a gradient is wrong (for tests).
    """

    def __init__(self, title, results, dtype, h, seed, mode="elementwise"):
        self.title, self.results, self.dtype, self.h, self.seed = title, results, dtype, h, seed
        self.mode = mode

    @property
    def passed(self):
        return all(r.passed for r in self.results)

    @property
    def failed(self):
        """The results that did not pass."""
        return [r for r in self.results if not r.passed]

    @property
    def errors(self):
        """{argument name: relative error}."""
        return {r.name: r.rel_error for r in self.results}

    def __getitem__(self, name):
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no gradient checked for {name!r}; checked: "
                       f"{[r.name for r in self.results]}")

    def __iter__(self):
        return iter(self.results)

    def __len__(self):
        return len(self.results)

    def assert_passed(self):
        if not self.passed:
            raise AssertionError("gradient check failed\n" + str(self))
        return self

    def __str__(self):
        n_fail = len(self.failed)
        verdict = "passed" if n_fail == 0 else f"FAILED ({n_fail} of {len(self.results)} wrong)"
        head = (f"gradient check {self.title}: {verdict}  [{self.mode}, "
                f"{np.dtype(self.dtype).name if self.dtype else 'input dtypes'}, h={self.h:g}, "
                f"seed={self.seed}]")
        elementwise = self.mode == "elementwise"
        cols = ["grad", "shape", "rel_error", "threshold", "status",
                "worst index" if elementwise else "worst probe", "numeric", "analytic",
                "bad elements" if elementwise else "bad probes"]
        rows = []
        for r in self.results:
            status = ("ok*" if r.at_noise_floor else "ok") if r.passed else "FAIL"
            if r.problem is not None:
                rows.append([_label(r), str(r.shape), "-", f"{r.threshold:.0e}", status,
                             r.problem, "", "", ""])
                continue
            rows.append([_label(r), str(r.shape), f"{r.rel_error:.2e}", f"{r.threshold:.0e}",
                         status, str(r.worst), _num(r.numeric), _num(r.analytic),
                         f"{r.n_bad}/{r.n_checked}"])
        widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
                  for i, c in enumerate(cols)]
        lines = [head, "  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths))]
        lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                  for row in rows]
        for r in self.failed:
            for p in r.probes or ():
                if not p.passed:
                    lines.append(f"  {_label(r)} {p.what}: numeric {p.numeric: .10e}, analytic "
                                 f"{p.analytic: .10e}, rel error {p.rel_error:.2e} (step "
                                 f"{p.step:g}, noise floor {p.atol:.1e})")
        noise = [r for r in self.results if r.at_noise_floor]
        if noise:
            lines.append(f"  * every difference is below the finite-difference noise floor "
                         f"{noise[0].atol:.1e}: the gradient is zero to numeric precision")
        return "\n".join(lines)

    def __repr__(self):
        return f"<GradCheckReport {self.title}: {'passed' if self.passed else 'FAILED'}>"


def _num(v):
    return "-" if v is None else f"{v: .8e}"


def _label(result):
    """'dw' for an argument's gradient; a joint check ('all parameters') as it is named."""
    return result.name if " " in result.name else f"d{result.name}"


# --------------------------------------------------------------------------- the engine

def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _flat(outputs):
    """One output, or a tuple of them, as one flat float array (several outputs add up)."""
    outputs = _as_tuple(outputs)
    if len(outputs) == 1:
        return np.asarray(outputs[0])
    return np.concatenate([np.ravel(np.asarray(o)) for o in outputs])


def check_arrays(evaluate, arrays, analytic, dout, *, mode="elementwise", wrt=None, h=1e-6,
                 threshold=1e-7, atol=None, directions=2, elements=2, joint=0,
                 joint_over=None, joint_name="all parameters", smaller_steps=0, seed=0,
                 title="gradient check", dtype=None):
    """The gradient-check engine: analytic gradients against centered differences.

    evaluate(overrides) -> the function's output (an array, or a tuple of arrays) with the
        arrays named in ``overrides`` (a dict name -> array) replacing those of ``arrays``;
        it must be repeatable (reseed random masks, copy state it writes).
    arrays: dict name -> array, the point where the gradients are checked.
    analytic: dict name -> the claimed gradient of L = sum(dout * output) with respect to
        that array (its shape), or a string saying why there is none (reported as a
        failure); its order is the report's.
    wrt: the names of ``analytic`` to check one by one (default: all of them).
    dout: the upstream gradient(s), matching evaluate({})'s output(s).
    mode: 'elementwise' (every element, two evaluations each) or 'directional' (per array,
        ``directions`` random directions and ``elements`` random single elements, two
        evaluations each; ``joint`` random directions in the space of the arrays
        ``joint_over`` (default: all of ``analytic``, whatever ``wrt``) together, reported
        as ``joint_name``).
    h: step. threshold: the largest rel_error that passes (a float, or a dict name -> float,
        1e-7 for names it lacks). atol: differences that pass whatever their relative size;
        default the noise floor at each step (noise_floor(outputs, dout, step)).
    smaller_steps: directional mode only: retry a failing probe with steps h/10, h/100, ...
        (this many): a ReLU or max-pool switch crossed by the step spoils the difference and
        shrinks with it, while a wrong gradient does not.
    seed: seeds the random directions and elements.
    Returns a GradCheckReport.
    """
    if mode not in MODES:
        raise ValueError(f"check_arrays: mode must be one of {MODES}, got {mode!r}")
    base = evaluate({})
    dout = _as_tuple(dout)
    outs = _as_tuple(base)
    if len(dout) != len(outs) or any(np.shape(d) != np.shape(o) for d, o in zip(dout, outs)):
        raise ValueError(f"check_arrays: dout has shapes {[np.shape(d) for d in dout]} but the "
                         f"output has shapes {[np.shape(o) for o in outs]}")
    dflat = _flat(dout)

    def floor(step):
        return noise_floor(outs, dout, step) if atol is None else atol

    def limit(name):
        return threshold.get(name, 1e-7) if isinstance(threshold, dict) else threshold

    unknown = [n for n in (wrt or ()) if n not in analytic]
    if unknown:
        raise ValueError(f"{title}: wrt names {unknown} are not among the checked arrays "
                         f"{list(analytic)}")
    checked = list(analytic) if wrt is None else [n for n in analytic if n in set(wrt)]
    # (name, point, analytic gradient, the function of that point alone, single elements)
    jobs = [(n, arrays[n], analytic[n], lambda a, n=n: _flat(evaluate({n: a})), elements)
            for n in checked]
    joint_over = [n for n in (analytic if joint_over is None else joint_over)
                  if not isinstance(analytic[n], str)]
    if mode == "directional" and joint and joint_over:
        jobs.append((joint_name, *_joined(evaluate, arrays, analytic, joint_over), 0))
    rng = np.random.default_rng([int(seed), _DIRECTION_STREAM])
    results = []
    for name, value, grad, f, n_elements in jobs:
        if isinstance(grad, str):
            results.append(GradResult(name, value.shape, limit(name), None, None, grad))
        elif mode == "elementwise":
            numeric = compute_numeric_gradient(f, value.copy(), dflat, h)
            results.append(GradResult(name, value.shape, limit(name), numeric, grad,
                                      atol=floor(h)))
        else:
            probes = [(f"direction {i}", None, rng.standard_normal(value.shape))
                      for i in range(directions)]
            for _ in range(n_elements if value.size else 0):
                idx = tuple(int(rng.integers(s)) for s in value.shape)
                v = np.zeros(value.shape)
                v[idx] = 1.0
                probes.append((f"element {idx}", idx, v))
            probes = [_probe(f, value, grad, dflat, what, idx, v, h, smaller_steps, limit(name),
                             floor) for what, idx, v in probes]
            results.append(GradResult(name, value.shape, limit(name), None, grad,
                                      atol=floor(h), probes=probes))
    return GradCheckReport(title, results, dtype, h, seed, mode)


def _probe(f, value, grad, dflat, what, idx, v, h, smaller_steps, threshold, floor):
    """One directional derivative along v, retried at smaller steps while it fails."""
    v = v.astype(value.dtype)
    analytic = float(np.sum(grad * v))
    for attempt in range(smaller_steps + 1):
        step = h / 10 ** attempt
        numeric = float(directional_difference(f, value, v, dflat, step))
        atol = floor(step)
        passed = _within(abs(numeric - analytic), abs(numeric) + abs(analytic), threshold, atol)
        if passed:
            break
    return Probe(what, idx, numeric, analytic, step, atol, bool(passed))


def _joined(evaluate, arrays, analytic, names):
    """Several arrays as one flat point: (point, analytic gradient, function of the point)."""
    shapes = [arrays[n].shape for n in names]
    ends = np.cumsum([int(np.prod(s, dtype=np.int64)) for s in shapes])[:-1]

    def f(flat):
        parts = np.split(flat, ends)
        return _flat(evaluate({n: p.reshape(s) for n, p, s in zip(names, parts, shapes)}))

    return (np.concatenate([arrays[n].ravel() for n in names]),
            np.concatenate([np.ravel(analytic[n]) for n in names]), f)


# --------------------------------------------------------------------------- layers

def _is_float_array(a):
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def _arg_names(forward, n):
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        p = params[i] if i < len(params) else None
        if p is not None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        else:
            names.append(f"arg{i}")
    return names


def _seeded(seed, fn, *args):
    """fn(*args) with NumPy's global generator reseeded (the same dropout mask every call),
    and its state restored afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return fn(*args)
    finally:
        np.random.set_state(state)


def check_pair(forward, backward, args, *, names=None, wrt=None, dout=None, seed=0, h=1e-6,
               threshold=1e-7, atol=None, dtype=np.float64, title=None, mode="elementwise",
               **options):
    """Check backward against numeric gradients of forward, for every array argument.

    forward(*args) -> (out, cache) and backward(dout, cache) -> grads: the layer API, or any
    pair written the same way (a student's functions, a module's forward/backward wrapped to
    this shape). backward returns one gradient per array argument of forward, in order (a
    single array when there is one); None arguments (e.g. b=None) may have None gradients.

    args: forward's positional arguments. Float arrays are checked (cast to ``dtype``, default
        float64; None keeps each array's dtype); other values (param dicts, ints, integer
        arrays) are passed through, deep-copied for every call so that state written into
        them (batch-norm running statistics) cannot drift during the check.
    names: argument names for the report (default: forward's parameter names).
    wrt: names or positions of the arguments to check (default: every float array).
    dout: upstream gradient (default: upstream_gradient(out.shape, seed)).
    seed: seeds dout and NumPy's global generator, which is reseeded before every call of
        forward so that random masks (dropout without a seed) are identical in every call.
    h, threshold, atol, mode and the directional options (directions, elements,
        smaller_steps): as check_arrays. threshold 1e-7 suits smooth layers in float64.
    Returns a GradCheckReport.
    """
    args = list(args)
    names = list(names) if names is not None else _arg_names(forward, len(args))
    if len(names) != len(args):
        raise ValueError(f"check_pair: {len(names)} names for {len(args)} arguments")
    if dtype is not None:
        args = [a.astype(dtype) if _is_float_array(a) else a for a in args]
    # Gradient slots: every array argument, and None where an optional array was left out.
    slots = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) or a is None]
    checkable = [i for i, a in enumerate(args) if _is_float_array(a)]
    if wrt is None:
        targets = checkable
    else:
        targets = []
        for key in wrt:
            i = names.index(key) if isinstance(key, str) and key in names else key
            if not isinstance(i, int) or i not in checkable:
                raise ValueError(f"check_pair: wrt entry {key!r} is not a float array argument; "
                                 f"those are {[names[j] for j in checkable]}")
            targets.append(i)
    if not targets:
        raise ValueError("check_pair: forward has no float array argument to check")
    position = {names[i]: i for i in checkable}

    def call(overrides):
        call_args = [a.copy() if isinstance(a, np.ndarray) else copy.deepcopy(a) for a in args]
        for name, value in overrides.items():
            call_args[position[name]] = value
        return _seeded(seed, forward, *call_args)

    out, cache = call({})
    out = np.asarray(out)
    if dout is None:
        dout = upstream_gradient(out.shape, seed, dtype=out.dtype)
    elif np.shape(dout) != out.shape:
        raise ValueError(f"check_pair: dout has shape {np.shape(dout)} but forward's output has "
                         f"shape {out.shape}")
    grads = backward(dout, cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) == len(slots):
        by_arg = dict(zip(slots, grads))
    elif len(grads) == len(checkable):
        by_arg = dict(zip(checkable, grads))
    else:
        raise ValueError(
            f"check_pair: backward returned {len(grads)} gradients but forward takes "
            f"{len(checkable)} float array arguments ({', '.join(names[i] for i in checkable)})")

    analytic = {}
    for i in targets:
        grad = by_arg[i]
        if grad is None:
            grad = "backward returned None"
        elif not isinstance(grad, np.ndarray):
            grad = f"backward returned {type(grad).__name__}, not an array"
        elif grad.shape != args[i].shape:
            grad = f"backward returned shape {grad.shape}"
        analytic[names[i]] = grad
    title = title or getattr(forward, "__qualname__", "forward/backward")
    return check_arrays(lambda overrides: np.asarray(call(overrides)[0]),
                        {names[i]: args[i] for i in checkable}, analytic, dout, mode=mode,
                        h=h, threshold=threshold, atol=atol, seed=seed, title=title,
                        dtype=dtype, **options)


def check_layer(layer, *args, backward="backward", **options):
    """Check a layer class's backward against numeric gradients for every array argument.

    layer: a class with static forward/backward (minidl.layers.Conv, BatchNorm, ...);
    args: forward's arguments, e.g. ``check_layer(Conv, x, w, b, conv_param)``;
    backward: the name of the backward method to check ('backward', or 'backward_alt' for
    BatchNorm) or a callable. Options as check_pair (wrt, dout, seed, h, threshold, dtype,
    mode). Returns a GradCheckReport; ``print(report)`` shows the table.
    """
    name = getattr(layer, "__name__", type(layer).__name__)
    if isinstance(backward, str):
        bw_name, bw = backward, getattr(layer, backward)
    else:
        bw_name, bw = getattr(backward, "__name__", "backward"), backward
    options.setdefault("title", f"{name}.{bw_name}")
    return check_pair(layer.forward, bw, args, **options)


# --------------------------------------------------------------------------- modules

def check_module(module, x, *, seed=0, h=1e-6, directions=2, elements=2, rtol=1e-5, wrt=None,
                 joint=0, mode="directional", atol=None, smaller_steps=2):
    """Check a module's backward against numeric derivatives of its forward
    (minidl.nn.check_gradients is this function).

    module: a minidl.nn.Module, or anything with its protocol: forward(x), backward(dout),
    ``params`` (name -> array, item assignment writes into the module), ``grads``,
    zero_grad(), named_buffers(), load_state_dict(state, strict=False); float64
    recommended (module.astype(np.float64)). x: an input batch of the module's dtype.
    The module's mode is left as it is (in train mode batch norm uses batch statistics,
    the harder case; dropout masks are made identical across calls by reseeding NumPy's
    global generator). Modules with several outputs get one upstream gradient per output.

    mode: 'directional' (default: per array ``directions`` random directions and ``elements``
    random single elements; ``joint`` random directions over ALL parameters at once,
    reported as 'all parameters') or 'elementwise' (every element: small modules only).
    wrt: names to check ('input' and parameter names; default all). rtol: the threshold
    (largest relative error that passes); atol, h: as check_arrays. smaller_steps: retries
    of a failing probe at h/10, h/100 (a kink crossed by the step).
    Parameters and running statistics are restored afterwards.
    Returns a GradCheckReport (``assert_passed()`` raises with the table on failure).
    """
    params = module.params
    saved_params = {k: np.array(params[k], copy=True) for k in params}
    saved_buffers = {n: np.array(b, copy=True) for n, b in module.named_buffers()}
    x = np.array(x, copy=True)

    def run(inp):
        return _seeded(seed, module.forward, inp)

    def evaluate(overrides):
        try:
            for name, value in overrides.items():
                if name != "input":
                    params[name] = value
            return run(overrides.get("input", x))
        finally:
            for name in overrides:
                if name != "input":
                    params[name] = saved_params[name]

    try:
        outs = _as_tuple(run(x))
        several = len(outs) > 1
        douts = tuple(upstream_gradient(o.shape, seed, *((k,) if several else ()), dtype=o.dtype)
                      for k, o in enumerate(outs))
        module.zero_grad()
        run(x)
        dx = module.backward(douts if several else douts[0])
        grads = {k: np.array(v, copy=True) for k, v in module.grads.items()}
        analytic = {"input": dx}
        analytic.update((k, grads[k]) for k in saved_params)
        arrays = {"input": x, **saved_params}
        return check_arrays(evaluate, arrays, analytic, douts, mode=mode, wrt=wrt, h=h,
                            threshold=rtol,
                            atol=atol, directions=directions, elements=elements, joint=joint,
                            joint_over=list(saved_params), smaller_steps=smaller_steps,
                            seed=seed, title=f"check_module({type(module).__name__})",
                            dtype=x.dtype)
    finally:
        for k, v in saved_params.items():
            params[k] = v
        module.load_state_dict(saved_buffers, strict=False)
        module.zero_grad()
