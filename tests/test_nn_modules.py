"""minidl.nn: the Module contract, layer modules, containers, state, optimizer, wrapper."""
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from minidl import nn, optim
from minidl.layers.conv import FastConv
from minidl.layers.linear import Linear as LinearLayer
from minidl.nn import ShapeError, StateDictError


def tiny_net(dtype=np.float64, seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(2, 3, 3, padding=1), bn1=nn.BatchNorm2d(3), relu=nn.ReLU(),
        pool=nn.MaxPool2d(2), flatten=nn.Flatten(), fc=nn.Linear(12, 4))).astype(dtype)


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------- names, shapes
def test_parameters_have_dotted_names_and_pytorch_shapes():
    net = tiny_net()
    assert dict(net.param_shapes()) == {
        "conv1.weight": (3, 2, 3, 3), "conv1.bias": (3,), "bn1.weight": (3,),
        "bn1.bias": (3,), "fc.weight": (4, 12), "fc.bias": (4,)}
    assert [n for n, _ in net.named_buffers()] == ["bn1.running_mean", "bn1.running_var"]
    assert net.num_params() == 54 + 3 + 6 + 48 + 4
    assert [n for n, _ in net.named_modules()][:3] == ["", "conv1", "bn1"]


def test_parameters_are_drawn_only_when_needed_and_do_not_depend_on_access_order():
    nn.manual_seed(3)
    a = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(4, 5))
    nn.manual_seed(3)
    b = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(4, 5))
    assert a[0]._params == {} and a.num_params() == 54 + 3 + 20 + 5
    w_fc_first = b.params["1.weight"].copy()      # b draws fc before conv
    np.testing.assert_array_equal(a.params["0.weight"], b.params["0.weight"])
    np.testing.assert_array_equal(a.params["1.weight"], w_fc_first)


def test_conv2d_module_runs_the_fastconv_layer():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2).astype(np.float32)
    x = rand(2, 4, 7, 7, dtype=np.float32)
    out = conv(x)
    ref, cache = FastConv.forward(x, conv.weight, conv.bias, {"stride": 2, "pad": 1,
                                                             "groups": 2, "floor_mode": True})
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == np.float32 and conv.weight.shape == (6, 2, 3, 3)
    dout = rand(*out.shape, seed=1, dtype=np.float32)
    dx = conv.backward(dout)
    rdx, rdw, rdb = FastConv.backward(dout, cache)
    np.testing.assert_array_equal(dx, rdx)
    np.testing.assert_array_equal(conv.grads["weight"], rdw)
    np.testing.assert_array_equal(conv.grads["bias"], rdb)


def test_linear_module_keeps_pytorch_weight_layout_over_the_course_layer():
    fc = nn.Linear(5, 3).astype(np.float64)
    x = rand(4, 5)
    out = fc(x)
    np.testing.assert_allclose(out, x @ fc.weight.T + fc.bias)
    ref, cache = LinearLayer.forward(x, fc.weight.T, fc.bias)
    np.testing.assert_allclose(out, ref)
    fc.backward(np.ones_like(out))
    _, dw, db = LinearLayer.backward(np.ones_like(out), cache)
    np.testing.assert_allclose(fc.grads["weight"], dw.T)
    np.testing.assert_allclose(fc.grads["bias"], db)


def test_output_shape_without_data_agrees_with_forward():
    cases = [
        (nn.Conv2d(3, 8, 5, stride=2, padding=1, dilation=2), (3, 17, 13)),
        (nn.MaxPool2d(3, 2, ceil_mode=True), (4, 14, 11)),
        (nn.MaxPool2d(3, 2, padding=1), (4, 9, 9)),
        (nn.AvgPool2d(2, 2), (4, 7, 9)),
        (nn.AdaptiveAvgPool2d((4, 3)), (2, 14, 5)),
        (nn.GlobalAvgPool(), (5, 3, 4)),
        (nn.Sequential(nn.Flatten(), nn.Linear(60, 7)), (5, 3, 4)),
        (nn.Concat(nn.Conv2d(3, 2, 1), nn.Conv2d(3, 5, 3, padding=1), passthrough=True),
         (3, 6, 6)),
        (nn.Sequential(nn.ChannelSlice(1, 3), nn.Subsample(2), nn.ChannelPad(1, 2)), (4, 5, 6)),
    ]
    for module, shape in cases:
        module.astype(np.float64)
        out = module(rand(2, *shape))
        assert module.output_shape(shape) == out.shape[1:], module



