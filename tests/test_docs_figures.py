"""The README's pictures of `minidl viz` are made by docs/make_figures.py: each picture is in
the repository, small, and shown under the command that makes it."""
import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _figures_script():
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_picture_is_shown_under_its_command_and_stays_small():
    script = _figures_script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    kinds = set()
    for command, png in script.COMMANDS:
        assert command.endswith(f"-o {png}") and command.startswith("minidl viz ")
        kinds.add(command.split()[2])
        path = ROOT / png
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 100 * 1024, f"{png}: keep the README's pictures small"
        # the command in a code block, then (after nothing but blank lines) its picture
        shown = re.search(re.escape(command) + r"\n```\n\n!\[[^\]]+\]\(" + re.escape(png) + r"\)",
                          readme)
        assert shown, f"README.md does not show {png} under `{command}`"
    assert kinds == {"filters", "activations", "saliency", "occlusion", "class", "fooling",
                     "deconv"}
    assert script.TRAIN.split()[:2] == ["minidl", "train"] and script.TRAIN.replace(
        " --no-progress", "") in readme
