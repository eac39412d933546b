"""The "pocket vs paper" table: every setting in which two profiles differ, and why.

The reasons are the end-of-line comments of the profile file itself (``key: value  # why``),
so the table in the book is generated from the two YAML files and cannot drift from them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from paperlib.config import load_profile, profile_text, to_dict

__all__ = ["profile_comments", "profile_differences"]

_SECTION = re.compile(r"^([A-Za-z_]\w*):\s*(#.*)?$")
_KEY = re.compile(r"^\s+([A-Za-z_]\w*):[^#]*#\s*(.+?)\s*$")
_IGNORED = ("name", "description", "requires_gpu", "book.cell_timeout_s")


def profile_comments(name_or_path: str | Path) -> dict[str, str]:
    """End-of-line comments of a profile's keys: ``{"train.lr": "10x the paper's: ..."}``."""
    text, _source = profile_text(name_or_path)
    comments: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if match := _SECTION.match(line):
            section = match.group(1)
        elif (match := _KEY.match(line)) and section:
            comments[f"{section}.{match.group(1)}"] = match.group(2)
    return comments


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, content in values.items():
        if isinstance(content, dict):
            for key, value in content.items():
                flat[f"{section}.{key}"] = value
        else:
            flat[section] = content
    return flat


def profile_differences(
    reference: str | Path = "paper", other: str | Path = "pocket"
) -> pd.DataFrame:
    """The settings where ``other`` differs from ``reference``, with ``other``'s reasons.

    Returns:
        Columns ``setting`` (``section.key``), the two profiles' names (their values, lists
        written ``[a, b]``) and ``why`` (the comment on that key in ``other``'s file, or "").
    """
    first, second = load_profile(reference), load_profile(other)
    a, b = _flat(to_dict(first)), _flat(to_dict(second))
    why = profile_comments(other)
    rows = []
    for setting in a:
        if setting in _IGNORED or a[setting] == b.get(setting):
            continue
        rows.append(
            {
                "setting": setting,
                first.name: _show(a[setting]),
                second.name: _show(b.get(setting)),
                "why": why.get(setting, ""),
            }
        )
    return pd.DataFrame(rows, columns=["setting", first.name, second.name, "why"])


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "–"
    return "–" if value is None else str(value)
