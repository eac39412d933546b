"""Book runner: time of a second build with reuse against a first build that executes everything.

A fake book of a few notebooks (each cell does a little numpy work) is executed twice with
papermill; the second run reuses every chapter whose inputs are unchanged. Prints both times and
their ratio. The HTML build is left out (it is the same in both). Run alone with
``.venv/bin/python -m benchmarks.bench_book``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nbformat

CHAPTERS = 3
WORK = "import numpy as np\nx = np.random.default_rng(0).standard_normal((400, 400))\nfor _ in range(20):\n    x = np.tanh(x @ x.T / 400)"


def make_book(root: Path) -> None:
    """A book of ``CHAPTERS`` notebooks with a parameters cell and a little work each."""
    chapters = root / "chapters"
    chapters.mkdir(parents=True)
    (root / "_config.yml").write_text("title: bench\n")
    entries = "".join(f"  - file: chapters/c{i}\n" for i in range(CHAPTERS))
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: chapters/intro\nchapters:\n{entries}")
    (chapters / "intro.md").write_text("# Intro\n")
    for i in range(CHAPTERS):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('profile: str = "pocket"  # profile')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# C{i}"),
            params,
            nbformat.v4.new_code_cell(WORK),
        ]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, str(chapters / f"c{i}.ipynb"))


def main() -> None:
    from paperlib.book.runner import run_book

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_book(root)
        quiet = {"source": root, "build": False, "echo": lambda _line: None}
        start = time.perf_counter()
        first = run_book("smoke", **quiet)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        second = run_book("smoke", **quiet)
        second_s = time.perf_counter() - start
    states = [c.state for c in second.chapters]
    print(f"book runner, {CHAPTERS} chapters (execution only, no HTML):")
    print(
        f"  first build (baseline, executes all): {first_s:6.2f} s  {[c.state for c in first.chapters]}"
    )
    print(f"  second build (reuse):                 {second_s:6.2f} s  {states}")
    print(f"  ratio second / first: {second_s / first_s:.3f}")


if __name__ == "__main__":
    main()
