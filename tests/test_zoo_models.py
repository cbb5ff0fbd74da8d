"""minidl.models.zoo: every builder, exact parameter counts, names, shapes by inference.

Expected counts are independent of the code under test: torchvision's documented
num_params for the models it ships, and, for the others, sums written out here from the
papers' layer specifications. Full-size models are never run: building them draws no
parameters, and shapes come from inference.
"""
import numpy as np
import pytest

from minidl import summary
from minidl.models import zoo
from minidl.nn import ShapeError

# torchvision's documentation (num_params of each model's weights entry)
TORCHVISION = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240, "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336, "densenet121": 7_978_856, "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x1_0": 2_278_604,
}
TORCHVISION_BN = {"vgg11": 132_868_840, "vgg13": 133_053_736, "vgg16": 138_365_992,
                  "vgg19": 143_678_248}


def conv(cin, cout, k, bias=True, groups=1):
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def bn(c):
    return 2 * c


def fc(cin, cout):
    return cin * cout + cout


def zfnet_params(c3=384, c4=384, c5=256):
    """Zeiler & Fergus Fig. 3 (convs and FCs with biases)."""
    return (conv(3, 96, 7) + conv(96, 256, 5) + conv(256, c3, 3) + conv(c3, c4, 3)
            + conv(c4, c5, 3) + fc(c5 * 6 * 6, 4096) + fc(4096, 4096) + fc(4096, 1000))


def alexnet_table_params():
    """The lecture's table with biases: conv1 ... fc8."""
    return (conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3)
            + conv(256, 256, 3) + fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000))


def mobilenet_v1_params():
    """Table 1: conv 3x3/2 32, 13 depthwise-separable blocks, fc; convs without bias + BN."""
    total = conv(3, 32, 3, bias=False) + bn(32)
    chans = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    for cin, cout in zip(chans[:-1], chans[1:]):
        total += conv(cin, cin, 3, bias=False, groups=cin) + bn(cin)
        total += conv(cin, cout, 1, bias=False) + bn(cout)
    return total + fc(1024, 1000)


