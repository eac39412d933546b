"""The runner's JSON stores share one mechanism: empty when missing or broken, strict on save."""

from __future__ import annotations

import json
import math

from paperlib.book.execute import Manifest
from paperlib.book.status import ChapterRun, RunHistory
from paperlib.book.store import JsonStore


def test_missing_broken_or_non_object_files_load_empty(tmp_path) -> None:
    for cls in (JsonStore, Manifest, RunHistory):
        assert cls.load(tmp_path / "absent.json").entries == {}
        (tmp_path / "broken.json").write_text('{"a": ')
        assert cls.load(tmp_path / "broken.json").entries == {}
        (tmp_path / "list.json").write_text("[1, 2]")
        store = cls.load(tmp_path / "list.json")
        assert isinstance(store, cls) and store.entries == {}


def test_save_is_strict_json_and_keeps_or_sorts_keys(tmp_path) -> None:
    store = JsonStore(tmp_path / "deep" / "store.json", {"b": math.nan, "a": 1})
    store.save()
    text = (tmp_path / "deep" / "store.json").read_text()
    assert json.loads(text) == {"a": 1, "b": None} and list(json.loads(text)) == ["a", "b"]
    history = RunHistory(tmp_path / "history.json")
    history.record(ChapterRun("smoke", 1.5, "t1", "cpu"), "03_training")
    history.record(ChapterRun("pocket", 2.0, "t2", "cpu"), "03_training")
    history.save()
    again = RunHistory.load(tmp_path / "history.json")
    assert list(again.entries) == ["smoke", "pocket"]  # build order, not sorted
    assert [r.profile for r in again.runs("03_training")] == ["smoke", "pocket"]
