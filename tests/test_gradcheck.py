"""minidl.gradcheck: numeric gradients, the two relative errors, and the layer checker's report
(it must point at the wrong element of the wrong gradient)."""
import numpy as np
import pytest

from minidl.gradcheck import (check_layer, check_pair, compute_numeric_gradient,
                              eval_numerical_gradient, eval_numerical_gradient_array, rel_error,
                              rel_error_max)
from minidl.layers.dropout import Dropout
from minidl.layers.linear import Linear, ReLU
from minidl.layers.norm import BatchNorm


def _linear_args(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)


# ----------------------------------------------------------------------------- numeric gradients

def test_compute_numeric_gradient_with_upstream_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    dLdf = rng.standard_normal((3, 4))
    grad = compute_numeric_gradient(lambda a: a ** 2, x, dLdf)
    np.testing.assert_allclose(grad, 2 * x0 * dLdf, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(x, x0)  # perturbations are undone
    # default upstream gradient: ones
    A = rng.standard_normal((2, 3))
    grad = compute_numeric_gradient(lambda a: A @ a, x[:3, :2].copy())
    np.testing.assert_allclose(grad, np.repeat(A.sum(axis=0)[:, None], 2, axis=1), rtol=1e-6)


def test_cs231n_numeric_gradients(capsys):
    x = np.array([1.0, -2.0, 0.5])
    grad = eval_numerical_gradient(lambda a: np.sum(a ** 3), x, verbose=False)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    assert capsys.readouterr().out == ""
    eval_numerical_gradient(lambda a: np.sum(a ** 3), x, verbose=True)
    assert capsys.readouterr().out.count("\n") == 3  # one line per element
    df = np.array([1.0, 2.0, -1.0])
    grad = eval_numerical_gradient_array(lambda a: np.sin(a), x, df)
    np.testing.assert_allclose(grad, np.cos(x) * df, rtol=1e-8)


def test_numeric_gradient_rejects_mismatched_upstream_gradient():
    with pytest.raises(ValueError, match=r"dLdf has shape \(2,\) but f\(x\) has shape \(3,\)"):
        compute_numeric_gradient(lambda a: a * 2, np.ones(3), np.ones(2))


def test_rel_error_follows_eecs498_and_rel_error_max_cs231n():
    x, y = np.array([1.0, 2.0]), np.array([1.0, 2.5])
    assert rel_error(x, y) == pytest.approx(0.5 / 4.5)
    assert rel_error_max(x, y) == pytest.approx(0.5 / 4.5)
    # they differ when a tiny entry is relatively wrong: EECS 498 scales by the largest entry
    x, y = np.array([1e-3, 10.0]), np.array([2e-3, 10.0])
    assert rel_error(x, y) == pytest.approx(1e-3 / 20)
    assert rel_error_max(x, y) == pytest.approx(1e-3 / 3e-3)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match=r"rel_error: x and y must have the same shape"):
        rel_error(np.ones(2), np.ones(3))


# ----------------------------------------------------------------------------- the checker

class CorruptedLinear:
    """Linear whose backward is wrong in exactly one element of dw."""
    forward = staticmethod(Linear.forward)

    @staticmethod
    def backward(dout, cache):
        dx, dw, db = Linear.backward(dout, cache)
        dw = dw.copy()
        dw[2, 1] += 0.5
        return dx, dw, db


def test_report_pinpoints_the_corrupted_element():
    x, w, b = _linear_args()
    report = check_layer(CorruptedLinear, x, w, b)
    assert not report.passed
    assert [r.name for r in report.failed] == ["w"]
    bad = report["w"]
    assert bad.index == (2, 1) and bad.n_bad == 1
    # the numeric value there is the true gradient, the analytic one is off by 0.5
    assert bad.analytic - bad.numeric == pytest.approx(0.5, abs=1e-6)
    assert report["x"].passed and report["b"].passed
    text = str(report)
    assert "FAILED (1 of 3 wrong)" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("dw "))
    assert "FAIL" in line and "(2, 1)" in line and "1/20" in line
    with pytest.raises(AssertionError, match=r"gradient check failed"):
        report.assert_passed()


def test_checker_uses_a_random_upstream_gradient():
    class ReLUIgnoringDout:
        """Correct only for dout = ones: returns the local derivative, not dout times it."""
        forward = staticmethod(ReLU.forward)

        @staticmethod
        def backward(dout, cache):
            x, = cache.values  # the input ReLU.forward kept
            return (x > 0).astype(dout.dtype)

    x = np.random.default_rng(0).standard_normal((4, 3))
    assert check_layer(ReLUIgnoringDout, x, dout=np.ones((4, 3))).passed
    assert not check_layer(ReLUIgnoringDout, x).passed


