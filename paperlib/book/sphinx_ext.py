"""A small Sphinx extension the book runner adds to the build: JavaScript fixes and page style.

With jupyter-book 1.0.4, sphinx-thebe 0.3.1 and Sphinx 7.4 every page includes the inline
thebe configuration script twice, so the browser reports ``Identifier 'THEBE_JS_URL' has
already been declared`` on every page; and pydata-sphinx-theme reports ``Got invalid theme
mode`` on a first visit when no default mode is configured. (the two copies differ only in
``filename`` being ``None`` or ``""``, so Sphinx's own de-duplication misses them). This
extension drops repeated ``<script>`` entries from each page and sets the theme's default mode to ``light``.
It also adds ``static/paperlib.css`` (tables that fit the text column, the run-cost header).
The runner enables it by adding it to ``sphinx.extra_extensions`` in the build tree's copy of
``_config.yml`` (:func:`paperlib.book.site.sync_tree`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_MODE = "light"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STYLESHEET = "paperlib.css"


def _script_key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", None) or ""  # Sphinx mixes None and "" for inline
    return (str(filename), tuple(sorted(
        (str(k), str(v)) for k, v in attributes.items()
    )))  # fmt: skip


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of identical ``<script>`` entries (same file or body, same attributes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def set_default_mode(app: Any, config: Any) -> None:
    """Give pydata-sphinx-theme a default colour mode unless the book sets one."""
    context = dict(config.html_context or {})
    context.setdefault("default_mode", DEFAULT_MODE)
    config.html_context = context


def add_stylesheet(app: Any, config: Any) -> None:
    """Serve :data:`STATIC_DIR` and link :data:`STYLESHEET` from every page."""
    config.html_static_path = [*list(config.html_static_path or []), str(STATIC_DIR)]
    app.add_css_file(STYLESHEET)


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", set_default_mode)
    app.connect("config-inited", add_stylesheet)
    app.connect("html-page-context", dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
