"""``python -m benchmarks``: run every benchmark module (``benchmarks/bench_*.py``) in turn.

``python -m benchmarks data models`` runs only the named ones. Each module prints its figures and
the ratio against a plain baseline measured in the same run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== benchmarks.bench_{name} ===", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        entry = module.main
        sys.argv = [f"benchmarks.bench_{name}"]  # each module parses its own (default) options
        entry([]) if inspect.signature(entry).parameters else entry()
        print(f"=== {name}: {time.perf_counter() - start:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