def test_checker_freezes_param_dicts_and_random_masks():
    rng = np.random.default_rng(0)
    x, gamma, beta = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(3)
    bn_param = {"mode": "train"}
    check_layer(BatchNorm, x, gamma, beta, bn_param).assert_passed()
    assert bn_param == {"mode": "train"}  # the caller's dict never saw the running stats
    # dropout without a seed draws from the global generator: reseeded before every call
    state = np.random.get_state()[1].copy()
    check_layer(Dropout, x, {"p": 0.5, "mode": "train"}).assert_passed()
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # and restored


def test_checker_upcasts_to_float64_and_names_arguments():
    x, w, b = (a.astype(np.float32) for a in _linear_args())
    report = check_layer(Linear, x, w, b)
    assert report.passed and report.dtype == np.float64
    assert [r.name for r in report] == ["x", "w", "b"]
    assert set(report.errors) == {"x", "w", "b"}


def test_checker_threshold_wrt_and_atol_options():
    x, w, b = _linear_args()
    assert not check_layer(Linear, x, w, b, threshold=1e-30, atol=0).passed
    report = check_layer(Linear, x, w, b, threshold={"w": 1e-30}, atol=0)
    assert [r.name for r in report.failed] == ["w"]
    report = check_layer(Linear, x, w, b, wrt=["w"])
    assert [r.name for r in report] == ["w"]
    with pytest.raises(ValueError, match=r"wrt entry 'q' is not a float array argument"):
        check_layer(Linear, x, w, b, wrt=["q"])


def test_check_pair_accepts_plain_functions():
    def scale_forward(x, a, param):
        return x * a * param["k"], (x, a, param["k"])

    def scale_backward(dout, cache):
        x, a, k = cache
        return dout * a * k, np.sum(dout * x * k, keepdims=True).reshape(a.shape)

    x = np.random.default_rng(1).standard_normal((2, 3))
    report = check_pair(scale_forward, scale_backward, (x, np.array([1.5]), {"k": 2.0}))
    report.assert_passed()
    assert [r.name for r in report] == ["x", "a"]
    assert "scale_forward" in str(report)


def test_checker_reports_gradients_of_the_wrong_shape_or_number():
    class WrongShape:
        forward = staticmethod(Linear.forward)

        @staticmethod
        def backward(dout, cache):
            dx, dw, db = Linear.backward(dout, cache)
            return dx, dw.T, db

    x, w, b = _linear_args()
    report = check_layer(WrongShape, x, w, b)
    assert not report["w"].passed and "backward returned shape (5, 4)" in str(report)

    class TooFew:
        forward = staticmethod(Linear.forward)

        @staticmethod
        def backward(dout, cache):
            return Linear.backward(dout, cache)[:2]

    with pytest.raises(ValueError, match=r"backward returned 2 gradients but forward takes 3 "
                                         r"float array arguments \(x, w, b\)"):
        check_layer(TooFew, x, w, b)


class BiasThenBatchNorm:
    """x + b, then batch norm: the gradient of b is zero in exact arithmetic."""

    @staticmethod
    def forward(x, b, gamma, beta, bn_param):
        return BatchNorm.forward(x + b, gamma, beta, bn_param)

    @staticmethod
    def backward(dout, cache):
        dx, dgamma, dbeta = BatchNorm.backward(dout, cache)
        return dx, dx.sum(axis=0), dgamma, dbeta


def _bias_then_batchnorm_args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(3),
            rng.standard_normal(3), {"mode": "train"})


def test_zero_gradients_pass_at_the_noise_floor():
    """A bias before batch norm has an exactly zero gradient: both sides are rounding noise,
    so rel_error is meaningless there and the checker must not fail it."""
    report = check_layer(BiasThenBatchNorm, *_bias_then_batchnorm_args())
    report.assert_passed()
    assert report["b"].at_noise_floor and not report["x"].at_noise_floor
    assert "noise floor" in str(report)


def test_check_module_reports_a_wrong_module_gradient():
    """minidl.gradcheck.check_module: passes a correct module, names the parameter of a broken one."""
    from minidl import nn
    from minidl.gradcheck import check_module

    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).astype(np.float64)
    x = rng.standard_normal((5, 4))
    assert check_module(net, x).passed

    class Broken(nn.Linear):
        def _backward(self, dout):
            dx = super()._backward(dout)
            wrong = np.zeros_like(self.params["weight"])
            wrong[0, 0] = 1.0  # one wrong element
            self._accumulate("weight", wrong)
            return dx

    bad = nn.Sequential(Broken(4, 3)).astype(np.float64)
    report = check_module(bad, x, elements=0)
    assert not report.passed
    assert {r.name for r in report.failed} == {"0.weight"}


# ----------------------------------------------------------------------------- one engine