def test_trace_shapes_reports_each_layer_in_order_without_drawing_parameters():
    model = nn.Sequential({
        "conv": nn.Conv2d(3, 8, 3, stride=2, padding=1),
        "relu": nn.ReLU(),
        "inception": nn.Concat(nn.Conv2d(8, 2, 1, bias=False), nn.MaxPool2d(3, 1, padding=1)),
        "flatten": nn.Flatten(),
        "fc": nn.Linear(10 * 5 * 5, 4),
    })
    out, layers = model.trace_shapes((3, 9, 9))
    assert out == model.output_shape((3, 9, 9)) == (4,)
    assert [t.name for t in layers] == ["conv", "relu", "inception.branch1", "inception.branch2",
                                        "inception", "flatten", "fc"]
    by_name = {t.name: t for t in layers}
    conv = by_name["conv"]
    assert (conv.in_shape, conv.out_shape, conv.num_params) == ((3, 9, 9), (8, 5, 5), 8 * 27 + 8)
    assert (conv.filters, conv.kernel, conv.stride, conv.pad) == (8, "3", "2", "1")
    assert conv.flops == 8 * 5 * 5 * 3 * 9 and conv.module is model.conv
    join = by_name["inception"]                 # a Concat join is a row of its own
    assert (join.in_shape, join.out_shape, join.num_params, join.flops) == (
        (8, 5, 5), (10, 5, 5), 0, 0)
    assert by_name["fc"].num_params == 250 * 4 + 4 and by_name["fc"].flops == 250 * 4
    assert sum(t.num_params for t in layers) == model.num_params()
    assert all(not m._params for m in model.modules())   # shapes only: nothing drawn
    with pytest.raises(ShapeError, match="fc"):
        model.trace_shapes((3, 7, 7))


def test_maxpool_ceil_mode_follows_pytorch_sizes_and_values():
    # PyTorch: out = ceil((H + 2p - k) / s) + 1, minus 1 if the last window starts in the padding
    for size, k, s, p, want in [(112, 3, 2, 0, 56), (14, 2, 2, 0, 7), (13, 3, 2, 0, 6),
                                (110, 3, 2, 0, 55), (26, 3, 2, 0, 13), (5, 3, 2, 1, 3),
                                (6, 2, 2, 1, 4)]:
        pool = nn.MaxPool2d(k, s, p, ceil_mode=True)
        assert pool.output_shape((1, size, size)) == (1, want, want)
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    out = nn.MaxPool2d(2, 2, ceil_mode=True)(x)
    np.testing.assert_array_equal(out[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_adaptive_avg_pool_uses_pytorch_bins():
    x = rand(1, 1, 14, 14)
    out = nn.AdaptiveAvgPool2d(4)(x)
    bins = [(0, 4), (3, 7), (7, 11), (10, 14)]   # floor(i*14/4), ceil((i+1)*14/4)
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            assert out[0, 0, i, j] == pytest.approx(x[0, 0, r0:r1, c0:c1].mean())
    y = rand(2, 3, 6, 6)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(6)(y), y)


# ---------------------------------------------------------------------------- running
def test_backward_accumulates_parameter_gradients_until_zero_grad():
    net = tiny_net()
    x, dout = rand(3, 2, 4, 4), rand(3, 4, seed=1)
    net(x)
    net.backward(dout)
    first = {k: v.copy() for k, v in net.grads.items()}
    handed_out = net.grads["fc.weight"]
    net(x)
    net.backward(dout)
    for k, v in net.grads.items():
        np.testing.assert_allclose(v, 2 * first[k], atol=1e-12)
    net.zero_grad()
    assert all(not v.any() for v in net.grads.values())
    np.testing.assert_allclose(handed_out, 2 * first["fc.weight"])  # not zeroed in place


def test_backward_needs_a_forward_first():
    net = tiny_net()
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(rand(3, 4))
    net(rand(3, 2, 4, 4))
    net.backward(rand(3, 4))
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(rand(3, 4))


def test_batchnorm_module_translates_pytorch_momentum_and_tracks_unbiased_variance():
    bn = nn.BatchNorm2d(3, momentum=0.25).astype(np.float64)
    x = rand(4, 3, 2, 2) * 2 + 1
    bn(x)
    mean = x.mean(axis=(0, 2, 3))
    var_unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.75 * 0 + 0.25 * mean)
    np.testing.assert_allclose(bn.running_var, 0.75 * 1 + 0.25 * var_unbiased)
    bn.eval()
    out = bn(x)
    expect = (x - bn.running_mean[None, :, None, None]) / np.sqrt(
        bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(out, expect)


def test_train_and_eval_switch_dropout_and_batchnorm():
    net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8)).astype(np.float64)
    x = rand(50, 8)
    np.random.seed(0)
    out = net(x)
    assert not np.allclose(out, net.eval()(x))
    assert not net[0].training and not net[1].training
    np.testing.assert_allclose(net.eval()(x), net.eval()(x))
    assert net.train()[0].training


