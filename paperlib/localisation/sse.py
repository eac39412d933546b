"""``sed_scores_eval``, imported in one place and made to work with pandas 3.

sed_scores_eval (Ebbers, Serizel, Haeb-Umbach, ICASSP 2022; what DCASE uses for PSDS) is the
field's reference for threshold-independent SED evaluation. Its latest PyPI release, 0.0.4,
computes collar-based and intersection-based (PSDS) statistics in a Cython kernel,
``cy_detection.onset_offset_curves``, whose arguments are typed ``double[:]``: a *writable*
memoryview. The library takes those arrays from its score DataFrames with ``to_numpy()``, and
under pandas 3's copy-on-write that returns a read-only view, so the kernel fails with
``ValueError: buffer source array is read-only``. No release fixes it (the upstream fix is
``const double[:]``), and the arrays are made inside the library, so a caller cannot pass
writable ones. :func:`sed_scores_eval` therefore wraps the one module attribute through which
the library calls the kernel, ``sed_scores_eval.base_modules.statistics.onset_offset_curves``,
so that it receives writable float64 copies of the same values: nothing else changes.

Importing the package also imports sed_eval and dcase_util, whose ``pkg_resources`` import
warns about its deprecation (setuptools < 81 still ships it); that warning is silenced here.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

_PATCHED = "_paperlib_writable_inputs"


def _writable_inputs(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` called with writable float64 copies of its array arguments."""

    @functools.wraps(kernel)
    def call(scores: Any, timestamps: Any, change_point_candidates: Any = None) -> Any:
        candidates = (
            None
            if change_point_candidates is None
            else np.array(change_point_candidates, dtype=np.float64)
        )
        return kernel(
            np.array(scores, dtype=np.float64), np.array(timestamps, dtype=np.float64), candidates
        )

    setattr(call, _PATCHED, True)
    return call


@functools.lru_cache(maxsize=1)
def sed_scores_eval() -> ModuleType:
    """The ``sed_scores_eval`` package, with the read-only-buffer workaround applied (once)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*pkg_resources", category=DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=".*declare_namespace", category=DeprecationWarning
        )
        import sed_scores_eval as package
        from sed_scores_eval.base_modules import statistics
    kernel = getattr(statistics, "onset_offset_curves", None)
    if kernel is not None and not getattr(kernel, _PATCHED, False):
        statistics.onset_offset_curves = _writable_inputs(kernel)
    return package
