"""Update rules against steps computed by hand, their defaults, state and dtypes."""
import math

import numpy as np
import pytest

from minidl.optim import adam, rmsprop, sgd, sgd_momentum

RULES = [sgd, sgd_momentum, rmsprop, adam]


def test_sgd_step_and_default_learning_rate():
    w, dw = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    next_w, config = sgd(w, dw)
    np.testing.assert_allclose(next_w, [1.0 - 0.005, 2.0 + 0.01])
    assert config["learning_rate"] == 1e-2
    next_w, _ = sgd(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, [0.95, 2.1])


def test_sgd_momentum_two_steps_by_hand():
    w = np.array([1.0, -1.0])
    next_w, config = sgd_momentum(w, np.array([1.0, 2.0]), {"learning_rate": 0.1})
    assert config["momentum"] == 0.9
    np.testing.assert_allclose(config["velocity"], [-0.1, -0.2])
    np.testing.assert_allclose(next_w, [0.9, -1.2])
    next_w, config = sgd_momentum(next_w, np.array([-1.0, 0.0]), config)
    # v = 0.9 * [-0.1, -0.2] - 0.1 * [-1, 0] = [0.01, -0.18]
    np.testing.assert_allclose(config["velocity"], [0.01, -0.18])
    np.testing.assert_allclose(next_w, [0.91, -1.38])


def test_rmsprop_two_steps_by_hand():
    w = np.array([1.0])
    next_w, config = rmsprop(w, np.array([2.0]))
    assert (config["learning_rate"], config["decay_rate"], config["epsilon"]) == (1e-2, 0.99, 1e-8)
    # cache = 0.01 * 4 = 0.04, step = 0.01 * 2 / (0.2 + 1e-8)
    np.testing.assert_allclose(config["cache"], [0.04])
    np.testing.assert_allclose(next_w, [1.0 - 0.02 / (0.2 + 1e-8)], rtol=1e-15)
    w2, config = rmsprop(next_w, np.array([-1.0]), config)
    cache = 0.99 * 0.04 + 0.01 * 1.0
    np.testing.assert_allclose(config["cache"], [cache])
    np.testing.assert_allclose(w2, next_w + 0.01 / (math.sqrt(cache) + 1e-8), rtol=1e-15)


def test_adam_two_steps_by_hand():
    w = np.array([1.0, 1.0])
    next_w, config = adam(w, np.array([2.0, -0.5]))
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["epsilon"]) == \
        (1e-3, 0.9, 0.999, 1e-8)
    # t is incremented before use: the first step has t = 1, where bias correction makes
    # m_hat = dw and v_hat = dw**2, so each weight moves by about learning_rate
    assert config["t"] == 1
    np.testing.assert_allclose(config["m"], [0.2, -0.05])
    np.testing.assert_allclose(config["v"], [0.004, 0.00025])
    np.testing.assert_allclose(next_w, [1 - 1e-3 * 2 / (2 + 1e-8), 1 + 1e-3 * 0.5 / (0.5 + 1e-8)])
    w2, config = adam(next_w, np.array([1.0, 0.0]), config)
    m = 0.9 * 0.2 + 0.1 * 1.0
    v = 0.999 * 0.004 + 0.001 * 1.0
    m_hat, v_hat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    assert config["t"] == 2
    np.testing.assert_allclose(w2[0], next_w[0] - 1e-3 * m_hat / (math.sqrt(v_hat) + 1e-8))


def test_adam_continues_from_a_given_t():
    config = {"learning_rate": 0.1, "m": np.array([0.5]), "v": np.array([0.25]), "t": 5}
    next_w, config = adam(np.array([0.0]), np.array([1.0]), config)
    m, v = 0.9 * 0.5 + 0.1, 0.999 * 0.25 + 0.001
    expected = -0.1 * (m / (1 - 0.9 ** 6)) / (math.sqrt(v / (1 - 0.999 ** 6)) + 1e-8)
    assert config["t"] == 6
    np.testing.assert_allclose(next_w, [expected], rtol=1e-14)


@pytest.mark.parametrize("rule", RULES)
def test_rules_do_not_modify_w_and_fill_config(rule):
    w = np.random.default_rng(0).standard_normal((3, 4))
    w0 = w.copy()
    next_w, config = rule(w, np.ones_like(w), None)
    np.testing.assert_array_equal(w, w0)
    assert next_w.shape == w.shape and "learning_rate" in config
    assert not np.array_equal(next_w, w)


