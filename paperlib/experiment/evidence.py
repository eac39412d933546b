"""What the numbers of a grid can support: chance levels, the spread between runs, orderings.

Every results table of the book is read against three things computed here from the runs:

* **chance** (:func:`chance_table`): the micro-AP of two scorers that ignore the audio, the share
  of positive (clip, class) pairs and the training folds' class frequencies
  (:func:`paperlib.metrics.chance_levels`, stored in each run's ``metrics.json``); the chance
  level is the better of the two;
* **learning** (:func:`learning_table`): each cell's micro-AP as a multiple of its chance level;
* **spread** (:func:`seed_spread`): how far apart two runs of the same cell with different seeds
  land. An ordering of two models or two α values is stated only when their difference exceeds
  it (:func:`compare_pairs`).

All functions take the tidy results of :func:`paperlib.experiment.grid.run_grid` (one row per
run and metric, with ``seed`` and the ``chance_*`` columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from paperlib.experiment.cells import VARIANT_COLUMNS
from paperlib.experiment.results import with_recipe
from paperlib.run.key import MODEL_WITH_DECODER

__all__ = [
    "LEARNING_FACTOR",
    "PAPER_ORDER",
    "chance_table",
    "compare_pairs",
    "decoder_orderings",
    "first_seed",
    "learning_statement",
    "learning_table",
    "pair_statement",
    "paper_orderings",
    "seed_spread",
]

LEARNING_FACTOR = 3.0
"""A cell "learned" when its best validation micro-AP is at least this multiple of chance."""

PAPER_ORDER: tuple[tuple[str, str], ...] = (
    ("2APAE", "AtrousAP"),
    ("AtrousAP", "GWRP"),
    ("GWRP", "GMP"),
    ("GWRP", "GAP"),
)
"""The paper's ranking of Table IV as pairs (better, worse): 2APAE > Atrous AP > GWRP > GMP, GAP."""

_CELL = list(VARIANT_COLUMNS)


def _micro(results: pd.DataFrame) -> pd.DataFrame:
    results = with_recipe(results)  # tables from before the recipe setting: the paper's
    return results[results["metric"] == "micro_ap"]


