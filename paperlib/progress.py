"""Progress bars that the book runner can silence.

Executed chapters keep every stream their cells print; a tqdm bar that redraws itself hundreds
of times would fill the rendered page. The book runner sets ``PAPERLIB_PROGRESS=0`` for the
kernels it starts; interactive use (a terminal, Jupyter) keeps its bars.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm import tqdm

PROGRESS_ENV = "PAPERLIB_PROGRESS"


def progress_enabled(requested: bool) -> bool:
    """``requested`` unless ``$PAPERLIB_PROGRESS`` is ``0`` (then always off)."""
    return requested and os.environ.get(PROGRESS_ENV, "1") != "0"


def progress_bar(*, progress: bool, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar, disabled when ``progress`` is false or ``$PAPERLIB_PROGRESS`` is ``0``."""
    return tqdm(disable=not progress_enabled(progress), **kwargs)
