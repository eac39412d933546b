"""The repository keeps its promises: one pinned environment, the two commands, clean notebooks."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_declared_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.extend(extra)
    pins = _pins()
    missing = sorted(_requirement_name(r) for r in declared if _requirement_name(r) not in pins)
    assert missing == [], f"not pinned in constraints.txt: {missing}"


def test_torch_is_the_cpu_wheel_on_disk_and_jupyter_book_stays_on_1x() -> None:
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"].startswith("1.")
    assert "torchaudio" not in pins


def test_environment_yml_installs_the_same_pinned_set() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_section
    assert any(item.startswith("-e .[") for item in pip_section)


def test_make_targets_and_ci_entry_point() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book:", "test:", "install:"):
        assert re.search(rf"^{target}", makefile, re.M), f"Makefile lacks {target}"
    assert "-c constraints.txt" in makefile and "-m venv" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and "make test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


def _toc_files(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["file"]] if "file" in node else []
        if "root" in node:
            found.append(node["root"])
        for value in node.values():
            found.extend(_toc_files(value))
        return found
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def test_every_toc_entry_exists() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = _toc_files(toc)
    assert entries, "_toc.yml lists no files"
    missing = [
        e for e in entries if not any((ROOT / f"{e}{s}").is_file() for s in (".md", ".ipynb"))
    ]
    assert missing == [], f"_toc.yml names files that do not exist: {missing}"


NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_chapters_are_committed_clean_and_parameterised(path: Path) -> None:
    notebook = json.loads(path.read_text())
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    with_outputs = [
        i for i, c in enumerate(code_cells) if c.get("outputs") or c.get("execution_count")
    ]
    assert with_outputs == [], f"{path.name}: code cells with outputs {with_outputs}"
    tagged = [c for c in code_cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters'"
    source = "".join(tagged[0]["source"])
    assert re.search(r"^profile: str = ", source, re.M), f"{path.name}: no 'profile: str' parameter"
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert re.match(r"^\w+: [\w\[\], |]+ = .+#", line), (
                f"{path.name}: parameter line without a type annotation and comment: {line!r}"
            )
