"""minidl.summary: the lecture's tables, computed from first principles by shape inference.

Where the lecture's printed number differs from the count, the test asserts the count and,
separately, what the printed number actually measures (see docs/architectures.md, Errata).
"""
import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.models import zoo
from minidl.models.zoo.resnet import BasicBlock, ResNet
from minidl import cli
from minidl.summary import KINDS, Summary, summary


def rows_by_name(s):
    return {r.name: r for r in s.rows}


# ---------------------------------------------------------------------------- AlexNet table
# The lecture's AlexNet table (227x227 input): name, out C, out H/W, memory (KB),
# params (k), flop (M), as printed.
LECTURE_ALEXNET = [
    ("conv1", 64, 56, 784, 23, 73), ("pool1", 64, 27, 182, 0, 0),
    ("conv2", 192, 27, 547, 307, 224), ("pool2", 192, 13, 127, 0, 0),
    ("conv3", 384, 13, 254, 664, 112), ("conv4", 256, 13, 169, 885, 145),
    ("conv5", 256, 13, 169, 590, 100), ("pool5", 256, 6, 36, 0, 0),
    ("flatten", 9216, None, 36, 0, 0), ("fc6", 4096, None, 16, 37_749, 38),
    ("fc7", 4096, None, 16, 16_777, 17), ("fc8", 1000, None, 4, 4_096, 4),
]


def first_principles_alexnet():
    """Each row from the lecture's formulas: memory = C*H'*W'*4/1024, conv params
    = Cout*Cin*K*K + Cout, conv flops = Cout*H'*W'*Cin*K*K, pool flops = C*H'*W'*K*K,
    FC params = Cin*Cout + Cout, FC flops = Cin*Cout."""
    def conv(cin, cout, k, h):
        return cout * h * h * 4 / 1024, cout * cin * k * k + cout, cout * h * h * cin * k * k

    def pool(c, h):
        return c * h * h * 4 / 1024, 0, c * h * h * 9

    def fc(cin, cout):
        return cout * 4 / 1024, cin * cout + cout, cin * cout

    return {"conv1": conv(3, 64, 11, 56), "pool1": pool(64, 27), "conv2": conv(64, 192, 5, 27),
            "pool2": pool(192, 13), "conv3": conv(192, 384, 3, 13), "conv4": conv(384, 256, 3, 13),
            "conv5": conv(256, 256, 3, 13), "pool5": pool(256, 6),
            "flatten": (9216 * 4 / 1024, 0, 0), "fc6": fc(9216, 4096), "fc7": fc(4096, 4096),
            "fc8": fc(4096, 1000)}


def test_alexnet_table_row_by_row():
    s = summary(zoo.alexnet_lecture(), (3, 227, 227))
    shown = [r for r in s.rows if not r.hidden_by_default]
    assert [r.name for r in shown] == [row[0] for row in LECTURE_ALEXNET]
    expected = first_principles_alexnet()
    for r, (name, c, hw, mem, params_k, flop_m) in zip(shown, LECTURE_ALEXNET):
        assert r.out_shape[0] == c and (hw is None or r.out_shape[1:] == (hw, hw))
        assert (r.memory_kb, r.params, r.flops) == expected[name]
        assert round(r.memory_kb) == mem
        if name.startswith("fc"):
            # erratum: the lecture's FC params leave out the biases (weights only)
            assert round((r.params - r.out_shape[0]) / 1e3) == params_k
            assert round(r.params / 1e3) != params_k
        else:
            assert round(r.params / 1e3) == params_k
        if name == "conv4":
            # erratum: 256 * 13 * 13 * 384 * 9 = 149,520,384 multiply-adds, printed as 145
            assert r.flops == 149_520_384 and flop_m == 145
        else:
            assert round(r.flops / 1e6) == flop_m
    assert [r.filters for r in shown[:3]] == [64, None, 192]
    assert (shown[0].kernel, shown[0].stride, shown[0].pad) == ("11", "4", "2")


