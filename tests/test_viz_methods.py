"""minidl.viz on models: saliency is the numeric gradient of the class score, occlusion is low
exactly where the patch hides what a hand-built model reads, class visualisation raises the
target score, fooling images flip the prediction from close by, deconv is guided
backpropagation, activations are the layers' outputs; every function leaves the model's
modes and gradients as it found them, in float32 and float64, on modules, ClassifierModels
and coursework models alike."""
import numpy as np
import pytest

from minidl import nn, viz
from minidl.gradcheck import compute_numeric_gradient, rel_error
from minidl.layers import FastConv, ReLU
from minidl.models import DeepConvNet, ThreeLayerConvNet
from minidl.nn import ShapeError


def _small_cnn(dtype=np.float64, seed=0, classes=4):
    """conv-bn-relu-pool-linear with non-trivial running statistics, in eval mode."""
    nn.manual_seed(seed)
    model = nn.Sequential({
        "conv1": nn.Conv2d(2, 3, 3, padding=1), "bn1": nn.BatchNorm2d(3), "relu1": nn.ReLU(),
        "pool1": nn.MaxPool2d(2), "flatten": nn.Flatten(), "fc": nn.Linear(3 * 3 * 3, classes),
    }).astype(dtype)
    rng = np.random.default_rng(seed)
    model.bn1.running_mean[:] = rng.standard_normal(3) * 0.1
    model.bn1.running_var[:] = rng.uniform(0.5, 2.0, 3)
    model.params["bn1.weight"] = rng.uniform(0.5, 1.5, 3)
    return model


def _snapshot(model):
    return ([m.training for m in model.modules()],
            {k: np.array(v, copy=True) for k, v in model.grads.items()})


def _with_gradients(model, x):
    """Train mode, with gradients accumulated by one training backward pass."""
    model.train()
    out = model.forward(x)
    model.backward(np.ones_like(out))
    return _snapshot(model)


def _assert_untouched(model, snapshot):
    modes, grads = snapshot
    assert [m.training for m in model.modules()] == modes
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, grads[k], err_msg=k)


# --------------------------------------------------------------------------- saliency

def test_saliency_is_the_numeric_gradient_of_the_class_score():
    model = _small_cnn()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])
    before = _with_gradients(model, x)
    model.train()

    def class_scores(xx):
        model.eval()
        return model.forward(xx)[np.arange(3), y]

    dx = compute_numeric_gradient(class_scores, x.copy())
    model.train()
    sal = viz.saliency(model, x, y)
    assert sal.shape == (3, 6, 6) and sal.dtype == np.float64
    assert rel_error(sal, np.abs(dx).max(axis=1)) < 1e-7
    _assert_untouched(model, before)              # train mode and gradients as they were


def test_saliency_in_float32_matches_float64():
    m64 = _small_cnn(np.float64)
    m32 = _small_cnn(np.float64).astype(np.float32)
    x = np.random.default_rng(2).standard_normal((2, 2, 6, 6))
    s64, s32 = viz.saliency(m64, x, 1), viz.saliency(m32, x, 1)
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, s64, rtol=1e-4, atol=1e-5)


def test_saliency_of_a_flat_input_keeps_its_shape():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3)).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 5))
    w = model.params["0.weight"]
    np.testing.assert_allclose(viz.saliency(model, x, [2, 0]), np.abs(w[[2, 0]]))


def test_saliency_checks_labels_and_shapes_before_running():
    model = _small_cnn()
    x = np.zeros((2, 2, 6, 6))
    with pytest.raises(ValueError, match=r"saliency: y = 4 \(image 1\) is not a class of the "
                                         r"model's 4 scores"):
        viz.saliency(model, x, [0, 4])
    with pytest.raises(ValueError, match="saliency: y must be a class index or 2 of them"):
        viz.saliency(model, x, [0, 1, 2])
    with pytest.raises(ShapeError, match="conv1"):
        viz.saliency(model, np.zeros((1, 3, 6, 6)), 0)
    with pytest.raises(ValueError, match=r"saliency: x must be a batch \(N, C, H, W\)"):
        viz.saliency(model, np.zeros(6), 0)


# --------------------------------------------------------------------------- occlusion

