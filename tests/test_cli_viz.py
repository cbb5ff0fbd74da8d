"""`minidl viz KIND`: every kind writes a PNG from a `minidl train` checkpoint or a named
model, `minidl train --viz` writes the filter grid, and bad arguments get one-line errors
(exit status 2 for usage errors, 1 for an input the model cannot take)."""
import numpy as np
import pytest

from minidl.cli import main

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    """(width, height) from a PNG's header, after checking its signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A DeepConvNet trained for one epoch on 300 digits by `minidl train --viz`."""
    out = tmp_path_factory.mktemp("run")
    status = main(["train", "--model", "deepconvnet", "--num-train", "300", "--epochs", "1",
                   "--lr", "5e-3", "--out", str(out), "--no-progress", "--viz"])
    assert status == 0
    return out


def test_train_viz_writes_the_first_layers_filters_beside_the_curves(checkpoint):
    assert _png_size(checkpoint / "filters.png")[0] > 100
    assert (checkpoint / "curves.png").exists()


KIND_ARGS = {
    "filters": [],
    "activations": ["--layer", "relu1", "--index", "0,1"],
    "saliency": ["--index", "0,1,2"],
    "occlusion": ["--index", "3", "--patch", "3", "--stride", "1"],
    "class": ["--class", "4", "--steps", "20"],
    "fooling": ["--index", "0", "--class", "6"],
    "deconv": ["--layer", "conv2", "--index", "0,1"],
}


@pytest.mark.parametrize("kind", KIND_ARGS)
def test_every_kind_writes_a_png_from_a_checkpoint(kind, checkpoint, tmp_path, capsys):
    png = tmp_path / f"{kind}.png"
    status = main(["viz", kind, "--checkpoint", str(checkpoint / "checkpoint.npz"),
                   *KIND_ARGS[kind], "-o", str(png)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith(f"minidl viz {kind}: deepconvnet (") and f"wrote {png}" in out
    width, height = _png_size(png)
    assert width > 150 and height > 150


@pytest.mark.parametrize("model, extra", [
    ("fc", ["filters"]),                                  # a Linear layer's rows as images
    ("threelayer", ["saliency", "--index", "7"]),
    ("resnet20", ["deconv", "--channel", "3"]),            # a zoo model, untrained
    ("twolayer", ["occlusion", "--input", "{npy}", "--class", "2"]),
])
def test_named_models_and_npy_inputs(model, extra, tmp_path, capsys):
    npy = tmp_path / "x.npy"
    np.save(npy, np.random.default_rng(0).standard_normal((1, 8, 8)))
    png = tmp_path / "out.png"
    argv = ["viz"] + [a.replace("{npy}", str(npy)) for a in extra] + ["--model", model,
                                                                       "-o", str(png)]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"{model} (untrained), input 1x8x8: wrote" in capsys.readouterr().out
    _png_size(png)


def test_a_png_input_is_read_and_resized(tmp_path, capsys):
    from matplotlib.image import imsave

    image = tmp_path / "digit.png"
    imsave(image, np.random.default_rng(1).uniform(size=(4, 4, 3)))
    png = tmp_path / "out.png"
    assert main(["viz", "saliency", "--model", "deepconvnet", "--input", str(image),
                 "--size", "8", "-o", str(png)]) == 0
    assert "input 1x8x8" in capsys.readouterr().out
    _png_size(png)


@pytest.mark.parametrize("argv, message", [
    (["viz", "pictures", "--model", "fc"], "invalid choice: 'pictures'"),
    (["viz", "saliency"], "one of the arguments --model --checkpoint is required"),
    (["viz", "class", "--model", "deepconvnet"], "class needs --class K"),
    (["viz", "saliency", "--model", "deepconvnet", "--layer", "conv1"],
     "--layer is for filters, activations, deconv, not saliency"),
    (["viz", "activations", "--model", "deepconvnet", "--layer", "conv9"],
     "--layer 'conv9': the model has no such layer (did you mean conv2, conv1?); its layers "
     "are: conv1, bn1, relu1, pool1, conv2, bn2, relu2, pool2, flatten, fc3"),
    (["viz", "saliency", "--model", "deepconvnet", "--index", "360"],
     "--index 360: the digits test split has 360 images (0 to 359)"),
    (["viz", "saliency", "--model", "deepconvnet", "--class", "10"],
     "--class 10: the model has 10 classes (0 to 9)"),
    (["viz", "deconv", "--model", "deepconvnet", "--channel", "40"],
     "--channel 40: layer 'conv2' has 32 channels"),
    (["viz", "saliency", "--model", "fc", "--input", "image.jpg"],
     "--input 'image.jpg': expected a .npy or .png file"),
    (["viz", "saliency", "--model", "fc", "--index", "x"], "expected N or N,N,..."),
])
def test_usage_errors_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_checkpoint_options_and_shapes_the_model_cannot_take(checkpoint, tmp_path, capsys):
    ckpt = str(checkpoint / "checkpoint.npz")
    assert main(["viz", "saliency", "--checkpoint", ckpt, "--dtype", "float64"]) == 2
    assert "--dtype is for --model; a checkpoint brings its own" in capsys.readouterr().err
    rgb = tmp_path / "rgb.npy"
    np.save(rgb, np.zeros((3, 8, 8)))
    assert main(["viz", "saliency", "--checkpoint", ckpt, "--input", str(rgb)]) == 1
    err = capsys.readouterr().err
    assert ("the model (trained on digits at 1x8x8) cannot take the input's shape (3, 8, 8): "
            "conv1 (Conv2d(1, 16, kernel_size=3, padding=1)) cannot take an input of shape "
            "(3, 8, 8)") in err and err.count("\n") == 1
    assert main(["viz", "saliency", "--checkpoint", ckpt, "--size", "12"]) == 1
    assert "cannot take the input's shape (1, 12, 12)" in capsys.readouterr().err
    assert main(["viz", "saliency", "--checkpoint", str(tmp_path / "none.pkl")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["viz", "fooling", "--checkpoint", ckpt, "--class", "5", "--index", "1",
                 "--steps", "1", "-o", str(tmp_path / "f.png")]) == 1
    assert "fooling_image: image 0 is still classified as" in capsys.readouterr().err
