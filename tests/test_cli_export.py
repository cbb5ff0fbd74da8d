"""`minidl export`: zoo models (seeded random weights or a .pth/.safetensors file) and
`minidl train` checkpoints, written as ONNX (checked in onnxruntime) or safetensors."""
import numpy as np
import pytest

from minidl import interop, nn
from minidl.cli import main
from minidl.cli.args import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from minidl.models import zoo
from minidl.training import TrainingRun, load_data

pytest.importorskip("safetensors")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _logits(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_export_a_zoo_model_to_onnx_and_check_it(tmp_path, capsys):
    out = tmp_path / "r20.onnx"
    assert main(["export", "resnet20", "-o", str(out), "--check"]) == EXIT_OK
    text = capsys.readouterr().out
    assert ("resnet20 (random weights, seed 0): 269,722 parameters -> " f"{out} (ONNX opset 17, "
            "input (batch, 3, 32, 32), output (batch, 10)") in text
    assert "onnxruntime: largest difference from minidl" in text and ": ok" in text
    nn.manual_seed(0)
    model = zoo.resnet20().eval()   # the same seed, the same weights
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(_logits(out, x), model(x), rtol=1e-4, atol=1e-5)


def test_export_options_input_and_opset(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "mobilenet_v2", "--option", "width_mult=0.5", "--option",
                 "num_classes=7", "--input", "3,64,64", "--opset", "13", "-o", str(out),
                 "--seed", "2"]) == EXIT_OK
    assert "input (batch, 3, 64, 64), output (batch, 7)" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 13


def test_export_safetensors_and_weights_from_pth_or_safetensors(tmp_path, capsys):
    st = tmp_path / "r20.safetensors"
    assert main(["export", "resnet20", "--seed", "4", "-o", str(st)]) == EXIT_OK
    assert "(safetensors," in capsys.readouterr().out
    nn.manual_seed(4)
    expected = zoo.resnet20().state_dict()
    loaded = interop.load_safetensors(zoo.resnet20(), st).state_dict()
    assert all(np.array_equal(expected[k], loaded[k]) for k in expected)
    # the safetensors file as --weights, exported to ONNX: the same network
    onnx_path = tmp_path / "r20.onnx"
    assert main(["export", "resnet20", "--weights", str(st), "-o", str(onnx_path)]) == EXIT_OK
    assert f"resnet20 with the weights of {st}" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    ref = interop.load_safetensors(zoo.resnet20(), st).eval()(x)
    np.testing.assert_allclose(_logits(onnx_path, x), ref, rtol=1e-4, atol=1e-5)
    torch = pytest.importorskip("torch")
    pth = tmp_path / "r20.pth"
    torch.save({"state_dict": interop.to_torch_state_dict(zoo.resnet20())}, pth)
    assert main(["export", "resnet20", "--weights", str(pth), "-o",
                 str(tmp_path / "again.safetensors")]) == EXIT_OK


def _train(tmp_path, model, num_train=50, train=True):
    """A `minidl train` run's checkpoint, written through the library (after one iteration,
    or before any with train=False)."""
    path = tmp_path / f"{model}.npz"
    run = TrainingRun({"model": model, "data": "digits", "num_train": num_train,
                       "batch_size": 50}, epochs=1, checkpoint_path=str(path))
    if train:
        run.train()
    else:
        run.solver.save_checkpoint(str(path))
    return run, path


def test_export_a_train_checkpoint_rebuilds_the_model_with_its_weights(tmp_path, capsys):
    run, ckpt = _train(tmp_path, "resnet20")
    st = tmp_path / "trained.safetensors"
    assert main(["export", str(ckpt), "-o", str(st)]) == EXIT_OK
    assert f"resnet20 trained on digits, epoch 1 ({ckpt}): 269,434 parameters" in \
        capsys.readouterr().out
    trained = run.model.module.state_dict()
    exported = interop.load_safetensors(zoo.resnet20(num_classes=10, in_channels=1), st)
    for k, v in exported.state_dict().items():
        assert np.array_equal(v, trained[k]), k   # parameters, statistics and counters
    assert int(exported.bn1.num_batches_tracked) == 1
    onnx_path = tmp_path / "trained.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path), "--check"]) == EXIT_OK
    assert "input (batch, 1, 8, 8)" in capsys.readouterr().out   # the digits, as trained
    x = load_data("digits")[0]["X_test"][:4]
    run.model.module.eval()
    np.testing.assert_allclose(_logits(onnx_path, x), run.model.module(x), rtol=1e-4,
                               atol=1e-5)


def test_a_checkpoint_of_a_model_that_upsampled_exports_at_the_trained_size(tmp_path, capsys):
    assert load_data("digits")[0]["X_train"].shape[1:] == (1, 8, 8)
    run, ckpt = _train(tmp_path, "vgg11_cifar", train=False)
    assert "upsampled" in run.input_note
    assert main(["export", str(ckpt), "-o", str(tmp_path / "v.onnx")]) == EXIT_OK
    shape = run.data["X_train"].shape[1:]            # 1x32x32: upsampled by the run
    assert f"input (batch, {', '.join(map(str, shape))})" in capsys.readouterr().out


def test_export_errors_are_one_line(tmp_path, capsys):
    _, fc_ckpt = _train(tmp_path, "fc", train=False)
    cases = [
        (["export", "resnet20", "-o", str(tmp_path / "x.bin")], EXIT_USAGE, "--format"),
        (["export", "resnet20", "--format", "safetensors", "--input", "3,8,8", "-o",
          str(tmp_path / "x.st")], EXIT_USAGE, "--input, --opset and --check apply to"),
        (["export", str(fc_ckpt), "--weights", "w.pth", "-o", str(tmp_path / "x.onnx")],
         EXIT_USAGE, "apply to a zoo model name"),
        (["export", "resnetxx", "-o", str(tmp_path / "x.onnx")], EXIT_FAILURE,
         "unknown model 'resnetxx'"),
        (["export", str(tmp_path / "none.npz"), "-o", str(tmp_path / "x.onnx")], EXIT_FAILURE,
         "no checkpoint file"),
        (["export", str(fc_ckpt), "-o", str(tmp_path / "x.onnx")], EXIT_FAILURE,
         "holds a coursework model (fc)"),
        (["export", "resnet20", "--input", "1,32,32", "-o", str(tmp_path / "x.onnx")],
         EXIT_FAILURE, "cannot take an input"),
        (["export", "resnet20", "--weights", str(tmp_path / "w.txt"), "-o",
          str(tmp_path / "x.onnx")], EXIT_USAGE, "expected a .pth/.pt"),
    ]
    for argv, status, fragment in cases:
        assert main(argv) == status, argv
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, err
    corrupt = tmp_path / "bad.safetensors"
    corrupt.write_bytes(b"\x00" * 20)
    assert main(["export", "resnet20", "--weights", str(corrupt), "-o",
                 str(tmp_path / "x.onnx")]) == EXIT_FAILURE
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
