"""Numeric gradients, relative errors, and whole-layer gradient checks.

Course helpers, with the courses' signatures:

    compute_numeric_gradient(f, x, dLdf=None, h=1e-7)   EECS 498-007
    centered_difference(f, x, idx, dLdf, h)             the same, for one element of x
    rel_error(x, y, eps=1e-10)                          EECS 498-007: max|x-y| / max(|x|+|y|)
    rel_error_max(x, y)                                 CS231n: max of elementwise |x-y|/(|x|+|y|)
    eval_numerical_gradient(f, x, verbose=True, h=1e-5)         CS231n (f returns a scalar)
    eval_numerical_gradient_array(f, x, df, h=1e-5)             CS231n (f returns an array)

Whole-layer checks:

    check_layer(Conv, x, w, b, conv_param)   -> GradCheckReport
    check_pair(forward, backward, args)      -> GradCheckReport (any forward/backward pair)

A check runs forward(*args) -> (out, cache) and backward(dout, cache) -> grads with a random
upstream gradient dout (an all-ones dout hides errors: batch norm's dx is then exactly zero),
and compares each gradient with centered differences of sum(dout * forward(...)[0]). Array
arguments are checked (in float64 by default); everything else (param dicts, ints) is passed
through, deep-copied for every call so that running statistics do not drift while the check
runs; NumPy's global generator is reseeded before every call so that a dropout mask without a
seed is the same in every call. The report lists, per gradient, the relative error
(rel_error above), the element where numeric and analytic values differ most, both values
there, how many elements are off, and pass/fail: ``print(report)`` shows which element of
which gradient is wrong.
"""
import copy
import inspect

import numpy as np

__all__ = ["compute_numeric_gradient", "centered_difference", "rel_error", "rel_error_max",
           "eval_numerical_gradient", "eval_numerical_gradient_array", "check_pair", "check_layer", "GradCheckReport",
           "GradResult", "check_module"]


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


def centered_difference(f, x, idx, dLdf, h):
    """sum(dLdf * (f(x + h e_idx) - f(x - h e_idx))) / (2h): the numeric derivative along one
    element idx of x, which is perturbed in place and restored. dLdf None means 1."""
    old = x[idx]
    x[idx] = old + h
    fxph = np.array(f(x), copy=True)  # copy: f may return a buffer it reuses
    x[idx] = old - h
    fxmh = np.array(f(x), copy=True)
    x[idx] = old
    diff = fxph - fxmh
    return np.sum(diff if dLdf is None else diff * dLdf) / (2 * h)


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


# --------------------------------------------------------------------------- reports

class GradResult:
    """The check of one gradient.

    Attributes: name (the argument, e.g. 'w'), shape, rel_error (EECS 498 rel_error of the
    whole gradient), index (the element where |numeric - analytic| is largest), numeric and
    analytic (the two values there), n_bad (elements whose error, scaled like rel_error,
    exceeds the threshold), threshold, passed, problem (a message when the gradient could not
    be compared at all, e.g. backward returned the wrong shape), and the full arrays
    numeric_grad and analytic_grad.
    """

    def __init__(self, name, shape, threshold, numeric_grad, analytic_grad, problem=None,
                 atol=0.0):
        self.name, self.shape, self.threshold, self.atol = name, tuple(shape), threshold, atol
        self.numeric_grad, self.analytic_grad, self.problem = numeric_grad, analytic_grad, problem
        self.rel_error, self.index, self.numeric, self.analytic = np.inf, None, None, None
        self.n_bad = int(np.prod(self.shape))
        if problem is not None:
            return
        diff = np.abs(numeric_grad - analytic_grad)
        scale = max(np.max(np.abs(numeric_grad) + np.abs(analytic_grad), initial=0.0), 1e-10)
        if diff.size:
            self.index = np.unravel_index(int(np.argmax(diff)), diff.shape)
            self.index = tuple(int(i) for i in self.index)
            self.numeric = float(numeric_grad[self.index])
            self.analytic = float(analytic_grad[self.index])
        self.rel_error = rel_error(numeric_grad, analytic_grad)
        # An element is bad when its error exceeds both the relative threshold (scaled like
        # rel_error) and the finite-difference noise floor atol. NaN compares False, so
        # "not within" counts NaNs as bad.
        self.n_bad = int(np.count_nonzero(~(diff <= max(threshold * scale, atol))))

    @property
    def passed(self):
        return self.problem is None and self.n_bad == 0

    @property
    def at_noise_floor(self):
        """Passed only thanks to atol: the gradient is zero to numeric precision (e.g. the
        bias of a convolution followed by batch norm), so rel_error compares noise."""
        return self.passed and self.rel_error > self.threshold

    def __repr__(self):
        return (f"GradResult(d{self.name}, rel_error={self.rel_error:.3g}, index={self.index}, "
                f"passed={self.passed})")


