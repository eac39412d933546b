"""Where the book's launch buttons (Colab, Binder) and its Colab setup cell point.

The repository comes from ``_config.yml`` (``repository.url`` and ``repository.branch``);
``$PAPERLIB_BOOK_REPOSITORY`` and ``$PAPERLIB_BOOK_BRANCH`` override both for one build. The
Pages workflow sets them to the repository and commit it runs on, so a fork's site launches
the fork, at the commit the site was built from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paperlib.book.errors import BookError

REPOSITORY_ENV = "PAPERLIB_BOOK_REPOSITORY"
BRANCH_ENV = "PAPERLIB_BOOK_BRANCH"
_GITHUB_URL = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)/?$")
_REF = re.compile(r"^[\w][\w./-]*$")


@dataclass(frozen=True)
class Repository:
    """A GitHub repository and the branch, tag or commit the launch buttons open."""

    url: str
    """``https://github.com/<owner>/<name>`` (Colab opens notebooks from GitHub only)."""
    branch: str
    path_to_book: str = ""
    """Folder of the book inside the repository (``""``: the root)."""

    @property
    def requirement(self) -> str:
        """The pip requirement of paperlib at this ref: ``paperlib[book] @ git+URL@REF``."""
        return f"paperlib[book] @ git+{self.url}@{self.branch}"


def _check(value: Any, pattern: re.Pattern[str], source: str, expected: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise BookError(f"{source} = {value!r}: expected {expected}")
    return value


def repository_from_config(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Repository | None:
    """The launch repository of a book's ``_config.yml`` mapping, with the overrides applied.

    Returns ``None`` when neither the config nor the environment names a repository URL (a
    book without launch buttons). The branch defaults to ``main``.

    Raises:
        BookError: the URL is not ``https://github.com/<owner>/<name>`` or the branch is not a
            plain ref name; the message names the setting (config key or variable) and value.
    """
    env = os.environ if environ is None else environ
    section = config.get("repository") or {}
    if not isinstance(section, Mapping):
        raise BookError(f"_config.yml: repository = {section!r}: expected a mapping")
    url = env.get(REPOSITORY_ENV) or section.get("url")
    if url is None:
        return None
    url_source = REPOSITORY_ENV if env.get(REPOSITORY_ENV) else "_config.yml repository.url"
    branch_source = BRANCH_ENV if env.get(BRANCH_ENV) else "_config.yml repository.branch"
    branch = env.get(BRANCH_ENV) or section.get("branch") or "main"
    url = _check(url, _GITHUB_URL, url_source, "https://github.com/<owner>/<name>").rstrip("/")
    branch = _check(branch, _REF, branch_source, "a branch, tag or commit name")
    path = section.get("path_to_book") or ""
    return Repository(url.removesuffix(".git"), branch, str(path).strip("/"))


def apply_repository(config: dict[str, Any], repository: Repository) -> dict[str, Any]:
    """``config`` with its ``repository`` section set to ``repository`` (in place; returned)."""
    config["repository"] = {
        "url": repository.url,
        "branch": repository.branch,
        "path_to_book": repository.path_to_book,
    }
    return config
