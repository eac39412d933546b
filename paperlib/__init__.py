"""paperlib: the library behind the notebook book of Deshmukh, Raj & Singh (2020),
*Multi-Task Learning for Interpretable Weakly Labelled Sound Event Detection*.

Importing the package reads no data, downloads nothing and probes no GPU: submodules are
imported by whoever needs them (``paperlib.data``, ``paperlib.models``, ``paperlib.run``,
``paperlib.experiment``, ``paperlib.book``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
