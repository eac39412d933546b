"""The robustness study: does a tagging result survive when the events move?

The paper's mixing recipe (Kong et al.) puts every event at one of three fixed onsets. A model
whose weights are tied to absolute frames (2APAE's ``Linear(T, T)`` step 2) can learn those
slots; global pooling cannot. The study trains ``grid.study_models`` in the paper's recipe
(``fixed``) and in recipes whose events sit anywhere (``data.study_onsets``, e.g. ``random``)
at ``data.study_snrs`` (:func:`paperlib.experiment.cells.study_cells`), and this module turns
the grid's tidy results into the study's tables and its verdict:

- :func:`study_table`: best validation micro-AP per model × recipe × SNR (fold mean of the
  profile's seed) beside each cell's chance level;
- :func:`lead_table`: the reference model's lead over the best baseline in each recipe and
  SNR, judged against the spread between runs (:func:`paperlib.experiment.evidence.seed_spread`);
- :func:`lead_statement`: the sentence the book prints, generated from those numbers.
"""

from __future__ import annotations

import pandas as pd

from paperlib.config import Profile
from paperlib.experiment.evidence import first_seed
from paperlib.experiment.tables import BASELINES

__all__ = [
    "REFERENCE_MODEL",
    "lead_statement",
    "lead_table",
    "shift_statement",
    "shift_summary",
    "study_table",
]

REFERENCE_MODEL = "2APAE"
"""The model whose lead over the baselines the study tests (the paper's claim)."""