def _region_reader(region, weight=3.0, other_score=1.0):
    """Scores (N, 2): class 0 = weight * sum of the pixels in region, class 1 = other_score."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2)).astype(np.float64)
    w = np.zeros((2, 1, 8, 8))
    w[(0, 0) + region] = weight
    model.params["1.weight"] = w.reshape(2, 64)
    model.params["1.bias"] = np.array([0.0, other_score])
    return model


def test_occlusion_is_low_exactly_where_the_patch_covers_the_region_read():
    rows, cols = slice(2, 4), slice(5, 7)         # the model reads a 2x2 region
    model = _region_reader((rows, cols))
    x = np.ones((1, 1, 8, 8))
    clean = 1 / (1 + np.exp(-(3.0 * 4 - 1.0)))     # p(class 0) with nothing hidden
    occ = viz.occlusion(model, x, 0, patch=2, stride=1)
    assert occ.shape == (1, 7, 7)
    for i in range(7):
        for j in range(7):
            covered = len(set(range(i, i + 2)) & {2, 3}) * len(set(range(j, j + 2)) & {5, 6})
            expected = 1 / (1 + np.exp(-(3.0 * (4 - covered) - 1.0)))
            assert occ[0, i, j] == pytest.approx(expected, rel=1e-12), (i, j)
            assert (occ[0, i, j] < clean - 1e-9) == (covered > 0)
    assert np.unravel_index(occ[0].argmin(), (7, 7)) == (2, 5)  # the patch on the region


def test_occlusion_strides_fill_and_batches_agree_with_one_at_a_time():
    model = _small_cnn()
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 6))
    fill = np.array([0.5, -1.0])
    occ = viz.occlusion(model, x, [1, 2], patch=(2, 3), stride=(2, 1), fill=fill, batch_size=3)
    assert occ.shape == (2, 3, 4)
    i, j = 1, 2
    hidden = x[1:2].copy()
    hidden[:, :, 2:4, 2:5] = fill.reshape(2, 1, 1)
    scores = model.eval().forward(hidden)
    p = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    assert occ[1, i, j] == pytest.approx(p[0, 2], rel=1e-10)
    with pytest.raises(ValueError, match=r"occlusion: patch \(7, 7\) is larger than the images"):
        viz.occlusion(model, x, 0, patch=7)
    with pytest.raises(ValueError, match="occlusion: fill must be a number or one per channel"):
        viz.occlusion(model, x, 0, fill=[1, 2, 3])


# --------------------------------------------------------------------------- class images

def test_class_visualization_raises_the_target_score_on_average():
    model = _small_cnn(np.float32, seed=4)
    before = _with_gradients(model, np.ones((2, 2, 6, 6), np.float32))
    model.train()
    image, scores = viz.class_visualization(model, 2, steps=80, input_shape=(2, 6, 6),
                                            clip=(-2.0, 2.0), seed=0, return_scores=True)
    assert image.shape == (2, 6, 6) and image.dtype == np.float32 and scores.shape == (80,)
    assert image.min() >= -2.0 and image.max() <= 2.0
    quarters = scores.reshape(4, 20).mean(axis=1)
    assert np.all(np.diff(quarters) > 0), quarters              # rising, on average
    _assert_untouched(model, before)
    final = model.eval().forward(image[None])[0]
    assert final[2] > scores[0] and final.argmax() == 2


def test_class_visualization_defaults_follow_cs231n_at_224_and_scale_down():
    model = _small_cnn()
    model.default_input = (2, 6, 6)
    a = viz.class_visualization(model, 0, steps=3, seed=5)
    b = viz.class_visualization(model, 0, steps=3, seed=5, input_shape=(2, 6, 6),
                                lr=25.0 * np.sqrt(72 / (3 * 224 * 224)), jitter=1)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"class_visualization: input_shape must be \(C, H, W\)"):
        viz.class_visualization(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), 0)
    with pytest.raises(ValueError, match="class_visualization: target = 9"):
        viz.class_visualization(model, 9)


def test_gaussian_blur_matches_scipy():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    img = np.random.default_rng(0).standard_normal((1, 2, 7, 9))
    expected = scipy_ndimage.gaussian_filter1d(
        scipy_ndimage.gaussian_filter1d(img, 0.5, axis=2), 0.5, axis=3)
    np.testing.assert_allclose(viz._gaussian_blur(img, 0.5), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- fooling images

@pytest.fixture(scope="module")
def digits_net():
    """A DeepConvNet trained for two epochs on the digits (about a second), and the first
    six test images it classifies correctly."""
    from minidl.training import TrainingRun

    run = TrainingRun({"model": "deepconvnet", "data": "digits", "lr": 5e-3}, epochs=2)
    run.train()
    X, y = run.data["X_test"], run.data["y_test"]
    right = np.flatnonzero(run.model.loss(X).argmax(axis=1) == y)[:6]
    assert len(right) == 6
    return run.model, run.data, X[right], y[right]


def test_a_fooling_image_flips_the_prediction_from_close_by(digits_net):
    model, data, x, y = digits_net
    target = (y + 3) % 10
    fooled = viz.fooling_image(model, x, target)
    assert fooled.shape == x.shape and fooled.dtype == np.float32
    assert np.array_equal(model.loss(fooled).argmax(axis=1), target)
    moved = np.linalg.norm((fooled - x).reshape(6, -1), axis=1)
    # Closer to the original than the original is to any training image of the target
    # class: the model changed its mind, the digit did not turn into another one.
    train = data["X_train"].reshape(len(data["X_train"]), -1)
    for i in range(6):
        others = train[data["y_train"] == target[i]]
        nearest = np.linalg.norm(others - x[i].reshape(1, -1), axis=1).min()
        assert 0 < moved[i] < 0.75 * nearest, (i, moved[i], nearest)


def test_fooling_stops_at_once_for_an_image_already_of_the_target_and_reports_failure(
        digits_net):
    model, _, x, y = digits_net
    x, y = x[:2], y[:2]
    np.testing.assert_array_equal(viz.fooling_image(model, x, y), x)
    with pytest.raises(viz.NotFooledError, match=r"fooling_image: image 0 is still classified "
                                                 r"as \d, not \d, after 3 steps"):
        viz.fooling_image(model, x, (y + 1) % 10, max_steps=3)


# --------------------------------------------------------------------------- activations

def test_activations_are_the_named_layers_outputs_inside_containers():
    nn.manual_seed(0)
    block = nn.Residual({"conv1": nn.Conv2d(2, 2, 3, padding=1), "relu1": nn.ReLU(),
                         "conv2": nn.Conv2d(2, 2, 3, padding=1)}, post={"relu": nn.ReLU()})
    model = nn.Sequential({"stem": nn.Conv2d(1, 2, 3, padding=1), "block": block,
                           "flatten": nn.Flatten(), "fc": nn.Linear(2 * 5 * 5, 3)})
    model.astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5))
    scores = model.eval().forward(x)
    acts = viz.activations(model, x, ["block.conv1", "stem", "block"])
    assert list(acts) == ["block.conv1", "stem", "block"]
    stem = model.stem.forward(x)
    np.testing.assert_allclose(acts["stem"], stem)
    np.testing.assert_allclose(acts["block.conv1"], block.conv1.forward(stem))
    np.testing.assert_allclose(acts["block"], block.forward(stem))
    np.testing.assert_allclose(model.forward(x), scores)       # no hook left behind
    assert "_forward" not in model.stem.__dict__


def test_an_unknown_layer_lists_the_valid_ones():
    model = _small_cnn()
    with pytest.raises(viz.UnknownLayerError) as info:
        viz.activations(model, np.zeros((1, 2, 6, 6)), ["conv2"])
    message = str(info.value)
    assert message.startswith("activations: the model has no layer 'conv2' (did you mean "
                              "'conv1'?)")
    assert message.endswith("its layers are: conv1, bn1, relu1, pool1, flatten, fc")
    assert info.value.valid == viz.layer_names(model) and isinstance(info.value, ValueError)
    with pytest.raises(viz.UnknownLayerError, match="deconv: the model has no layer ''"):
        viz.deconv(model, np.zeros((1, 2, 6, 6)), "")


# --------------------------------------------------------------------------- deconv

def test_deconv_is_guided_backpropagation_through_the_layers():
    rng = np.random.default_rng(7)
    nn.manual_seed(7)
    model = nn.Sequential({"conv1": nn.Conv2d(1, 3, 3, padding=1), "relu1": nn.ReLU(),
                           "conv2": nn.Conv2d(3, 4, 3, padding=1), "relu2": nn.ReLU(),
                           "pool": nn.MaxPool2d(2), "flatten": nn.Flatten(),
                           "fc": nn.Linear(4 * 3 * 3, 2)}).astype(np.float64)
    x = rng.standard_normal((2, 1, 6, 6))
    before = _with_gradients(model, x)
    got = viz.deconv(model, x, "conv2", channel=1)

    # By hand with the layer API: forward to conv2, keep each image's top value of
    # channel 1, then back with the guided ReLU rule (positive signal AND positive input).
    w1, b1 = model.params["conv1.weight"], model.params["conv1.bias"]
    w2, b2 = model.params["conv2.weight"], model.params["conv2.bias"]
    param = {"stride": 1, "pad": 1}
    a1, c1 = FastConv.forward(x, w1, b1, param)
    h1, _ = ReLU.forward(a1)
    a2, c2 = FastConv.forward(h1, w2, b2, param)
    g = np.zeros_like(a2)
    for n in range(2):
        i, j = np.unravel_index(a2[n, 1].argmax(), (6, 6))
        g[n, 1, i, j] = a2[n, 1, i, j]
    dh1, _, _ = FastConv.backward(g, c2)
    guided = dh1 * (dh1 > 0) * (a1 > 0)
    expected, _, _ = FastConv.backward(guided, c1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    plain, _, _ = FastConv.backward(dh1 * (a1 > 0), c1)        # saliency's rule differs
    assert np.abs(plain - expected).max() > 1e-3
    _assert_untouched(model, before)

    # channel None: each image's most active channel
    top = a2.reshape(2, 4, -1).max(axis=2).argmax(axis=1)
    auto = viz.deconv(model, x, "conv2")
    for n in range(2):
        np.testing.assert_allclose(auto[n:n + 1], viz.deconv(model, x[n:n + 1], "conv2",
                                                             int(top[n])))
    with pytest.raises(ValueError, match=r"deconv: channel must be an int in \[0, 4\) for "
                                         r"layer 'conv2'"):
        viz.deconv(model, x, "conv2", channel=4)


# --------------------------------------------------------------------------- filters

def test_filters_of_conv_and_of_an_image_reading_linear_layer():
    model = _small_cnn()
    np.testing.assert_array_equal(viz.filters(model), model.params["conv1.weight"])
    fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 5)).astype(np.float64)
    rows = viz.filters(fc, input_shape=(2, 3, 4))
    assert rows.shape == (5, 2, 3, 4)
    np.testing.assert_array_equal(rows[3], fc.params["1.weight"][3].reshape(2, 3, 4))
    with pytest.raises(ValueError, match=r"filters: layer '1' is a Linear layer with 24 inputs"):
        viz.filters(fc, input_shape=(1, 5, 5))
    with pytest.raises(ValueError, match="filters: layer 'relu1' is a ReLU, which has no filters"):
        viz.filters(model, "relu1")


# --------------------------------------------------------------------------- model kinds

def test_coursework_and_classifier_models_work_through_their_modules():
    cw = ThreeLayerConvNet(input_dims=(1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10,
                           weight_scale=0.1, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))

    def class_scores(xx):
        return cw.loss(xx)[np.arange(2), [3, 5]]

    dx = compute_numeric_gradient(class_scores, x.copy())
    assert rel_error(viz.saliency(cw, x, [3, 5]), np.abs(dx).max(axis=1)) < 1e-7
    assert viz.layer_names(cw) == ["conv1", "relu1", "pool1", "flatten", "fc2", "relu2", "fc3"]
    np.testing.assert_array_equal(viz.filters(cw), cw.params["W1"])

    dcn = DeepConvNet(input_dims=(1, 8, 8), num_filters=[4], max_pools=[0], batchnorm=True,
                      dtype=np.float32, seed=0)
    dcn.loss(x.astype(np.float32), np.array([1, 2]))           # running statistics
    acts = viz.activations(dcn, x, "bn1")["bn1"]
    assert acts.shape == (2, 4, 8, 8) and acts.dtype == np.float32

    from minidl.nn import ClassifierModel

    wrapped = ClassifierModel(_small_cnn())
    np.testing.assert_array_equal(viz.saliency(wrapped, np.ones((1, 2, 6, 6)), 0),
                                  viz.saliency(wrapped.module, np.ones((1, 2, 6, 6)), 0))
    with pytest.raises(TypeError, match="saliency: model must be a minidl.nn Module"):
        viz.saliency(object(), x, 0)