def test_forward_checks_every_shape_before_any_computation(monkeypatch):
    net = tiny_net()
    calls = []
    monkeypatch.setattr(FastConv, "forward", staticmethod(lambda *a: calls.append(a)))
    with pytest.raises(ShapeError) as e:
        net(rand(2, 2, 1, 1))
    assert "pool" in str(e.value) and "(3, 1, 1)" in str(e.value) and not calls
    with pytest.raises(ShapeError, match=r"conv1 .*expects 2 input channels, got 1"):
        net(rand(2, 1, 4, 4))
    assert not calls


def test_forward_rejects_a_dtype_other_than_the_models():
    net = tiny_net(np.float32)
    with pytest.raises(TypeError, match="float64.*float32"):
        net(rand(2, 2, 4, 4))
    assert net(rand(2, 2, 4, 4, dtype=np.float32)).dtype == np.float32


def test_astype_converts_parameters_gradients_and_buffers():
    net = tiny_net(np.float32)
    net(rand(3, 2, 4, 4, dtype=np.float32))
    net.backward(rand(3, 4, dtype=np.float32))
    net.astype(np.float64)
    assert {a.dtype for _, a in net.named_parameters()} == {np.dtype(np.float64)}
    assert {a.dtype for _, a in net.named_buffers()} == {np.dtype(np.float64)}
    assert {g.dtype for g in net.grads.values()} == {np.dtype(np.float64)}
    with pytest.raises(TypeError):
        net.astype(np.int32)


# ---------------------------------------------------------------------------- state
def test_params_view_writes_through_and_checks_shapes():
    net = tiny_net()
    view = net.params
    assert set(view) == set(net.param_shapes()) and len(view) == 6
    view["fc.bias"] = np.arange(4.0)
    np.testing.assert_array_equal(net.fc.bias, np.arange(4.0))
    with pytest.raises(ValueError, match=r"fc.bias.*\(4,\).*\(5,\)"):
        view["fc.bias"] = np.zeros(5)
    with pytest.raises(KeyError, match="nope"):
        view["nope"] = np.zeros(1)
    with pytest.raises(TypeError):
        del view["fc.bias"]


def test_state_dict_round_trip_through_npz_keeps_parameters_and_running_statistics(tmp_path):
    net = tiny_net(seed=0)
    x = rand(4, 2, 4, 4)
    net(x)                      # train mode: running statistics move
    path = net.save(str(tmp_path / "tiny.npz"))
    other = tiny_net(seed=1).load(path)
    for (k, a), (k2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    assert "bn1.running_var" in other.state_dict()
    np.testing.assert_array_equal(net.eval()(x), other.eval()(x))


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("fc.bias"), ["'fc.bias'", "missing", "(4,)"]),
    (lambda s: s.update(extra=np.zeros(3)), ["'extra'", "unexpected", "(3,)"]),
    (lambda s: s.update({"conv1.weight": np.zeros((3, 2, 1, 1))}),
     ["'conv1.weight'", "(3, 2, 3, 3)", "(3, 2, 1, 1)"]),
    (lambda s: s.update({"bn1.running_mean": np.zeros(4)}), ["'bn1.running_mean'", "(3,)", "(4,)"]),
])
def test_loading_a_mismatched_state_names_the_entry_and_changes_nothing(tmp_path, change, words):
    source = tiny_net(seed=1)
    state = source.state_dict()
    state["fc.weight"] = state["fc.weight"] + 1   # a valid entry that must not be loaded
    change(state)
    net = tiny_net(seed=0)
    before = net.state_dict()
    with pytest.raises(StateDictError) as e:
        net.load_state_dict(state)
    for w in words:
        assert w in str(e.value)
    path = str(tmp_path / "bad.npz")
    np.savez(path, **state)
    with pytest.raises(StateDictError):
        net.load(path)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_loading_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(StateDictError, match="corrupt.npz"):
        tiny_net().load(str(path))


def test_pickled_modules_keep_parameters_but_not_forward_caches():
    net = tiny_net()
    net(rand(3, 2, 4, 4))
    copy = pickle.loads(pickle.dumps(net))
    assert copy.conv1._cache is None
    np.testing.assert_array_equal(copy.params["conv1.weight"], net.params["conv1.weight"])


