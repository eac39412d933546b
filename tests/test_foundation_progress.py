"""Progress bars: on when asked for, silenced for the book runner's kernels."""

from __future__ import annotations

import io

import pytest

from paperlib.progress import PROGRESS_ENV, progress_bar, progress_enabled


def test_bars_follow_the_request_when_the_environment_is_silent(monkeypatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert progress_enabled(True) and not progress_enabled(False)
    stream = io.StringIO()
    with progress_bar(progress=True, total=3, file=stream, mininterval=0) as bar:
        bar.update(3)
    assert "3/3" in stream.getvalue()


@pytest.mark.parametrize("requested", [True, False])
def test_the_runner_switch_turns_every_bar_off(monkeypatch, requested: bool) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "0")
    stream = io.StringIO()
    with progress_bar(progress=requested, total=3, file=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""