def test_alexnet_headline_totals():
    s = summary(zoo.alexnet_lecture(), (3, 227, 227))
    assert s.total_params == 61_100_840                       # "AlexNet total: 61M"
    assert s.total_flops == 717_562_112                       # "0.7 GFLOP"
    # "1.9 MB" counts the conv outputs only; the table's rows add up to 2.3 MB
    assert s.total("memory_kb", kinds=("conv",)) == 1922.25
    shown = sum(r.memory_kb for r in s.rows if not r.hidden_by_default)
    assert round(shown / 1024, 1) == 2.3


def test_the_lectures_fc6_arithmetic():
    # the slide: "9216 * 4096 + 4096 = 37,725,832"; the sum is 37,752,832
    fc6 = rows_by_name(summary(zoo.alexnet_lecture(), (3, 227, 227)))["fc6"]
    assert fc6.params == 9216 * 4096 + 4096 == 37_752_832


def test_alexnet_papers_first_layer_neuron_count():
    # the AlexNet paper's caption (quoted in the lecture) gives 253,440 neurons after conv1;
    # its 96 11x11/4 filters on 227x227 give 96 * 55 * 55
    conv1 = nn.Conv2d(3, 96, 11, stride=4)
    assert int(np.prod(conv1.output_shape((3, 227, 227)))) == 290_400


# ---------------------------------------------------------------------------- VGG-16
def test_vgg16_totals():
    s = summary(zoo.vgg16())
    rows = rows_by_name(s)
    assert s.total_params == 138_357_544                      # "138M"
    assert s.total_flops == 15_476_410_880                    # 15.5 GFLOP, printed 13.6
    conv3_3 = rows["features.14"]
    assert conv3_3.flops == 1_849_688_064
    # the lecture's 13.6 GFLOP and 48.6 MB are reproduced exactly by leaving out conv3_3
    assert round((s.total_flops - conv3_3.flops) / 1e9, 1) == 13.6
    conv_memory = s.total("memory_kb", kinds=("conv",))
    assert conv_memory == 52_920                              # 51.7 MB of conv outputs
    assert round((conv_memory - conv3_3.memory_kb) / 1024, 1) == 48.6
    # the FC rows of the lecture's VGG-16 table (memory and flops agree; params drop bias)
    assert (rows["flatten"].out_shape, rows["flatten"].memory_kb) == ((25088,), 98)
    assert [(rows[k].params, round(rows[k].flops / 1e6)) for k in
            ("classifier.0", "classifier.3", "classifier.6")] == [
        (102_764_544, 103), (16_781_312, 17), (4_097_000, 4)]


def test_vgg16_up_to_28x28_versus_the_googlenet_comparison():
    s = summary(zoo.vgg16())
    # counted properly: every conv and pool from 224 to 28 (features.0 ... features.16)
    assert s.total("memory_kb", kinds=("conv", "pool"), upto="features.16") == 52_528
    assert s.total("params", upto="features.16") == 1_735_488
    assert s.total("flops", upto="features.16") == 9_340_764_160
    # the lecture's 42.9 MB / 1.1M / 7485 MFLOP: convs conv1_1 ... conv3_2 only
    assert round(s.total("memory_kb", kinds=("conv",), upto="features.12") / 1024, 1) == 42.9
    assert round(s.total("params", upto="features.12") / 1e6, 1) == 1.1
    assert round(s.total("flops", kinds=("conv",), upto="features.12") / 1e6) == 7485


def test_vgg_design_rules_hold_numerically():
    c, h = 32, 8
    half = summary(nn.Conv2d(c, c, 3, padding=1, bias=False), (c, 2 * h, 2 * h)).rows[0]
    double = summary(nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False), (2 * c, h, h)).rows[0]
    assert half.memory_kb * 1024 / 4 == 4 * h * h * c          # memory 4HWC
    assert double.memory_kb * 1024 / 4 == 2 * h * h * c        # memory 2HWC
    assert (half.params, double.params) == (9 * c * c, 36 * c * c)
    assert half.flops == double.flops == 36 * h * h * c * c
    two_3x3 = summary(nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                    nn.Conv2d(c, c, 3, padding=1, bias=False)), (c, h, h))
    one_5x5 = summary(nn.Conv2d(c, c, 5, padding=2, bias=False), (c, h, h))
    assert (two_3x3.total_params, one_5x5.total_params) == (18 * c * c, 25 * c * c)
    assert (two_3x3.total_flops, one_5x5.total_flops) == (18 * c * c * h * h, 25 * c * c * h * h)


