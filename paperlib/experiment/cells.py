"""The cells of the experiment grid behind Tables IV and V, as plain data.

Cells: every model of ``grid.models`` × SNR × held-out fold (2APAE with the profile's α and
decoder), plus the ablation (2APAE with each α of ``grid.alphas`` and, if
``grid.linear_decoder``, a linear last decoder layer) on ``grid.ablation_snrs``, plus the
repeats with other seeds, plus the robustness study: ``grid.study_models`` at ``data.study_snrs``
in the paper's recipe and in every recipe of ``data.study_onsets`` (events at random onsets), with
the repeats of ``grid.repeat_models`` there too. A :class:`Cell` is a frozen dataclass of numbers and names only (it
travels to worker processes and Ray tasks as it is); each becomes one
:func:`~paperlib.run.train_run`, cached by its run key, so a rerun skips the finished cells
and the ablation reuses the Table IV 2APAE cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperlib.config import Profile
from paperlib.models import MODEL_NAMES, has_decoder
from paperlib.run.key import MODEL_WITH_DECODER

__all__ = [
    "CELL_COST",
    "IDENTITY",
    "VARIANT_COLUMNS",
    "Cell",
    "cell_label",
    "grid_cells",
    "study_cells",
]

VARIANT_COLUMNS: tuple[str, ...] = (
    "model",
    "onsets",
    "snr_db",
    "fold",
    "alpha",
    "decoder_activation",
)
"""Columns that name a cell up to its seed (one variant of one model on one SNR and fold)."""

IDENTITY: tuple[str, ...] = ("profile", *VARIANT_COLUMNS, "seed")
"""Columns that name a grid cell in the results tables (``results.csv``, ``per_class_ap.csv``)."""

CELL_COST: dict[str, float] = {
    "2APAE": 4.0,
    "2APAE-local": 4.0,
    "AtrousAP": 1.6,
    "GWRP": 1.5,
    "GAP": 1.0,
    "GMP": 1.0,
}
"""Rough training cost relative to GMP (measured on the pocket CPU benchmark)."""


@dataclass(frozen=True)
class Cell:
    """One grid cell: a model on an SNR and held-out fold (α/decoder for 2APAE only)."""

    model: str
    snr_db: int
    fold: int
    alpha: float | None = None
    decoder_activation: str | None = None
    seed: int | None = None
    """``None``: the profile's ``train.seed``; else a repeat with this seed."""
    onsets: str = "fixed"
    """The mixing recipe of the cell's features: ``fixed`` (the paper's slots) or ``random``."""

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~paperlib.run.train_run` (and ``run_key``)."""
        return {
            "model": self.model,
            "snr_db": self.snr_db,
            "fold": self.fold,
            "alpha": self.alpha,
            "decoder_activation": self.decoder_activation,
            "seed": self.seed,
            "onsets": self.onsets,
        }

    @property
    def relative_cost(self) -> float:
        """:data:`CELL_COST` of the model: the process pools start the most expensive cells
        first so that their workers end together."""
        return CELL_COST.get(self.model, 1.0)


def cell_label(cell: Cell) -> str:
    """``2APAE snr20 fold1 alpha=0.001 decoder=relu`` (α and decoder only for 2APAE)."""
    label = f"{cell.model} snr{cell.snr_db} fold{cell.fold}"
    if cell.onsets != "fixed":
        label += f" onsets={cell.onsets}"
    if cell.alpha is not None:
        label += f" alpha={cell.alpha:g}"
    if cell.decoder_activation is not None:
        label += f" decoder={cell.decoder_activation}"
    return label


def grid_cells(
    profile: Profile,
    *,
    models: tuple[str, ...] | None = None,
    snrs: tuple[int, ...] | None = None,
    folds: tuple[int, ...] | None = None,
    alphas: tuple[float, ...] | None = None,
    include_ablation: bool = True,
    include_study: bool = True,
) -> list[Cell]:
    """The cells of the grid, without duplicates, in a stable order (SNR, fold, model; then
    the study's cells).

    The ablation cells (2APAE with other α values or a linear decoder) belong to 2APAE: a grid
    whose ``models`` leave 2APAE out has none. The repeats (``grid.repeat_models`` with each of
    ``grid.repeat_seeds``, on ``grid.repeat_snrs``) run with the ablation (``include_ablation``)
    and only for models of the grid. The study's cells (``include_study``, with
    :func:`study_cells`) come last and only when no model, SNR or fold list is overridden.

    Raises:
        ValueError: an unknown model name (the valid ones are listed).
    """
    grid = profile.grid
    models_given, snrs_given, folds_given = bool(models), bool(snrs), bool(folds)
    models = tuple(models or grid.models)
    unknown = [m for m in (*models, *grid.study_models) if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid models: {', '.join(MODEL_NAMES)}")
    include_ablation = include_ablation and MODEL_WITH_DECODER in models
    snrs = tuple(snrs or grid.snrs)
    folds = tuple(folds or grid.folds)
    alphas = tuple(grid.alphas if alphas is None else alphas)
    ablation_snrs = snrs if grid.ablation_snrs is None else tuple(grid.ablation_snrs)
    repeat_snrs = ablation_snrs if grid.repeat_snrs is None else tuple(grid.repeat_snrs)
    base_alpha = float(profile.train.alpha)
    base_decoder = profile.model.decoder_activation
    cells: dict[Cell, None] = {}
    for snr in snrs:
        for fold in folds:
            for model in models:
                if model == MODEL_WITH_DECODER:
                    cells[Cell(model, snr, fold, base_alpha, base_decoder)] = None
                else:
                    cells[Cell(model, snr, fold)] = None
            if include_ablation and snr in ablation_snrs:
                for alpha in alphas:
                    cells[Cell(MODEL_WITH_DECODER, snr, fold, float(alpha), base_decoder)] = None
                if profile.grid.linear_decoder:
                    cells[Cell(MODEL_WITH_DECODER, snr, fold, base_alpha, "linear")] = None
            if include_ablation and snr in repeat_snrs:
                for model in (m for m in grid.repeat_models if m in models):
                    variant = (
                        (base_alpha, base_decoder) if model == MODEL_WITH_DECODER else (None, None)
                    )
                    for seed in grid.repeat_seeds:
                        if seed != profile.train.seed:
                            cells[Cell(model, snr, fold, *variant, seed=int(seed))] = None
    if include_study and not (models_given or snrs_given or folds_given):
        cells.update(dict.fromkeys(study_cells(profile)))
    return list(cells)


def _variant(profile: Profile, model: str) -> tuple[float | None, str | None]:
    """``(alpha, decoder_activation)`` of a model's main cell (the profile's for a decoder)."""
    if has_decoder(model):
        return float(profile.train.alpha), profile.model.decoder_activation
    return None, None


def study_cells(profile: Profile) -> list[Cell]:
    """The robustness study's cells: does a result survive when the events move?

    ``grid.study_models`` on every SNR of ``data.study_snrs`` (default: the grid's SNRs) and
    held-out fold, in the paper's recipe (``fixed``: the Table IV cell when the model is in
    it) and in each recipe of ``data.study_onsets``; the repeats of ``grid.repeat_models`` (each
    of ``grid.repeat_seeds``, on ``grid.repeat_snrs`` among the study SNRs) are made in those
    recipes too, so their spread can be read next to the fixed-slot one. Empty when the
    profile has no study models or no study recipes.
    """
    data, grid = profile.data, profile.grid
    if not grid.study_models or not data.study_onsets:
        return []
    snrs = tuple(grid.snrs if data.study_snrs is None else data.study_snrs)
    repeat_snrs = (
        tuple(grid.ablation_snrs or grid.snrs)
        if grid.repeat_snrs is None
        else tuple(grid.repeat_snrs)
    )
    cells: dict[Cell, None] = {}
    for onsets in ("fixed", *data.study_onsets):
        for snr in snrs:
            for fold in grid.folds:
                for model in grid.study_models:
                    cells[Cell(model, snr, fold, *_variant(profile, model), onsets=onsets)] = None
                if onsets == "fixed" or snr not in repeat_snrs:
                    continue
                for model in (m for m in grid.repeat_models if m in grid.study_models):
                    for seed in grid.repeat_seeds:
                        if seed != profile.train.seed:
                            variant = _variant(profile, model)
                            cells[
                                Cell(model, snr, fold, *variant, seed=int(seed), onsets=onsets)
                            ] = None
    return list(cells)