@pytest.mark.parametrize("rule", RULES)
def test_rules_keep_float32(rule):
    w = np.ones((2, 3), dtype=np.float32)
    config = None
    for _ in range(2):
        w, config = rule(w, np.full((2, 3), 0.5, dtype=np.float32), config)
        assert w.dtype == np.float32


@pytest.mark.parametrize("rule", RULES)
def test_rules_reject_mismatched_shapes(rule):
    name = rule.__name__
    with pytest.raises(ValueError, match=rf"{name}: w and dw must have the same shape, got w "
                                         r"\(2, 3\) and dw \(3, 2\)"):
        rule(np.ones((2, 3)), np.ones((3, 2)))


def test_rules_reject_state_from_another_parameter():
    _, config = adam(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"adam: config\['m'\] has shape \(3,\) but w has shape "
                                         r"\(4,\); use one config dict per parameter"):
        adam(np.ones(4), np.ones(4), config)


@pytest.mark.parametrize("rule, key, value, expected", [
    (sgd, "learning_rate", -1e-3, r"a finite number >= 0, got -0.001"),
    (sgd, "learning_rate", float("nan"), r"a finite number >= 0, got nan"),
    (sgd_momentum, "momentum", 1.0, r"in \[0, 1\), got 1.0"),
    (sgd_momentum, "momentum", -0.1, r"in \[0, 1\), got -0.1"),
    (rmsprop, "decay_rate", 1.5, r"in \[0, 1\], got 1.5"),
    (rmsprop, "decay_rate", -0.01, r"in \[0, 1\], got -0.01"),
    (rmsprop, "epsilon", 0.0, r"a finite number > 0, got 0.0"),
    (adam, "beta1", 1.0, r"in \[0, 1\), got 1.0"),
    (adam, "beta2", -0.5, r"in \[0, 1\), got -0.5"),
    (adam, "beta2", 1.2, r"in \[0, 1\), got 1.2"),
    (adam, "epsilon", -1e-8, r"a finite number > 0, got -1e-08"),
    (adam, "learning_rate", -1, r"a finite number >= 0, got -1"),
])
def test_out_of_range_hyperparameters_name_the_rule_the_key_and_the_value(rule, key, value,
                                                                         expected):
    config = {key: value}
    with pytest.raises(ValueError, match=rf"^{rule.__name__}: config\['{key}'\] must be "
                                         + expected):
        rule(np.ones(3), np.ones(3), config)
    assert not any(k in config for k in ("velocity", "cache", "m", "v"))  # nothing stepped


@pytest.mark.parametrize("rule", RULES)
def test_the_edges_of_the_ranges_are_accepted(rule):
    config = {"learning_rate": 0.0, "momentum": 0.0, "decay_rate": 1.0, "beta1": 0.0,
              "beta2": 0.0, "epsilon": 1e-12}
    w = np.ones(3)
    next_w, _ = rule(w, np.ones(3), {k: v for k, v in config.items()})
    np.testing.assert_array_equal(next_w, w)  # learning rate 0: nothing moves


@pytest.mark.parametrize("rule", RULES)
def test_a_non_numeric_hyperparameter_is_a_type_error(rule):
    with pytest.raises(TypeError, match=rf"{rule.__name__}: config\['learning_rate'\] must be a "
                                        r"number, got str '0.1'"):
        rule(np.ones(3), np.ones(3), {"learning_rate": "0.1"})


@pytest.mark.parametrize("rule", RULES)
def test_integer_weights_and_mixed_precision_are_refused(rule):
    name = rule.__name__
    with pytest.raises(TypeError, match=rf"{name}: w must be a float32 or float64 array, got "
                                        r"int64 \(3,\)"):
        rule(np.arange(3), np.ones(3))
    with pytest.raises(TypeError, match=rf"{name}: w is float32 but dw is float64"):
        rule(np.ones(3, dtype=np.float32), np.ones(3))


def test_adam_refuses_a_negative_step_count():
    with pytest.raises(ValueError, match=r"adam: config\['t'\] \(the number of steps taken\) "
                                         r"must be an integer >= 0, got -1"):
        adam(np.ones(2), np.ones(2), {"t": -1})
