"""Numeric gradient check of a whole module, with respect to its input and every parameter.

A full element-by-element check costs two forwards per element, too slow for a network. As
Chainer's gradient_check does, this compares directional derivatives instead: for a random
upstream gradient dout, L(x, W) = sum(dout * module(x)); for each array A (the input and each
parameter) and a random direction v,

    numeric  = (L(A + h v) - L(A - h v)) / (2 h)        analytic = sum(dL/dA * v)

which tests every element of dL/dA at the cost of two forwards. A few single elements are
checked as well, so a report can point at an index. Run it in float64.
"""
import numpy as np

__all__ = ["check_gradients", "ModuleGradReport"]


class ModuleGradReport:
    """Results of check_gradients: one row per check (array, what, numeric, analytic, error)."""

    def __init__(self, title, rows, rtol):
        self.title, self.rows, self.rtol = title, rows, rtol

    @property
    def passed(self):
        return all(r["ok"] for r in self.rows)

    @property
    def failed(self):
        return [r for r in self.rows if not r["ok"]]

    def worst(self):
        """The largest relative error, leaving out gradients that are zero up to rounding."""
        return max([r["error"] for r in self.rows if not r["noise"]] + [0.0])

    def names(self):
        return list(dict.fromkeys(r["name"] for r in self.rows))

    def assert_passed(self):
        if not self.passed:
            raise AssertionError(str(self))

    def __str__(self):
        lines = [f"{self.title}: {'PASSED' if self.passed else 'FAILED'} "
                 f"({len(self.rows)} checks, worst relative error {self.worst():.2e}, "
                 f"tolerance {self.rtol:.0e})"]
        for r in self.rows:
            if not r["ok"] or len(self.rows) <= 40:
                lines.append(f"  {'ok  ' if r['ok'] else 'FAIL'} {r['name']:<32} {r['what']:<18} "
                             f"numeric {r['numeric']: .10e}  analytic {r['analytic']: .10e}  "
                             f"step {r['step']:.0e}  rel error {r['error']:.2e}"
                             + (" (rounding noise)" if r["noise"] else ""))
        return "\n".join(lines)

    __repr__ = __str__


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def check_gradients(module, x, *, seed=0, h=1e-6, directions=2, elements=2, rtol=1e-5,
                    wrt=None, joint=0):
    """Check module.backward against numeric derivatives of its forward.

    module: a minidl.nn.Module (float64 recommended: module.astype(np.float64));
    x: an input batch of the module's dtype. The module's mode is left as it is (in train
    mode batch norm uses batch statistics, which is the harder case; dropout masks are made
    identical across calls by reseeding NumPy's global generator).
    wrt: names to check ('input' and parameter names; default all). directions: random
    directions per array; elements: random single elements per array. joint: number of
    random directions in the space of ALL parameters at once (two forwards check every
    parameter gradient together; reported as 'all parameters').
    A check passes when |numeric - analytic| <= rtol * (|numeric| + |analytic|), or when
    the difference is rounding noise (a gradient that is zero in exact arithmetic, e.g. a
    conv bias before batch norm), at step h or, failing that, h/10 or h/100 (a kink crossed
    by the larger step). Parameters and running statistics are restored afterwards.
    Returns a ModuleGradReport (``assert_passed()`` raises with the table on failure).
    """
    rng = np.random.default_rng(seed)
    params = module.params
    # Copies: in a flattened model (flat_parameters) params[k] = v writes into these arrays.
    saved_params = {k: params[k].copy() for k in params}
    saved_buffers = {n: b.copy() for n, b in module.named_buffers()}
    x = np.array(x, copy=True)

    def run(inp):
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            return _as_tuple(module.forward(inp))
        finally:
            np.random.set_state(state)

    outs = run(x)
    douts = tuple(rng.standard_normal(o.shape).astype(o.dtype) for o in outs)
    scale = sum(float(np.sum(np.abs(d * o))) for d, o in zip(douts, outs))
    # Rounding bound of a centered difference of L with step h: noise / h, where noise is
    # a generous multiple of eps * sum|dout * out| (rounding accumulates through the layers).
    noise = 64 * np.finfo(x.dtype).eps * max(scale, 1.0)
    module.zero_grad()
    run(x)
    dx = module.backward(douts if len(douts) > 1 else douts[0])
    grads = {k: np.array(v, copy=True) for k, v in module.grads.items()}

    def loss(inp):
        return sum(float(np.sum(d * o)) for d, o in zip(douts, run(inp)))

    targets = [("input", x, dx)] + [(k, saved_params[k], grads[k]) for k in saved_params]
    if wrt is not None:
        targets = [t for t in targets if t[0] in set(wrt)]
    names = list(saved_params)
    flat_params = np.concatenate([saved_params[k].ravel() for k in names]) if names else None
    if joint and names:
        flat_grads = np.concatenate([grads[k].ravel() for k in names])
        targets.append(("all parameters", flat_params, flat_grads))
    rows = []

    def set_flat(flat):
        offset = 0
        for k in names:
            size = saved_params[k].size
            params[k] = flat[offset:offset + size].reshape(saved_params[k].shape)
            offset += size

    try:
        for name, value, analytic_grad in targets:
            def at(perturbed, name=name):
                if name == "input":
                    return loss(perturbed)
                if name == "all parameters":
                    set_flat(perturbed)
                else:
                    params[name] = perturbed
                try:
                    return loss(x)
                finally:
                    if name == "all parameters":
                        set_flat(flat_params)
                    else:
                        params[name] = saved_params[name]

            count = joint if name == "all parameters" else directions
            checks = [("direction %d" % i, rng.standard_normal(value.shape))
                      for i in range(count)]
            for _ in range(0 if name == "all parameters" else elements):
                idx = tuple(int(rng.integers(s)) for s in value.shape)
                v = np.zeros(value.shape)
                v[idx] = 1.0
                checks.append((f"element {idx}", v))
            for what, v in checks:
                v = v.astype(value.dtype)
                analytic = float(np.sum(analytic_grad * v))
                # A ReLU or max-pool switch inside [A - h v, A + h v] (likely in a network
                # with thousands of units) spoils the difference; it shrinks with h while a
                # wrong gradient does not, so smaller steps are tried before failing.
                for step in (h, h / 10, h / 100):
                    numeric = (at(value + step * v) - at(value - step * v)) / (2 * step)
                    diff = abs(numeric - analytic)
                    atol = noise / step
                    ok = diff <= max(rtol * (abs(numeric) + abs(analytic)), atol)
                    if ok:
                        break
                rows.append({"name": name, "what": what, "numeric": numeric,
                             "analytic": analytic,
                             "error": diff / max(abs(numeric) + abs(analytic), 1e-300),
                             "noise": max(abs(numeric), abs(analytic)) <= atol,
                             "step": step, "ok": bool(ok)})
    finally:
        for k, v in saved_params.items():
            params[k] = v
        module.load_state_dict(saved_buffers, strict=False)
        module.zero_grad()
    return ModuleGradReport(f"check_gradients({type(module).__name__})", rows, rtol)
