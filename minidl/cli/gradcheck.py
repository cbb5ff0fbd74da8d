"""``minidl gradcheck``: gradient checks from the command line, and the course's autograder.

    minidl gradcheck Conv                     a built-in layer on random inputs of several shapes
    minidl gradcheck all                      every built-in layer
    minidl gradcheck my_layers.py:conv_forward,conv_backward --like Conv
    minidl gradcheck my_layers.py:Conv        a class with static forward/backward

The checks and their report are minidl.autograder; this module parses the targets, prints
each case as it finishes, and sets the exit status: 0 when every check passes, 1 when one
fails (or the student's code raises), 2 for bad arguments.
"""
import os
import sys
import time

from minidl import autograder
from minidl.autograder import REFERENCE_THRESHOLD, SPECS, Report, StudentCodeError

from .args import EXIT_FAILURE, EXIT_OK, UsageError, num_threads, positive_int

HELP = ("check a built-in layer, or a student's forward/backward pair, against numeric "
        "gradients and minidl's layers")

EXAMPLES = """examples:
  minidl gradcheck Conv                 check minidl's Conv on random inputs of several shapes
  minidl gradcheck FastConv BatchNorm   several layers
  minidl gradcheck all                  every built-in layer
  minidl gradcheck --list               the layer names
  minidl gradcheck my_layers.py:conv_forward_naive,conv_backward_naive --like Conv
  minidl gradcheck convolutional_networks.py:Conv      a class with forward/backward
  minidl gradcheck layers.py:Linear.forward,Linear.backward --like Linear

For a student's pair, each case prints the forward output against minidl's layer and every
gradient against numeric gradients and against minidl's layer: pass/fail, the worst relative
error, the index of the worst element and the two values there. Exit status: 0 when every
check passes, 1 when one fails (or the student's code raises), 2 for bad arguments.
"""


def add_arguments(parser):
    parser.description = (
        "Gradient checks: minidl's own layers, or a student's forward/backward pair compared "
        "with\nnumeric gradients and with minidl's reference layer (float64, several input "
        "shapes).")
    parser.epilog = EXAMPLES
    parser.add_argument("targets", nargs="*", metavar="LAYER | FILE.py:FORWARD,BACKWARD",
                        help="built-in layer name(s) or 'all'; or one student pair")
    parser.add_argument("--like", metavar="LAYER",
                        help="the minidl layer a student's pair implements (its inputs and "
                        "reference); default: the class name, for FILE.py:CLASS")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random inputs and upstream gradients (default: 0)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="threads for kernels and BLAS (default: 1)")
    parser.add_argument("--list", action="store_true", help="list the layer names and exit")


def run(args, out=None):
    """``minidl gradcheck``: returns the exit status."""
    out = out or sys.stdout
    if args.list:
        for key, spec in SPECS.items():
            n = len(spec.cases) + len(spec.extra_cases)
            note = "" if spec.student else "  (built-in only)"
            print(f"{key:26s} {n} cases{note}", file=out)
        return EXIT_OK
    if not args.targets:
        raise UsageError("name a layer (e.g. Conv, or all) or a student pair FILE.py:FORWARD,"
                         "BACKWARD --like LAYER")
    student = [t for t in args.targets if ":" in t or t.endswith(".py")]
    with num_threads(args.threads):
        if student:
            if len(args.targets) != 1:
                raise UsageError("check one student pair at a time")
            return _run_student(args.targets[0], args.like, args.seed, out)
        if args.like is not None:
            raise UsageError("--like is for a student's pair (FILE.py:FORWARD,BACKWARD)")
        return _run_builtin(args.targets, args.seed, out)


def _lookup(name):
    try:
        return autograder.lookup_layer(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _run_builtin(targets, seed, out):
    start = time.perf_counter()
    keys = list(SPECS) if [t.lower() for t in targets] == ["all"] else \
        [_lookup(t) for t in targets]
    status = EXIT_OK
    for key in keys:
        spec = SPECS[key]
        total = len(spec.cases) + len(spec.extra_cases)
        print(f"minidl gradcheck {key}: {total} cases, float64, numeric gradients "
              f"(threshold {spec.threshold:g}), seed {seed}", file=out)
        report = Report(total)
        for description, rows in autograder.check_builtin(key, seed):
            print(report.add(description, rows), file=out, flush=True)
        print(report.verdict(key), file=out)
        if not report.passed:
            status = EXIT_FAILURE
    print(f"time: {time.perf_counter() - start:.1f} s", file=out)
    return status


def _run_student(target, like, seed, out):
    start = time.perf_counter()
    if target.endswith(".py") and ":" not in target:
        raise UsageError(f"name the functions to check: {target}:FORWARD,BACKWARD (or "
                         f"{target}:CLASS)")
    try:
        forward, backward, path, cls = autograder.load_student_pair(target)
    except StudentCodeError:
        raise  # the student's code raised: a failed check (status 1), not a usage error
    except ValueError as e:
        raise UsageError(str(e)) from None
    if like is None:
        if cls is None:
            raise UsageError("--like LAYER is required: which minidl layer does the pair "
                             "implement? (e.g. --like Conv; see --list)")
        like = cls
    key = _lookup(like)
    spec = SPECS[key]
    if not spec.student:
        raise UsageError(f"--like {key}: a student's {key} cannot be compared with minidl's "
                         f"(random masks differ); check it with minidl.gradcheck.check_pair")
    total = len(spec.cases)
    print(f"minidl gradcheck {os.path.basename(path)}: {target.rpartition(':')[2]} like "
          f"{key}: {total} cases, float64, seed {seed}; numeric threshold "
          f"{spec.threshold:g}, reference threshold {REFERENCE_THRESHOLD:g}", file=out)
    report = Report(total)
    for description, rows in autograder.check_student(forward, backward, key, seed, path):
        print(report.add(description, rows), file=out, flush=True)
    print(report.verdict(os.path.basename(path)), file=out)
    print(f"time: {time.perf_counter() - start:.1f} s", file=out)
    return EXIT_OK if report.passed else EXIT_FAILURE
