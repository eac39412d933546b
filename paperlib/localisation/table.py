"""Tidy localisation tables for every completed run of the grid, and the comparison with the prior.

:func:`localisation_table` walks the grid's cells (:func:`paperlib.experiment.cells.grid_cells`), keeps
the runs that are complete (or trains the missing ones when asked), localises each
(:func:`~.run.localise_run`, cached per run) and writes two tidy tables to the results folder:
``localisation.csv`` (temporal metrics) and ``localisation_tf.csv`` (T-F metrics), one row per
run × scorer (× gating) × metric, with the identity columns of ``results.csv``.
:func:`summarise_localisation` averages over folds; :func:`compare_with_prior` and
:func:`prior_statement` say, from those numbers, which models localise better than the position
prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from paperlib import paths
from paperlib.config import Profile
from paperlib.experiment.cache import split_complete
from paperlib.experiment.cells import IDENTITY as CELL_IDENTITY
from paperlib.experiment.cells import grid_cells
from paperlib.experiment.engines import run_cells
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.run import GATINGS, PRIOR, TF_EVENT_FRAMES, UNIFORM, localise_run
from paperlib.localisation.temporal import TemporalSettings
from paperlib.progress import progress_bar
from paperlib.run.provenance import atomic_write_text
from paperlib.run.result import RunResult

__all__ = [
    "HEADLINE_METRICS",
    "METRIC_LABELS",
    "REFERENCES",
    "TEMPORAL_FILE",
    "TF_FILE",
    "LocalisationTables",
    "beating_models",
    "compare_with_prior",
    "grid_runs",
    "inverted_scorers",
    "localisation_table",
    "metric_table",
    "prior_statement",
    "prior_wins",
    "read_localisation",
    "summarise_localisation",
]

TEMPORAL_FILE = "localisation.csv"
TF_FILE = "localisation_tf.csv"
IDENTITY: tuple[str, ...] = (*(c for c in CELL_IDENTITY if c != "seed"), "run_id")
"""Columns that name a run in the localisation tables: the grid's cell columns
(:data:`paperlib.experiment.cells.IDENTITY`) without the seed (repeats are not localised), and
the run id."""
HEADLINE_METRICS: tuple[str, ...] = ("frame_ap", "segment_f1", "event_f1", "psds1")
"""The metrics on which a model is compared with the position prior."""
REFERENCES: tuple[str, ...] = (PRIOR, UNIFORM)
"""The temporal scorers that read only the tags (not the audio): the prior and the chance row."""
METRIC_LABELS: dict[str, str] = {
    "frame_ap": "frame AP",
    "frame_ap_micro": "frame micro-AP",
    "frame_auroc": "frame AUROC",
    "within_clip_auroc": "within-clip AUROC",
    "segment_f1": "segment F1",
    "event_f1": "event F1",
    "psds1": "PSDS1",
    "tf_auroc": "T-F AUROC",
    "tf_ap": "T-F AP",
    "tf_iou": "T-F IoU",
    "tf_iou_threshold": "IoU threshold",
    "mask_share": "mask share",
}


@dataclass(frozen=True)
class LocalisationTables:
    """The two tidy tables: ``temporal`` (with ``gating``) and ``tf``."""

    temporal: pd.DataFrame
    tf: pd.DataFrame


def grid_runs(
    profile: Profile,
    workspace: Path,
    *,
    include_ablation: bool = True,
    include_study: bool = False,
    train_missing: bool = False,
    engine: str = "local",
    progress: bool = False,
) -> list[RunResult]:
    """The grid's runs that are complete, in grid order (trains the others if ``train_missing``).

    Repeated cells (``grid.repeat_seeds``) are left out: one run per cell, as in Table IV.
    ``include_study`` adds the robustness study's cells
    (:func:`paperlib.experiment.cells.study_cells`).

    Completeness is decided as the grid decides it
    (:func:`paperlib.experiment.cache.split_complete`); cells whose SNR has no feature file
    count as missing. With ``train_missing`` every cell runs on the grid's engine
    (:func:`paperlib.experiment.engines.run_cells`: ``engine`` by name, ``local`` honouring
    ``grid.workers``), and a cell without features raises the trainer's own error.
    """
    workspace = Path(workspace)
    # repeats with other seeds measure the spread of the clip-level tables; not localised here
    every = grid_cells(profile, include_ablation=include_ablation, include_study=include_study)
    cells = [c for c in every if c.seed is None]
    if train_missing:
        return run_cells(profile, workspace, cells, engine=engine, progress=progress)
    complete, _ = split_complete(profile, workspace, cells)
    return [complete[cell] for cell in cells if cell in complete]


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _tidy(profile: Profile, payload: dict, part: str) -> list[dict]:
    """Rows of one part of a run's payload with the identity columns (JSON null -> NaN)."""
    # payloads cached before the recipe setting existed are of the paper's recipe
    ident = {name: payload.get(name, "fixed") if name == "onsets" else payload[name]
             for name in IDENTITY if name != "profile"}  # fmt: skip
    ident["alpha"] = _number(ident["alpha"])
    return [
        {"profile": profile.name, **ident, **row, "value": _number(row["value"])}
        for row in payload[part]
    ]