# ---------------------------------------------------------------------------- GoogLeNet
def test_googlenet_stem_224_to_28():
    s = summary(zoo.googlenet(batch_norm=False))               # the paper's layout
    stem = ["conv1.conv", "maxpool1", "conv2.conv", "conv3.conv", "maxpool2"]
    rows = rows_by_name(s)
    got = [(rows[n].out_shape, rows[n].memory_kb, rows[n].params, rows[n].flops) for n in stem]
    assert got == [((64, 112, 112), 3136, 9_472, 118_013_952),
                   ((64, 56, 56), 784, 0, 1_806_336),
                   ((64, 56, 56), 784, 4_160, 12_845_056),
                   ((192, 56, 56), 2352, 110_784, 346_816_512),
                   ((192, 28, 28), 588, 0, 1_354_752)]
    # as printed: 9, 0, 4, 111, 0 k params; 118, 2, 13, 347, 1 MFLOP
    assert [round(g[2] / 1e3) for g in got] == [9, 0, 4, 111, 0]
    assert [round(g[3] / 1e6) for g in got] == [118, 2, 13, 347, 1]
    memory = sum(g[1] for g in got)
    params = sum(g[2] for g in got)
    flops = sum(g[3] for g in got)
    assert round(memory / 1024, 1) == 7.5 and round(params / 1e3) == 124
    # erratum: the stem's total is 481 MFLOP (the slide prints 418)
    assert flops == 480_836_608


def test_googlenet_head_rows():
    rows = rows_by_name(summary(zoo.googlenet(batch_norm=False)))
    pool, fc = rows["avgpool"], rows["fc"]
    assert (pool.in_shape, pool.out_shape, pool.kernel, pool.memory_kb) == (
        (1024, 7, 7), (1024, 1, 1), "7", 4)
    assert round(pool.flops / 1e6) == 0
    assert (fc.params, fc.flops) == (1_025_000, 1_024_000)     # 1025 k, 1 M as printed
    assert round(fc.memory_kb) == 4                            # printed as 0 (erratum)
    torchvision_layout = rows_by_name(summary(zoo.googlenet()))
    assert torchvision_layout["maxpool2"].out_shape == (192, 28, 28)


# ---------------------------------------------------------------------------- ResNet
def test_resnet_stem_matches_the_lecture():
    rows = rows_by_name(summary(zoo.resnet18()))
    conv, pool = rows["conv1"], rows["maxpool"]
    assert (conv.out_shape, conv.memory_kb, round(conv.params / 1e3), round(conv.flops / 1e6)) \
        == ((64, 112, 112), 3136, 9, 118)
    assert (pool.out_shape, pool.memory_kb, pool.params, round(pool.flops / 1e6)) == (
        (64, 56, 56), 784, 0, 2)


def resnet_macs(bottleneck, layers, stride_in_1x1=True, classes=1000):
    """Multiply-adds of a 224x224 ResNet written out stage by stage (the paper's Table 1)."""
    total = 64 * 112 * 112 * 3 * 49 + 64 * 56 * 56 * 9          # conv1, 3x3/2 max pool
    cin, r_in = 64, 56
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for b in range(n):
            stride = 2 if i > 0 and b == 0 else 1
            r = r_in // stride
            if bottleneck:
                out = 4 * planes
                r1 = r if stride_in_1x1 else r_in               # where the first 1x1 runs
                total += planes * r1 * r1 * cin + planes * r * r * planes * 9 + out * r * r * planes
            else:
                out = planes
                total += planes * r * r * cin * 9 + planes * r * r * planes * 9
            if b == 0 and (stride != 1 or cin != out):
                total += out * r * r * cin                      # projection shortcut
            cin, r_in = out, r
    return total + cin * 7 * 7 + cin * classes                  # average pool, fc