class GradCheckReport:
    """Results of a gradient check: one GradResult per checked argument.

    ``report.passed`` is True when every gradient passed; ``report['w']`` is w's result;
    ``print(report)`` prints the table; ``report.assert_passed()`` raises AssertionError
    with the table when a gradient is wrong (for tests).
    """

    def __init__(self, title, results, dtype, h, seed):
        self.title, self.results, self.dtype, self.h, self.seed = title, results, dtype, h, seed

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
        head = (f"gradient check {self.title}: {verdict}  "
                f"[{np.dtype(self.dtype).name if self.dtype else 'input dtypes'}, h={self.h:g}, "
                f"seed={self.seed}]")
        cols = ["grad", "shape", "rel_error", "threshold", "status", "worst index", "numeric",
                "analytic", "bad elements"]
        rows = []
        for r in self.results:
            status = ("ok*" if r.at_noise_floor else "ok") if r.passed else "FAIL"
            if r.problem is not None:
                rows.append([f"d{r.name}", str(r.shape), "-", f"{r.threshold:.0e}", status,
                             r.problem, "", "", ""])
                continue
            rows.append([f"d{r.name}", str(r.shape), f"{r.rel_error:.2e}", f"{r.threshold:.0e}",
                         status, str(r.index), _num(r.numeric), _num(r.analytic),
                         f"{r.n_bad}/{int(np.prod(r.shape))}"])
        widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
                  for i, c in enumerate(cols)]
        lines = [head, "  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths))]
        lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                  for row in rows]
        noise = [r for r in self.results if r.at_noise_floor]
        if noise:
            lines.append(f"  * every difference is below the finite-difference noise floor "
                         f"{noise[0].atol:.1e}: the gradient is zero to numeric precision")
        return "\n".join(lines)

    def __repr__(self):
        return f"<GradCheckReport {self.title}: {'passed' if self.passed else 'FAILED'}>"


def _num(v):
    return "-" if v is None else f"{v: .8e}"


# --------------------------------------------------------------------------- checks

_DOUT_STREAM = 0x646F7574  # "dout"


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


def check_pair(forward, backward, args, *, names=None, wrt=None, dout=None, seed=0, h=1e-6,
               threshold=1e-7, atol=None, dtype=np.float64, title=None):
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
    dout: upstream gradient (default: standard normal of out's shape, drawn from ``seed``
        on a stream of its own, so it never coincides with data drawn from the same seed).
    seed: seeds dout and NumPy's global generator, which is reseeded before every call of
        forward so that random masks (dropout without a seed) are identical in every call.
    h: centered-difference step. threshold: largest rel_error that passes (a float, or a
        dict {name: float} with per-argument values; 1e-7 suits smooth layers in float64).
    atol: absolute differences that pass whatever the relative error, for gradients that
        are zero in exact arithmetic (a conv bias before batch norm): there both values are
        rounding noise and rel_error is meaningless. Default: 16 times the rounding estimate
        of the centered difference, 16 * eps(dtype) * sum|dout * out| / (2h) (rounding
        accumulates through the forward's several operations; about 1e-8 at these sizes, far
        below any real mistake).
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

    def call(override_index=None, override=None):
        call_args = [a.copy() if isinstance(a, np.ndarray) else copy.deepcopy(a) for a in args]
        if override_index is not None:
            call_args[override_index] = override
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            return forward(*call_args)
        finally:
            np.random.set_state(state)

    out, cache = call()
    out = np.asarray(out)
    if dout is None:
        # A stream of its own: data drawn with default_rng(seed) must not equal dout (with
        # x = a + b * dout, batch norm's dx is exactly zero and the check compares noise).
        dout = np.random.default_rng([seed, _DOUT_STREAM]).standard_normal(out.shape)
        dout = dout.astype(out.dtype)
    elif np.shape(dout) != out.shape:
        raise ValueError(f"check_pair: dout has shape {np.shape(dout)} but forward's output has "
                         f"shape {out.shape}")
    if atol is None:
        atol = 16 * np.finfo(out.dtype if np.issubdtype(out.dtype, np.floating) else
                             np.float64).eps * float(np.sum(np.abs(dout * out))) / (2 * h)
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

    results = []
    for i in targets:
        limit = threshold.get(names[i], 1e-7) if isinstance(threshold, dict) else threshold
        analytic, problem = by_arg[i], None
        if analytic is None:
            problem = "backward returned None"
        elif not isinstance(analytic, np.ndarray):
            problem = f"backward returned {type(analytic).__name__}, not an array"
        elif analytic.shape != args[i].shape:
            problem = f"backward returned shape {analytic.shape}"
        numeric = None
        if problem is None:
            x = args[i].copy()
            numeric = compute_numeric_gradient(lambda a, i=i: call(i, a)[0], x, dout, h)
        results.append(GradResult(names[i], args[i].shape, limit, numeric, analytic, problem,
                                  atol))
    title = title or getattr(forward, "__qualname__", "forward/backward")
    return GradCheckReport(title, results, dtype, h, seed)


def check_layer(layer, *args, backward="backward", **options):
    """Check a layer class's backward against numeric gradients for every array argument.

    layer: a class with static forward/backward (minidl.layers.Conv, BatchNorm, ...);
    args: forward's arguments, e.g. ``check_layer(Conv, x, w, b, conv_param)``;
    backward: the name of the backward method to check ('backward', or 'backward_alt' for
    BatchNorm) or a callable. Options as check_pair (wrt, dout, seed, h, threshold, dtype).
    Returns a GradCheckReport; ``print(report)`` shows the table.
    """
    name = getattr(layer, "__name__", type(layer).__name__)
    if isinstance(backward, str):
        bw_name, bw = backward, getattr(layer, backward)
    else:
        bw_name, bw = getattr(backward, "__name__", "backward"), backward
    options.setdefault("title", f"{name}.{bw_name}")
    return check_pair(layer.forward, bw, args, **options)


def check_module(module, x, **kwargs):
    """Check a minidl.nn.Module's backward against numeric derivatives of its forward.

    x: an input batch (N, ...) in the module's dtype (float64 recommended). Directional
    derivatives along random vectors check every element of the input and parameter
    gradients at two forwards each, plus a few single elements (so a failure names an index).
    See minidl.nn.gradcheck.check_gradients for the options; returns its report.
    """
    from .nn.gradcheck import check_gradients  # nn is built on layers; import on use

    return check_gradients(module, x, **kwargs)