def test_both_modes_use_one_noise_floor_rule():
    """noise_floor is NOISE_FACTOR * eps * max(sum|dout * out|, 1) / h, and it is the atol of
    an element-wise check and of every directional probe (at the probe's step)."""
    from minidl import nn
    from minidl.gradcheck import NOISE_FACTOR, check_module, noise_floor, upstream_gradient

    out, dout = np.array([[2.0, -4.0]]), np.array([[0.5, 1.0]])
    eps = np.finfo(np.float64).eps
    assert noise_floor(out, dout, 1e-6) == pytest.approx(NOISE_FACTOR * eps * 5.0 / 1e-6)
    assert noise_floor(out * 1e-3, dout, 1e-6) == pytest.approx(NOISE_FACTOR * eps / 1e-6)
    assert noise_floor((out, out), (dout, dout), 1e-5) == pytest.approx(
        NOISE_FACTOR * eps * 10.0 / 1e-5)

    x, w, b = _linear_args()
    report = check_layer(Linear, x, w, b, seed=3)
    expected = noise_floor(Linear.forward(x, w, b)[0], upstream_gradient((3, 5), 3), 1e-6)
    assert [r.atol for r in report] == pytest.approx([expected] * 3)

    net = nn.Sequential(nn.Linear(4, 3)).astype(np.float64)
    report = check_module(net, x, seed=3, h=1e-5)
    expected = noise_floor(net.forward(x), upstream_gradient((3, 3), 3), 1e-5)
    probes = [p for r in report for p in r.probes]
    assert probes and all(p.atol == pytest.approx(expected * (1e-5 / p.step)) for p in probes)


def test_directional_mode_checks_a_layer_and_explains_the_failure():
    x, w, b = _linear_args()
    check_layer(Linear, x, w, b, mode="directional").assert_passed()
    report = check_layer(CorruptedLinear, x, w, b, mode="directional", directions=3, elements=0)
    assert [r.name for r in report.failed] == ["w"]
    assert report["w"].n_bad == 3 and report["w"].n_checked == 3
    text = str(report)
    assert "[directional, float64" in text and "worst probe" in text
    assert "dw direction 2: numeric" in text  # every failed probe, with both values


def test_elementwise_mode_checks_a_module_element_by_element():
    from minidl import nn
    from minidl.gradcheck import check_module

    class Broken(nn.Linear):
        def _backward(self, dout):
            dx = super()._backward(dout)
            wrong = np.zeros_like(self.params["weight"])
            wrong[2, 1] = 1.0
            self._accumulate("weight", wrong)
            return dx

    x = np.random.default_rng(0).standard_normal((5, 4))
    report = check_module(nn.Sequential(Broken(4, 3)).astype(np.float64), x, mode="elementwise")
    assert [r.name for r in report.failed] == ["0.weight"]
    bad = report["0.weight"]
    assert bad.index == (2, 1) and bad.n_bad == 1 and bad.n_checked == 12
    assert bad.analytic - bad.numeric == pytest.approx(1.0, abs=1e-6)
    assert report["input"].numeric_grad.shape == (5, 4)


def test_zero_gradients_pass_at_the_noise_floor_in_directional_mode_too():
    report = check_layer(BiasThenBatchNorm, *_bias_then_batchnorm_args(), mode="directional")
    report.assert_passed()
    assert report["b"].at_noise_floor and not report["x"].at_noise_floor


def test_check_module_restores_parameters_and_running_statistics():
    from minidl import nn
    from minidl.gradcheck import check_module

    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).astype(np.float64)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    check_module(net, np.random.default_rng(0).standard_normal((6, 4)), joint=1).assert_passed()
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert all(not g.any() for g in net.grads.values())
    with pytest.raises(TypeError, match="check_gradients: module must be a minidl.nn.Module"):
        nn.check_gradients(Linear, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"wrt names \['0.wieght'\] are not among"):
        check_module(net, np.zeros((6, 4)), wrt=["input", "0.wieght"])


def test_the_upstream_gradient_has_a_stream_of_its_own():
    from minidl.gradcheck import upstream_gradient

    dout = upstream_gradient((3, 5), 7)
    assert not np.allclose(dout, np.random.default_rng(7).standard_normal((3, 5)))
    assert not np.allclose(dout, upstream_gradient((3, 5), 7, 0))  # streams tell cases apart
    x, w, b = _linear_args()
    same = check_layer(Linear, x, w, b, seed=7, dout=dout)
    default = check_layer(Linear, x, w, b, seed=7)
    np.testing.assert_array_equal(same["w"].numeric_grad, default["w"].numeric_grad)


def test_the_gradient_check_engine_imports_nothing_above_it():
    """minidl.gradcheck sits below minidl.nn: the module check works on the Module protocol
    and the engine on plain callables, so nothing is imported from nn (or models)."""
    import ast
    import pathlib

    import minidl.gradcheck

    tree = ast.parse(pathlib.Path(minidl.gradcheck.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] in ("nn", "models", "minidl")]