def localisation_table(
    profile: Profile,
    workspace: Path,
    *,
    include_ablation: bool = True,
    include_study: bool = False,
    train_missing: bool = False,
    engine: str = "local",
    settings: TemporalSettings | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = False,
) -> LocalisationTables:
    """Localise every completed run of the grid and write the tidy tables (see the module doc).

    Args:
        profile: the profile whose grid is read.
        workspace: its workspace.
        include_ablation: also the Table V cells (2APAE α values, linear decoder).
        include_study: also the robustness study's cells (other recipes, ``2APAE-local``).
        train_missing: train cells that have no finished run instead of skipping them.
        engine: where those cells train (:func:`paperlib.experiment.engines.make_engine`).
        settings: temporal metric parameters.
        batch_size: clips per forward pass.
        device: where the models run (``auto``: CUDA when available).
        progress: a progress bar over runs (and the trainer's, when training).

    Returns:
        :class:`LocalisationTables`; the temporal table has columns ``profile, model, snr_db,
        fold, alpha, decoder_activation, run_id, scorer, primary, gating, metric, value`` and
        the T-F table the same without ``gating``. Both are also written to
        ``paths.results_dir(workspace)`` as :data:`TEMPORAL_FILE` and :data:`TF_FILE`.
    """
    workspace = Path(workspace)
    runs = grid_runs(
        profile,
        workspace,
        include_ablation=include_ablation,
        include_study=include_study,
        train_missing=train_missing,
        engine=engine,
        progress=progress,
    )
    temporal, tf = [], []
    for run in progress_bar(progress=progress, iterable=runs, desc="localisation", leave=False):
        payload = localise_run(
            run, workspace, settings=settings, batch_size=batch_size, device=device
        )
        temporal += _tidy(profile, payload, "temporal")
        tf += _tidy(profile, payload, "tf")
    columns = [*IDENTITY, "scorer", "primary"]
    tables = LocalisationTables(
        pd.DataFrame(temporal, columns=[*columns, "gating", "metric", "value"]),
        pd.DataFrame(tf, columns=[*columns, "metric", "value"]),
    )
    out = paths.results_dir(workspace)
    atomic_write_text(out / TEMPORAL_FILE, tables.temporal.to_csv(index=False))
    atomic_write_text(out / TF_FILE, tables.tf.to_csv(index=False))
    return tables


def read_localisation(workspace: Path) -> LocalisationTables:
    """The tables written by :func:`localisation_table`.

    Raises:
        FileNotFoundError: they have not been written in ``workspace``.
    """
    folder = paths.results_dir(Path(workspace))
    for name in (TEMPORAL_FILE, TF_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} does not exist; run paperlib.localisation.localisation_table"
            )
    return LocalisationTables(pd.read_csv(folder / TEMPORAL_FILE), pd.read_csv(folder / TF_FILE))


