"""``minidl export MODEL_OR_CHECKPOINT --format onnx|safetensors -o FILE [--input C,H,W]``:
a zoo model (seeded random weights, or --weights from a .pth/.pt/.safetensors file) or the
model of a ``minidl train`` checkpoint, written as ONNX (minidl.interop.to_onnx, optionally
checked in onnxruntime) or as safetensors (minidl.interop.save_safetensors)."""
import os

from .args import (EXIT_FAILURE, EXIT_OK, UsageError, builder_option, builder_options,
                   input_shape, nonneg_int, positive_int)

HELP = "export a zoo model or a training checkpoint to ONNX or safetensors"
FORMATS = {".onnx": "onnx", ".safetensors": "safetensors"}
CHECK_TOLERANCE = 1e-4  # --check: largest difference relative to the largest logit

EXAMPLES = """examples:
  minidl export resnet18 --weights resnet18-f37072fd.pth -o resnet18.onnx --check
  minidl export resnet50 --weights resnet50.safetensors --format onnx -o r50.onnx --input 3,160,160
  minidl export runs/resnet20-digits/checkpoint.npz -o resnet20.onnx
  minidl export runs/resnet20-digits/checkpoint.npz -o resnet20.safetensors
  minidl export mobilenet_v2 --option width_mult=0.5 -o mnv2.safetensors --seed 1

MODEL_OR_CHECKPOINT is a zoo name (minidl summary --list) or a checkpoint written by
`minidl train`, whose model is rebuilt from the run's settings and given the trained weights
(a checkpoint exports at its training images' size unless --input says otherwise).
--format defaults to the output's extension (.onnx or .safetensors). Weights files are read
without unpickling anything but tensors (torch.load(..., weights_only=True)).
"""


def add_arguments(parser):
    parser.description = ("Write a zoo model or the model of a `minidl train` checkpoint as an "
                          "ONNX file (checked by\nonnx.checker; --check runs it in onnxruntime) "
                          "or a safetensors file (torchvision's key names).")
    parser.epilog = EXAMPLES
    parser.add_argument("source", metavar="MODEL_OR_CHECKPOINT",
                        help="a zoo model name, or a checkpoint file written by minidl train")
    parser.add_argument("--format", choices=sorted(set(FORMATS.values())), default=None,
                        help="output format (default: from FILE's extension)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    parser.add_argument("--input", type=input_shape, default=None, metavar="C,H,W",
                        help="ONNX: one image's size (default: the model's natural size; "
                        "for a checkpoint, its training images')")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="zoo model: load these weights first (.pth/.pt through torch, "
                        ".safetensors)")
    parser.add_argument("--option", type=builder_option, action="append", default=[],
                        metavar="KEY=VALUE", help="zoo model: a builder option, e.g. "
                        "num_classes=10 (repeatable)")
    parser.add_argument("--seed", type=nonneg_int, default=0,
                        help="zoo model without --weights: seed of the random weights "
                        "(default 0)")
    parser.add_argument("--opset", type=positive_int, default=None,
                        help="ONNX opset (default: minidl.interop.DEFAULT_OPSET, 17)")
    parser.add_argument("--check", action="store_true",
                        help="ONNX: run the file in onnxruntime on a random batch and compare "
                        f"with minidl (fails above {CHECK_TOLERANCE:g} relative)")


def _format(args):
    if args.format:
        return args.format
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in FORMATS:
        raise UsageError(f"cannot tell the format from {args.output!r}: give --format onnx or "
                         "--format safetensors, or a .onnx / .safetensors file name")
    return FORMATS[ext]


def _is_checkpoint(source):
    """A file (or a name that can only be a path) rather than a zoo model name."""
    return os.path.exists(source) or os.sep in source or os.path.splitext(source)[1] != ""


def _zoo_model(args):
    """(module, default input, description) of a zoo model, with --weights loaded."""
    from minidl import interop
    from minidl.models import zoo
    from minidl.nn import manual_seed

    manual_seed(args.seed)
    module = zoo.get_model(args.source, **builder_options(args.source, args.option, "--option"))
    if args.weights is None:
        return module, module.default_input, f"{args.source} (random weights, seed {args.seed})"
    ext = os.path.splitext(args.weights)[1].lower()
    if ext == ".safetensors":
        interop.load_safetensors(module, args.weights)
    elif ext in (".pth", ".pt", ".bin", ".ckpt"):
        interop.load_torch(module, args.weights)
    else:
        raise UsageError(f"--weights {args.weights!r}: expected a .pth/.pt (PyTorch) or "
                         ".safetensors file")
    return module, module.default_input, f"{args.source} with the weights of {args.weights}"


def _checkpoint_model(path):
    """(module, the input size the run fed it, description) of a `minidl train` checkpoint."""
    from minidl.solver import read_checkpoint
    from minidl.training import run_model_from_checkpoint

    ckpt = read_checkpoint(path)
    model, settings, input_dims = run_model_from_checkpoint(ckpt, path)
    name = settings["model"]
    module = getattr(model, "module", None)
    if module is None:
        raise ValueError(f"{path!r} holds a coursework model ({name}): export takes zoo models "
                         "(minidl.nn modules); the coursework models save their weights with "
                         "model.save(path)")
    epoch = ckpt.get("epoch")
    when = f", epoch {epoch}" if epoch is not None else ""
    return module, input_dims, f"{name} trained on {settings['data']}{when} ({path})"


def _size(path):
    n = os.path.getsize(path)
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def run(args):
    """``minidl export``: returns the exit status (0 written, 1 an error or a failed --check,
    2 bad arguments)."""
    from minidl import interop

    fmt = _format(args)
    checkpoint = _is_checkpoint(args.source)
    if checkpoint and (args.weights or args.option):
        raise UsageError("--weights and --option apply to a zoo model name, not to a checkpoint")
    if fmt == "safetensors" and (args.input or args.opset or args.check):
        raise UsageError("--input, --opset and --check apply to --format onnx")
    if checkpoint:
        if not os.path.isfile(args.source):
            raise FileNotFoundError(f"no checkpoint file {args.source!r} (and it is not a zoo "
                                    "model name: see minidl summary --list)")
        module, natural, desc = _checkpoint_model(args.source)
    else:
        module, natural, desc = _zoo_model(args)
    params = f"{module.num_params():,} parameters"
    if fmt == "safetensors":
        interop.save_safetensors(module, args.output)
        print(f"{desc}: {params} -> {args.output} (safetensors, {_size(args.output)})")
        return EXIT_OK
    shape = args.input or natural
    opset = args.opset or interop.DEFAULT_OPSET
    interop.to_onnx(module, shape, args.output, opset=opset)
    out = module.output_shape(shape)
    print(f"{desc}: {params} -> {args.output} (ONNX opset {opset}, input (batch, "
          f"{', '.join(map(str, shape))}), output (batch, {', '.join(map(str, out))}), "
          f"{_size(args.output)})")
    if args.check:
        err = interop.check_onnx(module, args.output)
        verdict = "ok" if err <= CHECK_TOLERANCE else f"FAILED (tolerance {CHECK_TOLERANCE:g})"
        print(f"onnxruntime: largest difference from minidl {err:.1e} of the largest logit on "
              f"a random batch of 2: {verdict}")
        if err > CHECK_TOLERANCE:
            return EXIT_FAILURE
    return EXIT_OK
