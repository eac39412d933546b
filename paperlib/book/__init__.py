"""The book runner: execute every chapter with papermill, then build the site with Jupyter Book.

``python -m paperlib book --profile pocket|smoke|paper`` (used by ``make book``) is
:func:`paperlib.book.runner.run_book`. Modules by concern:

- :mod:`paperlib.book.toc`        which chapters, in which order (``_toc.yml``)
- :mod:`paperlib.book.preflight`  bad input caught before anything runs (profile, parameters,
  DCASE data, GPU)
- :mod:`paperlib.book.execute`    papermill execution, reuse of unchanged chapters, failure report
- :mod:`paperlib.book.status`     the status record (JSON), the status page and the per-profile
  run history
- :mod:`paperlib.book.console`    one terminal line per chapter, with live progress on a terminal
- :mod:`paperlib.book.pages`      the executed copies' run-cost header, titles and hidden runner cells
- :mod:`paperlib.book.launch`     the repository the launch buttons (Colab, Binder) open
- :mod:`paperlib.book.colab`      the chapters' first cell, which installs paperlib on Colab
- :mod:`paperlib.book.site`       the build tree and ``jupyter-book build``
"""

from paperlib.book.errors import (
    BookError,
    ChapterFailedError,
    DataMissingError,
    GPURequiredError,
)

__all__ = ["BookError", "ChapterFailedError", "DataMissingError", "GPURequiredError"]
