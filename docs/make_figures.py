"""Make the README's pictures of `minidl viz` (docs/viz/*.png) by running the commands the
README shows beside them.

    python docs/make_figures.py          # from anywhere; about 10 s on a 2-core machine

It trains the digits model the pictures look at (runs/dcn, ignored by git), then runs each
command of COMMANDS in-process (minidl.cli.main), single-threaded and seeded, so that the
pictures are the same on every run with the same library versions. tests/test_docs_figures.py
checks that the README shows each command next to its picture.
"""
import os
import pathlib
import shlex
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

TRAIN = "minidl train --model deepconvnet --epochs 8 --lr 5e-3 --out runs/dcn --no-progress"
CKPT = "--checkpoint runs/dcn/checkpoint.npz"
# (command, the PNG it writes); the README shows each command above its picture.
COMMANDS = [
    (f"minidl viz filters {CKPT} -o docs/viz/filters.png", "docs/viz/filters.png"),
    (f"minidl viz activations {CKPT} --layer relu1 --index 0 -o docs/viz/activations.png",
     "docs/viz/activations.png"),
    (f"minidl viz saliency {CKPT} --index 0,1,2 -o docs/viz/saliency.png",
     "docs/viz/saliency.png"),
    (f"minidl viz occlusion {CKPT} --index 0,1,2 --patch 3 --stride 1 "
     "-o docs/viz/occlusion.png", "docs/viz/occlusion.png"),
    (f"minidl viz class {CKPT} --class 3 --steps 200 -o docs/viz/class.png",
     "docs/viz/class.png"),
    (f"minidl viz fooling {CKPT} --index 3 --class 8 -o docs/viz/fooling.png",
     "docs/viz/fooling.png"),
    (f"minidl viz deconv {CKPT} --layer conv2 --index 0,1,2 -o docs/viz/deconv.png",
     "docs/viz/deconv.png"),
]


def main():
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))   # this checkout's minidl, installed or not
    os.environ["MINIDL_NUM_THREADS"] = "1"
    from minidl.cli import main as minidl

    for command in [TRAIN] + [c for c, _ in COMMANDS]:
        print(f"$ {command}", flush=True)
        status = minidl(shlex.split(command)[1:])
        if status:
            return status
    for _, png in COMMANDS:
        print(f"{png}: {os.path.getsize(png) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
