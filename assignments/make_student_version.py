"""Write the student version of the coursework notebooks: solutions blanked, outputs cleared.

    python make_student_version.py                 # every *.ipynb here -> ./student/
    python make_student_version.py --out DIR 03_dropout.ipynb

In the notebooks of this folder every exercise cell holds a working solution between the lines
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers, so nbgrader's
``ClearSolutions`` does the same job). This script replaces each such block with

    # YOUR CODE HERE
    raise NotImplementedError()

at the block's indentation, clears every output and execution count, and writes the
notebooks to the output folder, together with the helper modules beside them that they
import (course_utils.py), so that the student notebooks run from there. Only the standard
library is needed.
"""
import argparse
import json
import pathlib
import re
import shutil
import sys

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HERE = pathlib.Path(__file__).resolve().parent


def blank_solutions(source):
    """The cell source with every solution block replaced by a stub. Returns (text, count).

    Raises ValueError for a BEGIN without END or an END without BEGIN."""
    out, inside, count = [], False, 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside, count = True, count + 1
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n")
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "".join(out), count


def student_notebook(notebook):
    """A copy of a notebook (the parsed .ipynb JSON) with solutions blanked and outputs
    cleared. Returns (notebook, number of blocks blanked)."""
    nb = json.loads(json.dumps(notebook))  # a deep copy
    total = 0
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            cell["source"], count = blank_solutions(source)
        except ValueError as e:
            raise ValueError(f"cell {index}: {e}") from None
        total += count
        cell["outputs"], cell["execution_count"] = [], None
    return nb, total


_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.M)


def local_imports(notebook, folder):
    """The helper modules of ``folder`` (``NAME.py`` files) that the notebook's code cells
    import, as paths (this script excluded)."""
    found = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for name in _IMPORT.findall(source):
            path = folder / f"{name}.py"
            if path.is_file() and path.resolve() != pathlib.Path(__file__).resolve() \
                    and path not in found:
                found.append(path)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                        help="notebooks to convert (default: every *.ipynb beside this script)")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "student",
                        help="output folder (default: ./student beside this script)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks given and none found in {HERE}")
    args.out.mkdir(parents=True, exist_ok=True)
    copied = set()
    for path in paths:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            student, count = student_notebook(notebook)
        except (OSError, ValueError) as e:
            print(f"make_student_version: {path}: {e}", file=sys.stderr)
            return 1
        target = args.out / path.name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        print(f"{target}: {count} solution block(s) blanked")
        for helper in local_imports(notebook, path.resolve().parent):
            copy = args.out / helper.name
            if copy.resolve() != helper.resolve() and helper not in copied:
                shutil.copyfile(helper, copy)
                copied.add(helper)
                print(f"{copy}: copied (imported by {path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