def first_seed(results: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows of the runs with the profile's ``seed`` (the repeats are for :func:`seed_spread`)."""
    if "seed" not in results.columns:
        return results
    return results[results["seed"] == seed]


def chance_table(results: pd.DataFrame) -> pd.DataFrame:
    """Chance levels per SNR and held-out fold.

    Returns:
        Columns ``snr_db, fold, positive_share, class_frequency, chance`` (the better of the
        two) and ``learning_bar`` (:data:`LEARNING_FACTOR` × chance).
    """
    micro = _micro(results)
    table = (
        micro.groupby(["snr_db", "fold"])[
            ["chance_positive_share", "chance_class_frequency", "chance_micro_ap"]
        ]
        .first()
        .reset_index()
        .rename(
            columns={
                "chance_positive_share": "positive_share",
                "chance_class_frequency": "class_frequency",
                "chance_micro_ap": "chance",
            }
        )
    )
    table["learning_bar"] = LEARNING_FACTOR * table["chance"]
    return table


def learning_table(results: pd.DataFrame) -> pd.DataFrame:
    """Each run's best validation micro-AP against its chance level.

    Returns:
        Columns ``model, alpha, decoder_activation, snr_db, fold, seed, micro_ap, chance,
        times_chance, learned`` (``times_chance >= LEARNING_FACTOR``).
    """
    micro = _micro(results)
    columns = [c for c in (*_CELL, "seed") if c in micro.columns]
    table = micro[columns].copy()
    table["micro_ap"] = micro["value"].to_numpy()
    table["chance"] = micro["chance_micro_ap"].to_numpy()
    table["times_chance"] = table["micro_ap"] / table["chance"]
    table["learned"] = table["times_chance"] >= LEARNING_FACTOR
    return table.reset_index(drop=True)


def seed_spread(results: pd.DataFrame) -> pd.DataFrame:
    """The spread between repeated runs of one cell (same model, variant, SNR, fold).

    Returns:
        One row per repeated cell: ``model, snr_db, fold, alpha, decoder_activation, seeds``
        (how many), ``min, max, spread`` (max - min of the best validation micro-AP). Empty
        when no cell was repeated.
    """
    micro = _micro(results)
    if "seed" not in micro.columns:
        return pd.DataFrame(columns=[*_CELL, "seeds", "min", "max", "spread"])
    grouped = micro.groupby(_CELL, dropna=False)
    table = grouped.agg(
        seeds=("seed", "nunique"), min=("value", "min"), max=("value", "max")
    ).reset_index()
    table = table[table["seeds"] > 1].copy()
    table["spread"] = table["max"] - table["min"]
    return table.reset_index(drop=True)


def compare_pairs(
    means: pd.Series,
    pairs: Sequence[tuple[str, str]],
    spread: float,
    *,
    paper: pd.Series | None = None,
) -> pd.DataFrame:
    """Check claimed orderings ``better > worse`` against our values and the spread.

    Args:
        means: our value per item (model name or α), e.g. fold-mean micro-AP at one SNR.
        pairs: (better, worse) as the paper claims them.
        spread: the difference two runs of one cell can show by chance alone
            (:func:`seed_spread`); a difference within it resolves nothing.
        paper: the paper's value per item, to show its own difference beside ours.

    Returns:
        Columns ``better, worse, ours`` (our difference better - worse), ``paper`` (the paper's
        difference, when given) and ``verdict``: ``agrees`` (ours > spread), ``reversed``
        (ours < -spread) or ``within spread``; pairs with an item we lack are left out.
    """
    rows = []
    for better, worse in pairs:
        if better not in means.index or worse not in means.index:
            continue
        diff = float(means[better] - means[worse])
        if diff > spread:
            verdict = "agrees"
        elif diff < -spread:
            verdict = "reversed"
        else:
            verdict = "within spread"
        row: dict[str, object] = {"better": better, "worse": worse, "ours": diff}
        if paper is not None:
            row["paper"] = (
                float(paper[better] - paper[worse])
                if better in paper.index and worse in paper.index
                else np.nan
            )
        row["verdict"] = verdict
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_recipe(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's recipe (fixed onsets); a table without recipes is all of it."""
    return frame[frame["onsets"] == "fixed"] if "onsets" in frame.columns else frame


def table_iv_means(summary: pd.DataFrame, snr_db: int, *, metric: str = "micro_ap") -> pd.Series:
    """Fold-mean ``metric`` per model at ``snr_db`` from a Table IV summary (one 2APAE variant;
    the paper's recipe only)."""
    rows = _paper_recipe(summary)
    rows = rows[(rows["snr_db"] == snr_db) & (rows["metric"] == metric)]
    return rows.groupby("model")["mean"].first()


def ablation_means(
    summary: pd.DataFrame, snr_db: int, *, decoder: str = "relu", metric: str = "micro_ap"
) -> pd.Series:
    """Fold-mean ``metric`` of 2APAE per α (``decoder`` variant) at ``snr_db``, indexed by α
    (the paper's recipe only)."""
    summary = _paper_recipe(summary)
    rows = summary[
        (summary["model"] == MODEL_WITH_DECODER)
        & (summary["snr_db"] == snr_db)
        & (summary["decoder_activation"] == decoder)
        & (summary["metric"] == metric)
    ]
    return rows.set_index(rows["alpha"].astype(float))["mean"]


def learning_statement(table: pd.DataFrame) -> str:
    """One sentence from :func:`learning_table`: did every run reach the learning bar?"""
    if table.empty:
        return "no run to judge"
    low, high = table["times_chance"].min(), table["times_chance"].max()
    if bool(table["learned"].all()):
        return (
            f"every one of the {len(table)} runs reached at least {LEARNING_FACTOR:g}× its "
            f"chance level ({low:.1f}× to {high:.1f}×)"
        )
    missed = table[~table["learned"]]
    names = ", ".join(
        f"{r.model} at {r.snr_db} dB ({r.times_chance:.1f}×)" for r in missed.itertuples()
    )
    return (
        f"{len(missed)} of the {len(table)} runs stayed below {LEARNING_FACTOR:g}× chance: "
        f"{names}; their numbers say little"
    )


def pair_statement(verdicts: pd.DataFrame) -> str:
    """One sentence from :func:`compare_pairs`: how many of the claimed orderings hold."""
    if verdicts.empty:
        return "no ordering could be checked"
    counts = verdicts["verdict"].value_counts()
    parts = [
        f"{int(counts.get(v, 0))} {label}"
        for v, label in (
            ("agrees", "agree with the paper beyond the spread"),
            ("within spread", "are within the spread (unresolved)"),
            ("reversed", "are reversed beyond the spread"),
        )
        if counts.get(v, 0)
    ]
    return f"of {len(verdicts)} orderings the paper claims, " + ", ".join(parts)


def paper_orderings(
    summary: pd.DataFrame,
    paper: pd.DataFrame,
    *,
    table: str,
    snrs: Sequence[int],
    spread: float,
    alpha: float | None = None,
    decoder: str = "relu",
    metric: str = "micro_ap",
) -> pd.DataFrame:
    """The paper's orderings of one table checked against ours at every SNR (chapters 4 and 5).

    Args:
        summary: our fold means (:func:`paperlib.experiment.tables.summarise_over_folds`);
            for Table IV only the Table IV variant of 2APAE
            (:func:`~paperlib.experiment.tables.select_table_iv`).
        paper: :func:`paperlib.experiment.tables.paper_results`.
        table: ``IV`` (the models, pairs :data:`PAPER_ORDER`) or ``V`` (2APAE's α values with
            ``decoder``: ``alpha``, the paper's choice, against every other α we have).
        snrs: the SNRs to check, in the order of the rows.
        spread: :func:`compare_pairs`'s spread (from :func:`seed_spread`).
        alpha: table V only: the α claimed best (the profile's ``train.alpha``).
        metric: the metric compared.

    Returns:
        :func:`compare_pairs`'s columns indexed by ``(snr_db, better, worse)``.

    Raises:
        ValueError: a table other than IV and V, or table V without ``alpha``.
    """
    if table not in ("IV", "V"):
        raise ValueError(f"table must be 'IV' or 'V', got {table!r}")
    if table == "V" and alpha is None:
        raise ValueError("table V needs alpha: the α the paper found best (train.alpha)")
    theirs_all = paper[(paper["table"] == table) & (paper["metric"] == metric)]
    item = "model" if table == "IV" else "alpha"
    rows = []
    for snr in snrs:
        theirs = theirs_all[theirs_all["snr_db"] == snr].set_index(item)["value"]
        if table == "IV":
            ours = table_iv_means(summary, snr, metric=metric)
            pairs: list[tuple] = list(PAPER_ORDER)
        else:
            ours = ablation_means(summary, snr, decoder=decoder, metric=metric)
            pairs = [(alpha, a) for a in ours.index if a != alpha]
        rows.append(compare_pairs(ours, pairs, spread, paper=theirs).assign(snr_db=snr))
    return _indexed(rows)


def decoder_orderings(
    summary: pd.DataFrame, *, snrs: Sequence[int], alpha: float, spread: float
) -> pd.DataFrame:
    """2APAE's linear last decoder layer against the ReLU one at ``alpha``, per SNR (Table V).

    Returns:
        :func:`compare_pairs`'s columns (no paper column: the paper reports the linear decoder
        in its text only) indexed by ``(snr_db, better, worse)``; SNRs lacking either variant
        are left out.
    """
    rows = []
    for snr in snrs:
        relu = ablation_means(summary, snr)
        linear = ablation_means(summary, snr, decoder="linear")
        if alpha in linear.index and alpha in relu.index:
            both = pd.Series({"linear decoder": linear[alpha], "ReLU decoder": relu[alpha]})
            pairs = [("linear decoder", "ReLU decoder")]
            rows.append(compare_pairs(both, pairs, spread).assign(snr_db=snr))
    return _indexed(rows)


def _indexed(rows: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [r for r in rows if not r.empty]
    if not frames:
        empty = pd.DataFrame(columns=["snr_db", "better", "worse", "ours", "paper", "verdict"])
        return empty.set_index(["snr_db", "better", "worse"])
    return pd.concat(frames, ignore_index=True).set_index(["snr_db", "better", "worse"])