def summarise_localisation(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and number of folds per model variant × SNR × scorer (× gating) × metric.

    Works on either tidy table; the result has the table's columns without ``fold``,
    ``run_id`` and ``value``, plus ``mean``, ``std`` (NaN with one fold) and ``n_folds``.
    """
    keys = [c for c in table.columns if c not in ("fold", "run_id", "value", "profile")]
    grouped = table.groupby(keys, dropna=False, sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_folds="count").reset_index()


def metric_table(
    summary: pd.DataFrame,
    *,
    snr_db: int,
    gating: str | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One SNR (and gating) of a summary as a display table: rows model × scorer, one column
    per metric (fold means), labelled with :data:`METRIC_LABELS`.

    References that do not depend on the model are shown once, as ``(any model)``: the
    position prior and the chance row (tags uniform in time) with the true tags, and the T-F
    table's prior and event-frame oracle. With predicted tags each model has its own reference
    rows (its tags), after its own scorers.

    Args:
        summary: :func:`summarise_localisation` of one tidy table, one variant per model (for
            the grid with the ablation, select it first, e.g. with
            ``paperlib.experiment.tables.select_table_iv``).
        snr_db: the SNR shown.
        gating: ``true tags`` or ``predicted tags`` for the temporal table; ``None`` for T-F.
        metrics: the metric columns and their order (default: every metric present, in the
            order of :data:`METRIC_LABELS`).

    Raises:
        LocalisationError: a temporal summary without a gating, or several variants of a model.
    """
    sel = summary[summary["snr_db"] == snr_db]
    if "gating" in sel.columns:
        if gating not in GATINGS:
            raise LocalisationError(
                f"gating={gating!r}: a temporal summary needs one of {', '.join(GATINGS)}"
            )
        sel = sel[sel["gating"] == gating]
    shared = {None: (PRIOR, TF_EVENT_FRAMES), GATINGS[0]: REFERENCES}.get(gating, ())
    is_shared = sel["scorer"].isin(shared)
    own = sel[~is_shared]
    common = sel[is_shared]
    if len(common):
        common = common[common["model"] == common["model"].iloc[0]].assign(model="(any model)")
    rows = pd.concat([own, common])
    duplicated = rows.duplicated(["model", "scorer", "metric"])
    if duplicated.any():
        models = sorted(set(rows.loc[duplicated, "model"]))
        raise LocalisationError(
            f"several variants of {', '.join(models)} in the summary: select one per model "
            "first (e.g. paperlib.experiment.tables.select_table_iv)"
        )
    first_seen = {m: i for i, m in enumerate(dict.fromkeys(rows["model"]))}
    order = sorted(
        dict.fromkeys(zip(rows["model"], rows["scorer"], strict=True)),
        key=lambda ms: (first_seen[ms[0]], ms[1] in (*REFERENCES, TF_EVENT_FRAMES)),
    )
    wide = rows.pivot(index=["model", "scorer"], columns="metric", values="mean").loc[order]
    columns = [m for m in (metrics or METRIC_LABELS) if m in wide.columns]
    return wide[columns].rename(columns=METRIC_LABELS).rename_axis(columns=None)


def compare_with_prior(
    summary: pd.DataFrame, *, metrics: Sequence[str] = HEADLINE_METRICS
) -> pd.DataFrame:
    """Each model's primary scorer beside the position prior with the same tags.

    Args:
        summary: :func:`summarise_localisation` of the temporal table.
        metrics: which metrics to compare.

    Returns:
        Columns ``snr_db, gating, model, alpha, decoder_activation, scorer, metric, model_value,
        prior_value, beats`` (``model_value > prior_value``; fold means).
    """
    keys = ["snr_db", "gating", "model", "alpha", "decoder_activation", "metric"]
    sel = summary[summary["metric"].isin(metrics)]
    mine = sel[sel["primary"].astype(bool)]
    prior = sel[sel["scorer"] == PRIOR][[*keys, "mean"]].rename(columns={"mean": "prior_value"})
    both = mine.merge(prior, on=keys, how="inner").rename(columns={"mean": "model_value"})
    both["beats"] = both["model_value"] > both["prior_value"]
    columns = [*keys[:-1], "scorer", "metric", "model_value", "prior_value", "beats"]
    return both[columns].reset_index(drop=True)


def prior_wins(comparison: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare_with_prior` as a display table: rows SNR × gating × model, one True/False
    column per metric (does the model beat the prior?)."""
    models = {m: i for i, m in enumerate(dict.fromkeys(comparison["model"]))}
    snrs = {v: i for i, v in enumerate(dict.fromkeys(comparison["snr_db"]))}
    gatings = {g: i for i, g in enumerate(GATINGS)}
    rows = sorted(
        set(zip(comparison["snr_db"], comparison["gating"], comparison["model"], strict=True)),
        key=lambda r: (snrs[r[0]], gatings.get(r[1], len(gatings)), models[r[2]]),
    )
    metrics = list(dict.fromkeys(comparison["metric"]))
    wide = comparison.pivot(index=["snr_db", "gating", "model"], columns="metric", values="beats")
    return wide.loc[rows, metrics].rename(columns=METRIC_LABELS).rename_axis(columns=None)


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verb(subjects: Sequence[str]) -> str:
    return "beats" if len(subjects) == 1 else "beat"


def prior_statement(comparison: pd.DataFrame, *, gating: str = GATINGS[0]) -> str:
    """A plain sentence per SNR, from the numbers, on which models beat the position prior.

    Args:
        comparison: :func:`compare_with_prior` output (one model variant per model name).
        gating: ``true tags`` or ``predicted tags``.

    Returns:
        Markdown text: for each SNR, the models that beat the prior on every compared metric,
        on some (named) and on none.
    """
    sel = comparison[comparison["gating"] == gating]
    if sel.empty:
        return f"No run has localisation numbers with the {gating}."
    lines = []
    metric_names = [METRIC_LABELS.get(m, m) for m in dict.fromkeys(sel["metric"])]
    for snr, group in sel.groupby("snr_db", sort=False):
        every, some, none = [], [], []
        for model, rows in group.groupby("model", sort=False):
            won = [METRIC_LABELS.get(m, m) for m in rows.loc[rows["beats"], "metric"]]
            label = f"{model} ({rows['scorer'].iloc[0]})"
            if len(won) == len(rows):
                every.append(label)
            elif won:
                some.append((label, _join(won)))
            else:
                none.append(label)
        parts = []
        if every:
            parts.append(f"{_join(every)} {_verb(every)} it on all of them")
        parts += [f"{label} beats it on {won} only" for label, won in some]
        if none:
            parts.append(f"{_join(none)} {_verb(none)} it on none")
        lines.append(
            f"At {snr} dB with the {gating}, comparing {_join(metric_names)} with the position "
            f"prior: {'; '.join(parts)}."
        )
    return "\n\n".join(lines)


def beating_models(comparison: pd.DataFrame, *, gating: str = GATINGS[0]) -> list[str]:
    """Models whose primary scorer beats the prior on every compared metric at every SNR."""
    sel = comparison[comparison["gating"] == gating]
    wins = sel.groupby("model", sort=False)["beats"].all()
    return [str(m) for m in wins.index[wins.to_numpy(dtype=bool)]]


def inverted_scorers(
    summary: pd.DataFrame, *, gating: str = GATINGS[0], metric: str = "within_clip_auroc"
) -> pd.DataFrame:
    """Which frame scorers rank a clip's event frames *below* its other frames.

    Args:
        summary: :func:`summarise_localisation` of the temporal table.
        gating: ``true tags`` (default) or ``predicted tags``.
        metric: the within-clip ranking metric (mean over the fold's (clip, class) pairs of
            :func:`~.temporal.within_clip_auroc`).

    Returns:
        Columns ``snr_db, model, alpha, decoder_activation, scorer, within_clip_auroc`` (fold
        mean) and ``inverted`` (below 0.5), one row per model variant × SNR × scorer, without
        the tag-only references.

    Raises:
        LocalisationError: an unknown gating, or a summary without ``metric``.
    """
    if gating not in GATINGS:
        raise LocalisationError(f"gating={gating!r}: expected one of {', '.join(GATINGS)}")
    if metric not in set(summary["metric"]):
        raise LocalisationError(
            f"the summary has no {metric!r} rows: localise the runs again (localisation "
            "version 2 added it)"
        )
    sel = summary[
        (summary["metric"] == metric)
        & (summary["gating"] == gating)
        & ~summary["scorer"].isin(REFERENCES)
    ]
    out = sel[["snr_db", "model", "alpha", "decoder_activation", "scorer", "mean"]].rename(
        columns={"mean": metric}
    )
    out["inverted"] = out[metric] < 0.5
    return out.reset_index(drop=True)