# ---------------------------------------------------------------------------- gradients
LAYER_CASES = [
    ("conv grouped strided", nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (4, 7, 6)),
    ("conv dilated no bias", nn.Conv2d(2, 3, 3, padding=2, dilation=2, bias=False), (2, 6, 5)),
    ("depthwise", nn.Conv2d(3, 6, 3, padding=1, groups=3), (3, 5, 5)),
    ("linear", nn.Linear(6, 4), (6,)),
    ("batchnorm2d", nn.BatchNorm2d(3), (3, 3, 2)),
    ("batchnorm1d", nn.BatchNorm1d(5), (5,)),
    ("layernorm", nn.LayerNorm(5), (5,)),
    ("maxpool ceil", nn.MaxPool2d(3, 2, ceil_mode=True), (2, 6, 7)),
    ("maxpool pad", nn.MaxPool2d(3, 2, padding=1), (2, 5, 5)),
    ("avgpool", nn.AvgPool2d(3, 2, padding=1), (2, 5, 6)),
    ("global avgpool", nn.GlobalAvgPool(), (3, 4, 5)),
    ("adaptive avgpool", nn.AdaptiveAvgPool2d((3, 2)), (2, 7, 5)),
    ("relu6", nn.ReLU6(), (3, 4)),
    ("sigmoid", nn.Sigmoid(), (3, 4)),
    ("dropout", nn.Dropout(0.3), (3, 4)),
    ("flatten", nn.Flatten(), (2, 3, 2)),
    ("channel shuffle", nn.ChannelShuffle(3), (6, 2, 2)),
    ("channel slice", nn.ChannelSlice(1, 3), (4, 2, 2)),
    ("subsample + channel pad", nn.Sequential(nn.Subsample(2), nn.ChannelPad(1, 2)), (2, 5, 4)),
]


@pytest.mark.parametrize("name, module, shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_module_gradients_match_numeric(name, module, shape):
    module.astype(np.float64)
    x = rand(4, *shape, seed=2) * 3 if name == "relu6" else rand(4, *shape, seed=2)
    nn.check_gradients(module, x).assert_passed()


def test_batchnorm_gradients_in_eval_mode():
    bn = nn.BatchNorm2d(3).astype(np.float64)
    bn(rand(4, 3, 2, 2, seed=5))
    nn.check_gradients(bn.eval(), rand(2, 3, 2, 2)).assert_passed()


def container_cases():
    nn.manual_seed(0)
    residual = nn.Residual(
        OrderedDict(conv1=nn.Conv2d(3, 4, 3, stride=2, padding=1), relu1=nn.ReLU(),
                    conv2=nn.Conv2d(4, 4, 3, padding=1)),
        nn.Sequential(nn.Conv2d(3, 4, 1, stride=2)),
        pre=OrderedDict(bn=nn.BatchNorm2d(3)), post=OrderedDict(relu=nn.ReLU()))
    identity = nn.Residual(OrderedDict(conv=nn.Conv2d(3, 3, 3, padding=1)))
    concat = nn.Concat(nn.Conv2d(3, 3, 1), nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(),
                                                         nn.Conv2d(2, 3, 3, padding=1)),
                       nn.MaxPool2d(3, 1, padding=1), passthrough=True,
                       post=OrderedDict(shuffle=nn.ChannelShuffle(2)))
    se = nn.SE(4, reduction=2)
    nested = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.SE(4, 2),
                           nn.Residual(OrderedDict(c=nn.Conv2d(4, 4, 1))), nn.GlobalAvgPool(),
                           nn.Flatten(), nn.Linear(4, 2))
    return [("residual projection", residual, (3, 6, 6)),
            ("residual identity", identity, (3, 4, 4)), ("concat", concat, (3, 4, 4)),
            ("se", se, (4, 3, 3)), ("nested", nested, (3, 5, 5))]


@pytest.mark.parametrize("name, module, shape", container_cases(),
                         ids=[c[0] for c in container_cases()])
def test_container_gradients_match_numeric(name, module, shape):
    module.astype(np.float64)
    nn.check_gradients(module, rand(3, *shape, seed=4)).assert_passed()


def test_identity_shortcut_adds_the_upstream_gradient():
    block = nn.Residual(OrderedDict(scale=nn.Conv2d(2, 2, 1, bias=False))).astype(np.float64)
    block.params["scale.weight"] = np.zeros((2, 2, 1, 1))
    x, dout = rand(2, 2, 3, 3), rand(2, 2, 3, 3, seed=1)
    np.testing.assert_array_equal(block(x), x)
    np.testing.assert_array_equal(block.backward(dout), dout)