def test_resnet_gflops_in_the_original_layout():
    lecture = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6,
               "resnet152": 11.3}
    computed = {name: summary(zoo.get_model(name, stride_in_1x1=True)).total_flops
                for name in lecture}
    assert computed == {"resnet18": resnet_macs(False, [2, 2, 2, 2]),
                        "resnet34": resnet_macs(False, [3, 4, 6, 3]),
                        "resnet50": resnet_macs(True, [3, 4, 6, 3]),
                        "resnet101": resnet_macs(True, [3, 4, 23, 3]),
                        "resnet152": resnet_macs(True, [3, 8, 36, 3])}
    assert summary(zoo.resnet50()).total_flops == resnet_macs(True, [3, 4, 6, 3], False)
    for name, printed in lecture.items():
        g = computed[name] / 1e9
        if name in ("resnet34", "resnet50"):
            # errata: 3.67 and 3.86 round to 3.7 and 3.9; the printed values are truncated
            assert round(g, 1) == printed + 0.1 and int(g * 10) / 10 == printed
        else:
            assert round(g, 1) == printed
    # with the paper's parameter-free (option A) shortcuts ResNet-34 does round to 3.6
    option_a = summary(ResNet(BasicBlock, [3, 4, 6, 3], shortcut="A")).total_flops
    assert round(option_a / 1e9, 1) == 3.6


def test_torchvision_layout_flops_match_torchvision_documented_gflops():
    # torchvision documents GFLOPS (conv and linear multiply-adds) for each weight entry
    documented = {"alexnet": 0.71, "vgg16": 15.47, "googlenet": 1.50, "resnet18": 1.81,
                  "resnet50": 4.09, "resnet152": 11.51, "resnext101_32x8d": 16.41,
                  "mobilenet_v2": 0.30}
    for name, gflops in documented.items():
        s = summary(zoo.get_model(name))
        assert round(s.total("flops", kinds=("conv", "linear")) / 1e9, 2) == gflops, name
    # MobileNet v1: the paper's Table 1 counts 569 million multiply-adds
    assert round(summary(zoo.mobilenet_v1()).total_flops / 1e6) == 569


# ---------------------------------------------------------------------------- the object
def test_summary_rows_and_totals_are_consistent():
    model = zoo.resnet152()
    s = summary(model)
    assert isinstance(s, Summary) and s.output_shape == (1000,)
    assert s.total_params == model.num_params() == sum(r.params for r in s.rows)
    assert s.total_flops == sum(r.flops for r in s.rows)
    assert s.total_memory_kb == pytest.approx(sum(r.memory_kb for r in s.rows))
    assert {r.kind for r in s.rows} == set(KINDS)
    assert all(not m._params for m in model.modules())     # shape inference only
    relu = next(r for r in s.rows if r.kind == "act")
    assert relu.params == 0 and relu.flops == 0 and relu.hidden_by_default
    half = summary(model, dtype_bytes=2)
    assert half.total_memory_kb == pytest.approx(s.total_memory_kb / 2)


def test_concat_joins_are_rows_and_residual_additions_are_not():
    rows = rows_by_name(summary(zoo.densenet121()))
    layer = rows["features.denseblock1.denselayer1"]
    assert (layer.in_shape, layer.out_shape, layer.kind) == ((64, 56, 56), (96, 56, 56), "other")
    assert "layer1.0" not in rows_by_name(summary(zoo.resnet18()))


def test_printed_table_has_the_lectures_columns():
    text = str(summary(zoo.alexnet_lecture(), (3, 227, 227)))
    header = text.splitlines()[2].split()
    assert header[:9] == ["Layer", "C", "H/W", "filters", "kernel", "stride", "pad", "C", "H/W"]
    assert "memory (KB)" in text and "params (k)" in text and "flop (M)" in text
    line = next(l for l in text.splitlines() if l.startswith("conv1"))
    assert line.split() == ["conv1", "3", "227", "64", "11", "4", "2", "64", "56", "784", "23",
                            "73"]
    assert "relu1" not in text and "Total params: 61,100,840" in text
    assert "relu1" in summary(zoo.alexnet_lecture(), (3, 227, 227)).table(show_all=True)


