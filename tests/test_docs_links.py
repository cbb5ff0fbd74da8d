"""Links between the repository's markdown pages reach a file, and a heading where they name
one (GitHub's anchors: the heading in lower case, punctuation dropped, spaces as '-')."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/architectures.md", "docs/decisions.md", "assignments/README.md",
         "benchmarks/RESULTS.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading):
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    in_code, found = False, set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            found.add(github_anchor(line.lstrip("#")))
    return found


def test_github_anchor_rule():
    assert github_anchor(" Errata: the lecture's numbers against the count") == \
        "errata-the-lectures-numbers-against-the-count"
    assert github_anchor("Kernels and threads") == "kernels-and-threads"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_reach_a_file_and_a_heading(page):
    source = ROOT / page
    for target in LINK.findall(source.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        path = (source.parent / file_part).resolve() if file_part else source
        assert path.exists(), f"{page}: link {target!r}: no file {path}"
        if anchor:
            assert anchor in anchors(path), (f"{page}: link {target!r}: no heading with that "
                                             f"anchor in {path.name}")
