"""Errors of the localisation concern; each message names the value and what was expected."""

from __future__ import annotations


class LocalisationError(ValueError):
    """Inputs that cannot be localised or scored: mismatched shapes, unknown labels, a pooling
    that does not fit the model's frames, a run whose data are missing or stale."""