def test_containers_report_join_errors_with_the_shapes():
    bad_add = nn.Residual(OrderedDict(conv=nn.Conv2d(3, 4, 3, padding=1)))
    with pytest.raises(ShapeError, match=r"\(4, 5, 5\) and \(3, 5, 5\)"):
        bad_add.output_shape((3, 5, 5))
    bad_cat = nn.Concat(nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3))
    with pytest.raises(ShapeError, match="heights and widths"):
        bad_cat.output_shape((3, 5, 5))
    with pytest.raises(ValueError, match="two children named 'a'"):
        nn.Residual(OrderedDict(a=nn.ReLU()), pre=OrderedDict(a=nn.ReLU()))


# ---------------------------------------------------------------------------- optimizer, wrapper
def test_optimizer_applies_the_update_rule_to_every_parameter_with_its_own_state():
    net = tiny_net()
    start = {k: v.copy() for k, v in net.params.items()}
    x, dout = rand(3, 2, 4, 4), rand(3, 4, seed=1)
    opt = nn.Optimizer(net, "adam", {"learning_rate": 1e-2})
    expected_configs = {k: {"learning_rate": 1e-2} for k in start}
    for _ in range(2):
        opt.zero_grad()
        net(x)
        net.backward(dout)
        grads = {k: v.copy() for k, v in net.grads.items()}
        before = {k: v.copy() for k, v in net.params.items()}
        opt.step()
        for k in start:
            want, expected_configs[k] = optim.adam(before[k], grads[k], expected_configs[k])
            np.testing.assert_allclose(net.params[k], want)
    assert opt.configs["fc.weight"]["t"] == 2
    assert opt.configs["fc.weight"]["m"].shape == (4, 12)
    opt.scale_learning_rate(0.5)
    assert opt.configs["fc.bias"]["learning_rate"] == pytest.approx(5e-3)
    with pytest.raises(ValueError, match="update_rule"):
        nn.Optimizer(net, "adamw")


def test_classifier_model_gives_the_coursework_loss_interface():
    net = tiny_net()
    model = nn.ClassifierModel(net, reg=0.1)
    X, y = rand(5, 2, 4, 4), np.array([0, 1, 2, 3, 1])
    scores = model.loss(X)
    assert scores.shape == (5, 4) and not net.training
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params) and net.training
    # numeric check of the whole loss (data + reg * sum W^2 on conv/linear weights)
    for name in ("fc.weight", "conv1.bias", "bn1.weight"):
        w = model.params[name]
        idx = (1,) * w.ndim
        h = 1e-6
        old = w[idx]
        w[idx] = old + h
        lp, _ = model.loss(X, y)
        w[idx] = old - h
        lm, _ = model.loss(X, y)
        w[idx] = old
        assert (lp - lm) / (2 * h) == pytest.approx(grads[name][idx], rel=1e-5, abs=1e-9)
    assert sorted(model._reg_names) == ["conv1.weight", "fc.weight"]
    assert nn.Conv2d.regularized_params == nn.Linear.regularized_params == ("weight",)
    assert nn.BatchNorm2d.regularized_params == () and nn.Conv2d.kind == "conv"
    model.params["fc.bias"] = np.zeros(4)          # Solver's write-through assignment
    np.testing.assert_array_equal(net.fc.bias, np.zeros(4))
    with pytest.raises(ValueError, match="label"):
        model.loss(X, np.array([0, 1, 2, 3, 9]))


def test_l2_follows_regularized_params_not_the_summary_kind():
    class ScaledLinear(nn.Linear):
        kind = "other"                              # a different summary label ...
        regularized_params = ("weight", "bias")     # ... and L2 on the bias as well

    net = nn.Sequential({"fc": ScaledLinear(3, 2), "out": nn.Linear(2, 2)}).astype(np.float64)
    model = nn.ClassifierModel(net, reg=0.5)
    assert sorted(model._reg_names) == ["fc.bias", "fc.weight", "out.weight"]
    X, y = rand(4, 3), np.array([0, 1, 1, 0])
    loss, _ = model.loss(X, y)
    data_loss, _ = nn.ClassifierModel(net).loss(X, y)
    penalty = sum(np.sum(model.params[k] ** 2) for k in model._reg_names)
    assert loss == pytest.approx(data_loss + 0.5 * penalty)


def test_classifier_model_reshapes_flat_rows():
    model = nn.ClassifierModel(tiny_net(np.float32), input_shape=(2, 4, 4))
    scores = model.loss(np.zeros((3, 32)))
    assert scores.shape == (3, 4) and scores.dtype == np.float32