def study_table(results: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Best validation micro-AP of the study's cells, one row per model × recipe × SNR.

    Args:
        results: the grid's tidy results (``run_grid``'s table or ``read_results``), with an
            ``onsets`` column.
        profile: the profile (its ``grid.study_models``, ``data.study_snrs``, α and decoder).

    Returns:
        Columns ``model, onsets, snr_db, micro_ap`` (mean over folds of the profile's seed),
        ``chance`` (the mean audio-blind micro-AP of those runs), ``times_chance``, ``n_folds``;
        models in ``grid.study_models`` order, recipes ``fixed`` first. Decoder models keep
        only the profile's α and decoder (not the ablation's variants).
    """
    snrs = profile.grid.snrs if profile.data.study_snrs is None else profile.data.study_snrs
    rows = first_seed(results, int(profile.train.seed))
    rows = rows[
        (rows["metric"] == "micro_ap")
        & rows["model"].isin(profile.grid.study_models)
        & rows["snr_db"].isin(snrs)
        & rows["onsets"].isin(("fixed", *profile.data.study_onsets))
    ]
    is_variant = rows["alpha"].notna()
    main_variant = (
        rows["alpha"].astype(float).round(12) == round(float(profile.train.alpha), 12)
    ) & (rows["decoder_activation"] == profile.model.decoder_activation)
    rows = rows[~is_variant | main_variant]
    table = (
        rows.groupby(["model", "onsets", "snr_db"], sort=False)
        .agg(
            micro_ap=("value", "mean"),
            chance=("chance_micro_ap", "mean"),
            n_folds=("fold", "nunique"),
        )
        .reset_index()
    )
    table["times_chance"] = table["micro_ap"] / table["chance"]
    order = {m: i for i, m in enumerate(profile.grid.study_models)}
    recipes = {o: i for i, o in enumerate(("fixed", *profile.data.study_onsets))}
    table = table.sort_values(
        ["onsets", "snr_db", "model"],
        key=lambda c: (
            c.map(recipes) if c.name == "onsets" else (c.map(order) if c.name == "model" else c)
        ),
    )
    return table[
        ["model", "onsets", "snr_db", "micro_ap", "chance", "times_chance", "n_folds"]
    ].reset_index(drop=True)


def lead_table(
    table: pd.DataFrame, spread: float, *, reference: str = REFERENCE_MODEL
) -> pd.DataFrame:
    """The reference model's lead over the best baseline, per recipe and SNR.

    Args:
        table: :func:`study_table`.
        spread: the largest difference two runs of one cell showed (``seed_spread``'s max);
            a lead within it is not a lead.
        reference: the model tested (default 2APAE).

    Returns:
        Columns ``onsets, snr_db, reference, reference_ap, best_baseline, baseline_ap, lead``
        (reference − baseline) and ``verdict``: ``leads`` (lead > spread), ``behind``
        (lead < −spread) or ``within spread``. Recipes and SNRs without the reference or
        without a baseline are left out.
    """
    rows = []
    for (onsets, snr), group in table.groupby(["onsets", "snr_db"], sort=False):
        ours = group[group["model"] == reference]
        baselines = group[group["model"].isin(BASELINES)]
        if ours.empty or baselines.empty:
            continue
        best = baselines.loc[baselines["micro_ap"].idxmax()]
        value = float(ours["micro_ap"].iloc[0])
        lead = value - float(best["micro_ap"])
        verdict = "leads" if lead > spread else ("behind" if lead < -spread else "within spread")
        rows.append(
            {
                "onsets": onsets,
                "snr_db": int(snr),
                "reference": reference,
                "reference_ap": value,
                "best_baseline": str(best["model"]),
                "baseline_ap": float(best["micro_ap"]),
                "lead": lead,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "onsets",
            "snr_db",
            "reference",
            "reference_ap",
            "best_baseline",
            "baseline_ap",
            "lead",
            "verdict",
        ],
    )


def lead_statement(leads: pd.DataFrame, spread: float) -> str:
    """One paragraph: where the reference leads with fixed slots, and whether it still does
    when the events move (generated from :func:`lead_table`)."""
    if leads.empty:
        return "The study has no cell with both the reference model and a baseline: nothing to compare."
    reference = leads["reference"].iloc[0]

    def describe(rows: pd.DataFrame) -> str:
        parts = []
        for row in rows.itertuples(index=False):
            sign = "+" if row.lead >= 0 else "−"
            parts.append(
                f"{row.snr_db} dB: {row.reference_ap:.3f} vs {row.best_baseline} {row.baseline_ap:.3f} "
                f"({sign}{abs(row.lead):.3f}, {row.verdict})"
            )
        return "; ".join(parts)

    fixed = leads[leads["onsets"] == "fixed"]
    moved = leads[leads["onsets"] != "fixed"]
    text = [f"Spread between two runs of one cell: {spread:.3f}."]
    if len(fixed):
        text.append(
            f"With the paper's fixed slots, {reference} against the best baseline — {describe(fixed)}."
        )
    for onsets, rows in moved.groupby("onsets", sort=False):
        text.append(f"With {onsets} onsets — {describe(rows)}.")
    led_fixed = set(fixed.loc[fixed["verdict"] == "leads", "snr_db"])
    if not led_fixed:
        text.append(
            f"{reference} leads beyond the spread at no SNR even with fixed slots, so there is no lead to test."
        )
    else:
        kept = moved[moved["snr_db"].isin(led_fixed)]
        survived = set(kept.loc[kept["verdict"] == "leads", "snr_db"])
        lost = sorted(led_fixed - survived)
        if not lost:
            text.append(
                f"**The lead survives**: at every SNR where {reference} leads with fixed slots "
                f"({', '.join(f'{s} dB' for s in sorted(led_fixed))}) it still leads beyond the spread when the events move."
            )
        else:
            text.append(
                f"**The lead does not survive** at {', '.join(f'{s} dB' for s in lost)}: there "
                f"{reference} leads with fixed slots but not when the events move, so that part of its "
                "gain comes from where the recipe puts events, not from the sounds."
            )
    return " ".join(text)


def shift_summary(shifts: pd.DataFrame, spread: float) -> pd.DataFrame:
    """Per run of a shift test: micro-AP unshifted, at its worst shift, and the verdict.

    Args:
        shifts: :func:`paperlib.robustness.shift_test_runs` rows (``run_id, model, snr_db,
            seed, shift_s, micro_ap, chance``).
        spread: the spread between runs of one cell; a drop within it is no drop.

    Returns:
        One row per run: ``model, snr_db, seed, unshifted, worst, worst_shift_s, drop``
        (unshifted − worst), ``worst_times_chance`` and ``verdict`` (``shift-invariant`` when
        the drop is within the spread, else ``depends on position``).
    """
    rows = []
    for run_id, run in shifts.groupby("run_id", sort=False):
        base = run.loc[run["shift_s"] == 0, "micro_ap"]
        if base.empty:
            continue
        worst = run.loc[run["micro_ap"].idxmin()]
        drop = float(base.iloc[0]) - float(worst["micro_ap"])
        rows.append(
            {
                "run_id": run_id,
                "model": worst["model"],
                "snr_db": int(worst["snr_db"]),
                "seed": int(worst["seed"]),
                "unshifted": float(base.iloc[0]),
                "worst": float(worst["micro_ap"]),
                "worst_shift_s": float(worst["shift_s"]),
                "drop": drop,
                "worst_times_chance": float(worst["micro_ap"]) / float(worst["chance"]),
                "verdict": "depends on position" if drop > spread else "shift-invariant",
            }
        )
    return pd.DataFrame(rows)


def shift_statement(summary: pd.DataFrame, spread: float) -> str:
    """The sentence under the shift figure, from :func:`shift_summary`."""
    if summary.empty:
        return "No run was shift-tested."
    moved = summary[summary["verdict"] == "depends on position"]
    kept = sorted(set(summary["model"]) - set(moved["model"]))
    text = [f"A drop counts when it exceeds the spread between runs ({spread:.3f})."]
    for model, rows in moved.groupby("model", sort=False):
        worst = rows.loc[rows["drop"].idxmax()]
        text.append(
            f"**{model}** depends on where the events sit: at {int(worst['snr_db'])} dB its "
            f"micro-AP falls from {worst['unshifted']:.3f} to {worst['worst']:.3f} "
            f"({worst['worst_times_chance']:.1f}× chance) for a {worst['worst_shift_s']:g}-s shift."
        )
    if kept:
        text.append(f"Unchanged within the spread at every shift: {', '.join(kept)}.")
    return " ".join(text)
