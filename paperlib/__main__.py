"""``python -m paperlib``: the command line (see :mod:`paperlib.cli`)."""

from paperlib.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
