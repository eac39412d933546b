"""Importing paperlib (every module of it) reads no data, opens no socket and probes no GPU."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import torch

    events = {"gpu_probes": [], "connects": [], "opened": []}

    def record_gpu(name):
        def probe(*args, **kwargs):
            events["gpu_probes"].append(name)
            return False if name == "is_available" else 0
        return probe

    for name in ("is_available", "device_count", "init"):
        setattr(torch.cuda, name, record_gpu(name))

    def audit(event, args):
        if event == "socket.connect":
            events["connects"].append(repr(args[1]))
        elif event == "open" and isinstance(args[0], str):
            path = args[0]
            if path.endswith((".wav", ".h5", ".hdf5", ".csv", ".pt", ".ipynb", ".zip")) and (
                path not in sys.path  # the interpreter's own zipped stdlib entry is fine
            ):
                events["opened"].append(path)

    sys.addaudithook(audit)
    import paperlib
    modules = []
    for info in pkgutil.walk_packages(paperlib.__path__, prefix="paperlib."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        modules.append(info.name)
    events["modules"] = modules
    print(json.dumps(events))
    """
)


def test_importing_every_module_has_no_side_effects() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300
    )
    events = json.loads(result.stdout.strip().splitlines()[-1])
    assert "paperlib.config" in events["modules"]
    assert events["gpu_probes"] == [], f"GPU probed at import time: {events['gpu_probes']}"
    assert events["connects"] == [], f"network touched at import time: {events['connects']}"
    assert events["opened"] == [], f"data files read at import time: {events['opened']}"


def test_top_level_import_is_light() -> None:
    code = "import sys, paperlib; print(sorted(m for m in ('torch', 'librosa', 'h5py') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_command_line_help_and_version() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "paperlib", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "COMMAND" in help_text
    version = subprocess.run(
        [sys.executable, "-m", "paperlib", "--version"], capture_output=True, text=True, check=True
    ).stdout
    import paperlib

    assert paperlib.__version__ in version