def test_summary_rejects_what_it_cannot_count():
    with pytest.raises(nn.ShapeError, match="conv1"):
        summary(zoo.resnet18(), (1, 224, 224))
    with pytest.raises(TypeError, match="Module"):
        summary(object())
    with pytest.raises(ValueError, match="dtype_bytes"):
        summary(zoo.resnet18(), dtype_bytes=0)
    assert minidl.summary(zoo.resnet18()).total_params == 11_689_512


# ---------------------------------------------------------------------------- command line
def main(argv):
    """``minidl summary ARGV`` in-process; returns the exit status."""
    return cli.main(["summary", *argv])


def test_cli_prints_the_table(capsys):
    assert main(["alexnet_lecture", "--input", "3,227,227"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "37,753" in out and "61,100,840" in out
    assert main(["resnet50", "--option", "stride_in_1x1=True"]) == 0
    assert f"{resnet_macs(True, [3, 4, 6, 3]):,}" in capsys.readouterr().out
    assert main(["resnet20"]) == 0                              # CIFAR size by default
    assert "input 3x32x32" in capsys.readouterr().out
    assert main(["--list"]) == 0
    assert "shufflenet_v2_x1_0" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_a_nonzero_status(capsys):
    assert main(["resnet500"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model" in err
    assert main(["alexnet", "--input", "3,32,32"]) == 1
    assert "features.12" in capsys.readouterr().err
    assert main(["resnet18", "-o", "widht=3"]) == 1
    capsys.readouterr()
    assert main(["resnet18", "--input", "3,x,y"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main([]) == 2                                        # no NAME: a usage error
    assert "give a model NAME" in capsys.readouterr().err


@pytest.mark.parametrize("text, flops", [
    ("true", resnet_macs(True, [3, 4, 6, 3])), ("YES", resnet_macs(True, [3, 4, 6, 3])),
    ("1", resnet_macs(True, [3, 4, 6, 3])), ("False", resnet_macs(True, [3, 4, 6, 3], False)),
    ("no", resnet_macs(True, [3, 4, 6, 3], False)), ("0", resnet_macs(True, [3, 4, 6, 3], False)),
])
def test_cli_yes_no_options_take_true_false_1_0_yes_no(capsys, text, flops):
    assert main(["resnet50", "-o", f"stride_in_1x1={text}"]) == 0
    assert f"Total FLOPs:  {flops:,} multiply-adds" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["maybe", "", "2", "Truee", "None"])
def test_cli_rejects_a_yes_no_option_that_is_neither(capsys, text):
    assert main(["resnet50", "-o", f"stride_in_1x1={text}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"minidl summary: error: -o stride_in_1x1={text}: expected a "
                             "boolean (true/false, 1/0, yes/no)"), err


@pytest.mark.parametrize("argv", [["--input", "-3,32,32"], ["--input=-3,32,32"],
                                  ["--input", "3,0,32"]])
def test_cli_input_sizes_must_be_positive_and_say_so(capsys, argv):
    assert main(["resnet18", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "argument --input: expected positive sizes C,H,W such as 3,224,224" in err[0], err
    assert "expected one argument" not in err[0]


def test_cli_points_at_in_channels_when_the_input_has_other_channels(capsys):
    assert main(["mobilenet_v2_cifar", "--input", "1,8,8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expects 3 input channels, got 1" in err[0]
    assert err[0].endswith("(the model is built for 3 input channels; for 1, add "
                           "-o in_channels=1)"), err
    assert main(["mobilenet_v2_cifar", "--input", "1,8,8", "-o", "in_channels=1"]) == 0
    assert "input 1x8x8" in capsys.readouterr().out
    # the hint is only for a channel mismatch: a too small image gets the plain error
    assert main(["alexnet", "--input", "3,32,32"]) == 1
    assert "in_channels" not in capsys.readouterr().err
