"""The experiment: the grid of runs behind Tables IV and V, its engines, tables and evidence.

Chapters 4 and 5 of the book run the grid and compare it with the paper::

    from paperlib.experiment import run_grid, read_results
    table = run_grid(profile, workspace)                 # every cell, cached
    results, per_class = read_results(workspace)

It imports :mod:`paperlib.run` (one run), never the reverse. Modules:

- :mod:`.cells`: the cells as plain data (:func:`grid_cells`) and the identity columns;
- :mod:`.cache`: which cells are done and which are to do;
- :mod:`.engine`: the one engine interface and its names; :mod:`.pools` (serial, CPU and GPU
  processes), :mod:`.ray_engine` (Ray), :mod:`.engines` (by name: :func:`run_cells`);
- :mod:`.results`: the tidy results tables; :mod:`.grid`: :func:`run_grid`;
- :mod:`.tables`: the paper's Tables IV and V beside ours; :mod:`.evidence`: chance, spread
  and orderings.
"""

from paperlib.experiment.cache import split_complete
from paperlib.experiment.cells import IDENTITY, Cell, cell_label, grid_cells
from paperlib.experiment.engine import ENGINES, EngineError, GridCellError
from paperlib.experiment.engines import make_engine, run_cells
from paperlib.experiment.grid import run_grid
from paperlib.experiment.results import merge_results, read_results, read_run_logs

__all__ = [
    "ENGINES",
    "IDENTITY",
    "Cell",
    "EngineError",
    "GridCellError",
    "cell_label",
    "grid_cells",
    "make_engine",
    "merge_results",
    "read_results",
    "read_run_logs",
    "run_cells",
    "run_grid",
    "split_complete",
]
