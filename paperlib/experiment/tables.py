"""Tables IV and V: the paper's numbers (``paperlib/reference/paper_results.csv``) beside ours.

Both sides are tidy tables with columns ``model, alpha, snr_db, metric, value`` (the paper's
also ``table``; ours ``fold, decoder_activation, run_id``). The helpers here average over folds,
lay the two side by side and recompute the relative gains the paper quotes.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from paperlib.data.classes import CLASSES
from paperlib.run.key import MODEL_WITH_DECODER

__all__ = [
    "BASELINES",
    "NO_ALPHA",
    "paper_results",
    "per_class_matrix",
    "relative_gains",
    "select_table_iv",
    "side_by_side",
    "summarise_over_folds",
]

BASELINES: tuple[str, ...] = ("GMP", "GAP", "GWRP", "AtrousAP")
NO_ALPHA = "–"
"""The α shown for a baseline in :func:`side_by_side` (the loss weight exists for 2APAE only)."""


def paper_results() -> pd.DataFrame:
    """The paper's Tables IV and V as a tidy table.

    Returns:
        Columns ``table`` (``IV`` or ``V``), ``model``, ``alpha`` (NaN for the baselines),
        ``snr_db``, ``metric`` (``micro_ap``, ``macro_ap``, ``roc_auc``), ``value``
        (mean over the paper's 4 folds).
    """
    with (resources.files("paperlib") / "reference" / "paper_results.csv").open() as handle:
        table = pd.read_csv(handle)
    return table.astype({"snr_db": int, "alpha": float, "value": float})


def summarise_over_folds(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and number of folds per model × α × decoder × recipe × SNR × metric.

    Args:
        results: our tidy results (``run_grid``'s table).

    Returns:
        Columns ``model, alpha, decoder_activation, onsets, snr_db, metric, mean, std,
        n_folds`` (``onsets`` only when ``results`` has it); ``std`` is the sample std (NaN
        with a single fold).
    """
    recipe = ["onsets"] if "onsets" in results.columns else []
    keys = ["model", "alpha", "decoder_activation", *recipe, "snr_db", "metric"]
    grouped = results.groupby(keys, dropna=False)["value"]
    out = grouped.agg(mean="mean", std="std", n_folds="count").reset_index()
    return out


def _fmt(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def side_by_side(
    ours: pd.DataFrame, paper: pd.DataFrame, *, table: str = "IV", decoder: str = "relu"
) -> pd.DataFrame:
    """Our fold means (± std) next to the paper's values, one row per model (× α) and SNR.

    Args:
        ours: ``summarise_over_folds`` output.
        paper: ``paper_results()``.
        table: ``IV`` (models, the profile's α for 2APAE) or ``V`` (2APAE α values).
        decoder: decoder activation of our 2APAE rows to show (``relu``).

    Returns:
        A display table indexed by (SNR, model, α) with, per metric, ``ours`` (``mean ± std``
        text in one cell), ``ours_mean`` and ``paper``; α is :data:`NO_ALPHA` for the baselines
        (they have no reconstruction loss), not NaN.
    """
    ref = paper[paper["table"] == table]
    mine = ours[(ours["decoder_activation"] == decoder) | (ours["model"] != MODEL_WITH_DECODER)]
    rows = []
    for (model, alpha, snr), group in ref.groupby(["model", "alpha", "snr_db"], dropna=False):
        row: dict[str, object] = {"model": model, "alpha": alpha, "snr_db": snr}
        match = mine[(mine["model"] == model) & (mine["snr_db"] == snr)]
        if model == MODEL_WITH_DECODER:
            match = match[np.isclose(match["alpha"].astype(float), float(alpha))]
        for metric in ("micro_ap", "macro_ap", "roc_auc"):
            paper_value = group.loc[group["metric"] == metric, "value"]
            hit = match[match["metric"] == metric]
            mean = float(hit["mean"].iloc[0]) if len(hit) else float("nan")
            std = float(hit["std"].iloc[0]) if len(hit) else float("nan")
            row[f"{metric} ours"] = _fmt(mean, std)
            row[f"{metric} ours_mean"] = mean
            row[f"{metric} paper"] = float(paper_value.iloc[0]) if len(paper_value) else np.nan
            row["n_folds"] = int(hit["n_folds"].iloc[0]) if len(hit) else 0
        row["n_folds"] = row.pop("n_folds")  # last column
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate((*BASELINES, MODEL_WITH_DECODER))}
    out["_o"] = out["model"].map(order)
    out = out.sort_values(["snr_db", "_o", "alpha"], ascending=[False, True, True])
    out["alpha"] = [NO_ALPHA if np.isnan(a) else float(a) for a in out["alpha"].astype(float)]
    return out.drop(columns="_o").set_index(["snr_db", "model", "alpha"])


def relative_gains(
    values: pd.DataFrame, *, metric: str = "micro_ap", value_column: str = "value"
) -> pd.DataFrame:
    """Relative gain of 2APAE over the best baseline per SNR: ``(2APAE - best) / best``.

    Args:
        values: rows with ``model, snr_db, metric`` and ``value_column`` (the paper's table
            filtered to Table IV, or our fold means with ``value_column="mean"`` and 2APAE
            rows of the Table IV variant only).
        metric: which metric (the paper quotes micro-AP).

    Returns:
        Columns ``snr_db, best_baseline, best_baseline_value, 2APAE, gain_percent``.
    """
    sel = values[values["metric"] == metric]
    rows = []
    for snr, group in sel.groupby("snr_db"):
        base = group[group["model"].isin(BASELINES)]
        ours = group[group["model"] == MODEL_WITH_DECODER]
        if base.empty or ours.empty:
            continue
        best = base.loc[base[value_column].idxmax()]
        value = float(ours[value_column].iloc[0])
        rows.append(
            {
                "snr_db": int(snr),
                "best_baseline": best["model"],
                "best_baseline_value": float(best[value_column]),
                "2APAE": value,
                "gain_percent": 100.0
                * (value - float(best[value_column]))
                / float(best[value_column]),
            }
        )
    return pd.DataFrame(rows).sort_values("snr_db", ascending=False).reset_index(drop=True)


def per_class_matrix(per_class: pd.DataFrame, *, snr_db: int) -> pd.DataFrame:
    """Per-class AP (mean over folds) as a classes × models matrix for one SNR.

    Uses the Table IV variant of each model (2APAE rows with the most common α/decoder are
    the caller's to filter beforehand); NaN where a class had no positive clip.
    """
    sel = per_class[per_class["snr_db"] == snr_db]
    matrix = sel.groupby(["class", "model"])["ap"].mean().unstack("model")
    order = [m for m in (*BASELINES, MODEL_WITH_DECODER) if m in matrix.columns]
    rows = [c for c in CLASSES if c in matrix.index] + [c for c in matrix.index if c not in CLASSES]
    return matrix.loc[rows, order]


def select_table_iv(frame: pd.DataFrame, *, alpha: float, decoder: str = "relu") -> pd.DataFrame:
    """Rows of the Table IV variant: every baseline, and 2APAE with ``alpha`` and ``decoder``,
    in the paper's recipe (``onsets`` fixed; tables without that column are of that recipe).

    Works on any of our tidy tables (results, per-class AP, fold summaries). Models the paper
    does not have (``2APAE-local``) are left out.
    """
    is_2apae = frame["model"] == MODEL_WITH_DECODER
    keep = ~is_2apae | (
        np.isclose(frame["alpha"].astype(float), alpha) & (frame["decoder_activation"] == decoder)
    )
    keep &= frame["model"].isin((*BASELINES, MODEL_WITH_DECODER))
    if "onsets" in frame.columns:
        keep &= frame["onsets"] == "fixed"
    return frame[keep]