def se_resnet50_params():
    """ResNet-50 plus, in each of its 16 bottlenecks, SE on C = 4 * planes channels:
    1x1 conv C -> C/16 and C/16 -> C, with biases."""
    extra = 0
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        c = 4 * planes
        extra += blocks * (conv(c, c // 16, 1) + conv(c // 16, c, 1))
    return TORCHVISION["resnet50"] + extra


def preact_resnet18_params():
    """He et al. 2016 (Identity Mappings), ImageNet ResNet-18 with full pre-activation."""
    total = conv(3, 64, 7, bias=False) + bn(64)
    total += conv(64, 64, 3, False) + bn(64) + conv(64, 64, 3, False)   # layer1.0: no preact
    total += 2 * bn(64) + 2 * conv(64, 64, 3, False)                           # layer1.1
    for cin, cout in ((64, 128), (128, 256), (256, 512)):
        total += bn(cin) + conv(cin, cout, 3, False) + bn(cout) + conv(cout, cout, 3, False)
        total += conv(cin, cout, 1, False)                                     # projection
        total += 2 * bn(cout) + 2 * conv(cout, cout, 3, False)
    return total + bn(512) + fc(512, 1000)


INCEPTIONS = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
              (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
              (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
              (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
              (832, 384, 192, 384, 48, 128, 128)]


def googlenet_paper_params(aux=False):
    """Szegedy et al. Table 1: convs with bias, 5x5 in the third branch, fc 1024 -> 1000;
    auxiliary heads: 1x1 conv 128, fc 2048 -> 1024, fc 1024 -> 1000."""
    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    for cin, a, b1, b, c1, c, p in INCEPTIONS:
        total += (conv(cin, a, 1) + conv(cin, b1, 1) + conv(b1, b, 3) + conv(cin, c1, 1)
                  + conv(c1, c, 5) + conv(cin, p, 1))
    total += fc(1024, 1000)
    if aux:
        total += sum(conv(cin, 128, 1) + fc(2048, 1024) + fc(1024, 1000) for cin in (512, 528))
    return total


def cifar_resnet_params(depth, classes=10):
    """He et al. Sec. 4.2: 3x3 conv 16, 3 stages of n basic blocks (16, 32, 64), option A."""
    n = (depth - 2) // 6
    total, cin = conv(3, 16, 3, False) + bn(16), 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(cin, width, 3, False) + conv(width, width, 3, False) + 2 * bn(width)
            cin = width
    return total + fc(64, classes)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_counts_equal_torchvision(name):
    assert zoo.get_model(name).num_params() == TORCHVISION[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_BN))
def test_vgg_with_batch_norm_counts_equal_torchvision(name):
    assert zoo.get_model(name, batch_norm=True).num_params() == TORCHVISION_BN[name]


@pytest.mark.parametrize("build, expected", [
    (lambda: zoo.alexnet_lecture(), alexnet_table_params()),
    (lambda: zoo.zfnet(), zfnet_params()),
    (lambda: zoo.zfnet(large=True), zfnet_params(512, 1024, 512)),
    (lambda: zoo.mobilenet_v1(), mobilenet_v1_params()),
    (lambda: zoo.se_resnet50(), se_resnet50_params()),
    (lambda: zoo.preact_resnet18(), preact_resnet18_params()),
    (lambda: zoo.googlenet(batch_norm=False), googlenet_paper_params()),
    (lambda: zoo.googlenet(batch_norm=False, aux_logits=True), googlenet_paper_params(True)),
    (lambda: zoo.resnet20(), cifar_resnet_params(20)),
    (lambda: zoo.resnet32(), cifar_resnet_params(32)),
    (lambda: zoo.resnet56(), cifar_resnet_params(56)),
    (lambda: zoo.resnet110(), cifar_resnet_params(110)),
], ids=["alexnet_lecture", "zfnet", "zfnet_large", "mobilenet_v1", "se_resnet50",
        "preact_resnet18", "googlenet_paper", "googlenet_paper_aux", "resnet20", "resnet32",
        "resnet56", "resnet110"])
def test_parameter_counts_equal_the_papers_layer_specifications(build, expected):
    assert build().num_params() == expected


def test_published_rounded_counts_of_papers():
    # the papers' own rounded totals, as a cross-check of the formulas above
    assert round(mobilenet_v1_params() / 1e6, 1) == 4.2            # MobileNet Table 1: 4.2M
    assert [round(cifar_resnet_params(d) / 1e6, 2) for d in (20, 32, 44, 56)] == \
        [0.27, 0.46, 0.66, 0.85]                                   # ResNet Table 6
    assert cifar_resnet_params(20) == 269_722


def test_googlenet_aux_heads_match_torchvision_with_aux_logits():
    # torchvision's GoogLeNet() keeps both heads: 13,004,888 parameters
    assert zoo.googlenet(aux_logits=True).num_params() == 13_004_888


def test_stride_in_1x1_moves_the_stride_but_keeps_the_count():
    v1, v15 = zoo.resnet50(stride_in_1x1=True), zoo.resnet50()
    assert v1.num_params() == v15.num_params()
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("name, keys", [
    ("resnet50", ["conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight",
                  "layer1.0.downsample.1.bias", "layer4.2.conv3.weight", "fc.bias"]),
    ("resnext50_32x4d", ["layer3.5.conv2.weight"]),
    ("alexnet", ["features.0.weight", "features.10.bias", "classifier.1.weight",
                 "classifier.6.bias"]),
    ("vgg16", ["features.28.weight", "classifier.0.weight", "classifier.6.weight"]),
    ("googlenet", ["conv1.conv.weight", "conv1.bn.running_mean", "inception3a.branch1.conv.weight",
                   "inception4e.branch4.1.bn.weight", "inception5b.branch3.1.conv.weight",
                   "fc.weight"]),
    ("densenet121", ["features.conv0.weight", "features.denseblock1.denselayer1.norm1.weight",
                     "features.denseblock4.denselayer16.conv2.weight",
                     "features.transition3.conv.weight", "features.norm5.bias",
                     "classifier.weight"]),
    ("mobilenet_v2", ["features.0.0.weight", "features.1.conv.0.0.weight",
                      "features.1.conv.1.weight", "features.2.conv.0.0.weight",
                      "features.18.1.running_mean", "classifier.1.weight"]),
    ("shufflenet_v2_x1_0", ["conv1.0.weight", "stage2.0.branch1.0.weight",
                            "stage2.1.branch2.6.running_var", "stage4.3.branch2.5.weight",
                            "conv5.1.weight", "fc.weight"]),
    ("se_resnet50", ["layer1.0.se.fc1.weight", "layer4.2.se.fc2.bias"]),
])
def test_state_dict_keys_follow_torchvision(name, keys):
    model = zoo.get_model(name)
    names = set(model.param_shapes()) | {n for n, _ in model.named_buffers()}
    for k in keys:
        assert k in names, k
    assert all(not m._params for m in model.modules())   # nothing was drawn


def test_googlenet_weight_shapes_follow_torchvision_deviations():
    shapes = zoo.googlenet().param_shapes()
    assert shapes["inception3a.branch3.1.conv.weight"] == (32, 16, 3, 3)   # "5x5" is 3x3
    assert "inception3a.branch1.conv.bias" not in shapes
    paper = zoo.googlenet(batch_norm=False).param_shapes()
    assert paper["inception3a.branch3.1.conv.weight"] == (32, 16, 5, 5)


FULL_SIZE = [n for n in zoo.list_models() if n not in (
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet_cifar",
    "vgg11_cifar", "vgg16_cifar", "mobilenet_v1_cifar", "mobilenet_v2_cifar")]


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_maps_its_natural_input_to_class_scores_by_inference(name):
    model = zoo.get_model(name, num_classes=7, in_channels=2)
    size = 227 if name == "alexnet_lecture" else 224 if name in FULL_SIZE else 32
    assert model.default_input == (2, size, size)
    assert model.output_shape((2, size, size)) == (7,)


def test_intermediate_shapes_of_full_size_models():
    r = zoo.resnet50()
    assert r.layer1.output_shape((64, 56, 56)) == (256, 56, 56)
    assert r.layer4.output_shape((1024, 14, 14)) == (2048, 7, 7)
    g = zoo.googlenet()
    s = summary(g)
    rows = {row.name: row for row in s.rows}
    assert rows["maxpool2"].out_shape == (192, 28, 28)
    assert rows["inception3a"].out_shape == (256, 28, 28)
    assert rows["inception4e"].out_shape == (832, 14, 14)
    assert rows["inception5b"].out_shape == (1024, 7, 7)
    z = summary(zoo.zfnet())                       # Zeiler & Fergus Fig. 3 sizes
    sizes = [row.out_shape for row in z.rows if row.kind in ("conv", "pool")]
    assert sizes == [(96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13),
                     (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]


def test_registry_lists_and_builds_by_name():
    names = zoo.list_models()
    for required in ("alexnet", "alexnet_lecture", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19",
                     "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                     "preact_resnet18", "wide_resnet50_2", "resnext50_32x4d",
                     "resnext101_32x8d", "se_resnet50", "densenet121", "mobilenet_v1",
                     "mobilenet_v2", "shufflenet_v2_x1_0", "resnet20", "resnet32", "resnet56",
                     "vgg11_cifar", "mobilenet_v1_cifar"):
        assert required in names
    model = zoo.get_model("resnet20", num_classes=5, dtype=np.float64)
    assert model.arch == "resnet20" and model.dtype == np.float64
    with pytest.raises(ValueError, match="resnet50"):
        zoo.get_model("resnet500")
    with pytest.raises(TypeError, match="resnet18"):
        zoo.get_model("resnet18", widht=3)


def test_an_input_the_model_cannot_take_names_the_first_failing_layer():
    alexnet = zoo.alexnet()
    with pytest.raises(ShapeError) as e:
        alexnet(np.zeros((1, 3, 32, 32), np.float32))
    assert "features.12" in str(e.value) and "(256, 1, 1)" in str(e.value)
    with pytest.raises(ShapeError, match="features.12"):
        summary(alexnet, (3, 32, 32))
    resnet = zoo.resnet18()
    with pytest.raises(ShapeError, match=r"conv1 .*expects 3 input channels, got 1"):
        resnet(np.zeros((2, 1, 224, 224), np.float32))
    assert all(not m._params for m in resnet.modules())   # failed before any computation
