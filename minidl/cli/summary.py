"""``minidl summary NAME [--input C,H,W] [-o KEY=VALUE] [--all]``: the lecture's per-layer
table of a zoo model, by shape inference only (the table is minidl.summary's)."""
import argparse
import ast
import inspect
import time

from .args import EXIT_OK, UsageError, boolean, nonneg_int, positive_int

HELP = "print a model's per-layer table (shapes, memory, params, FLOPs)"

EXAMPLES = """examples:
  minidl summary alexnet_lecture --input 3,227,227
  minidl summary resnet50 --option stride_in_1x1=true
  minidl summary resnet20            (CIFAR models default to 3,32,32)
  minidl summary mobilenet_v2_cifar --input 1,8,8 -o in_channels=1
  minidl summary --list

Options (-o) are the builder's keyword arguments (minidl.models.zoo.NAME); a yes/no option
takes true/false, 1/0 or yes/no, other values are Python literals (3, 0.5, 'A') or text.
"""


def _input_shape(text):
    """argparse type: 'C,H,W' (or CxHxW) of positive sizes -> a tuple."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes C,H,W such as 3,224,224, got "
                                         f"{text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes C,H,W such as 3,224,224 "
                                         f"(one sample, no batch axis), got {text!r}")
    return shape


def _option(text):
    """argparse type: 'KEY=VALUE' -> (key, text); the value is read in run(), where the
    builder's signature says whether it is a yes/no option."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_arguments(parser):
    parser.description = ("Print the lecture's per-layer table (shapes, memory, params, "
                          "FLOPs) of a zoo model,\nby shape inference only.")
    parser.epilog = EXAMPLES
    parser.add_argument("name", nargs="?", help="model name (see --list)")
    parser.add_argument("--input", type=_input_shape, default=None, metavar="C,H,W",
                        help="input C,H,W (default: the model's natural size, 3,224,224 for "
                        "ImageNet models)")
    parser.add_argument("--dtype-bytes", type=positive_int, default=4,
                        help="bytes per element for the memory column (default 4, float32)")
    parser.add_argument("--option", "-o", type=_option, action="append", default=[],
                        metavar="KEY=VALUE", help="builder option, e.g. batch_norm=true "
                        "(repeatable)")
    parser.add_argument("--all", action="store_true",
                        help="also list activation and dropout rows")
    parser.add_argument("--decimals", type=nonneg_int, default=0,
                        help="digits after the point in the numeric columns (default 0)")
    parser.add_argument("--list", action="store_true", help="list the model names and exit")


def _builder_options(name, options):
    """-o KEY=VALUE pairs -> builder keyword arguments. A parameter whose default is a bool
    takes only true/false, 1/0, yes/no (UsageError otherwise); other values are Python
    literals, or the text itself."""
    from minidl.models import zoo

    builder = getattr(zoo, name, None)
    params = inspect.signature(builder).parameters if callable(builder) else {}
    kwargs = {}
    for key, text in options:
        param = params.get(key)
        if param is not None and isinstance(param.default, bool):
            try:
                kwargs[key] = boolean(text)
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"-o {key}={text}: {e}") from None
            continue
        try:
            kwargs[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            kwargs[key] = text
    return kwargs


def run(args):
    """``minidl summary``: returns the exit status (0 ok, 1 a model/input error, 2 bad
    arguments)."""
    # Imported here: building the zoo's registry is most of `minidl --help`'s start-up.
    from minidl.models import zoo
    from minidl.nn import ShapeError
    from minidl.summary import summary

    if args.list:
        print("\n".join(zoo.list_models()))
        return EXIT_OK
    if not args.name:
        raise UsageError("give a model NAME (see --list)")
    start = time.perf_counter()
    kwargs = _builder_options(args.name, args.option)
    model = zoo.get_model(args.name, **kwargs)
    shape = args.input or model.default_input
    try:
        s = summary(model, shape, dtype_bytes=args.dtype_bytes, name=args.name)
    except ShapeError as e:
        model_channels = model.default_input[0]
        if "in_channels" not in kwargs and shape[0] != model_channels:
            raise ShapeError(f"{e} (the model is built for {model_channels} input channels; "
                             f"for {shape[0]}, add -o in_channels={shape[0]})") from None
        raise
    print(s.table(show_all=args.all, decimals=args.decimals))
    print(f"(computed by shape inference in {time.perf_counter() - start:.3f} s)")
    return EXIT_OK
