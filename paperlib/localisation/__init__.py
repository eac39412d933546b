"""How well each model localises events in time and in time-frequency (chapter 08).

The paper's claim is interpretability; this package measures it against the truth the mixing
recipe knows (every event's onset, offset and class, and the separate event and background
tracks):

- :mod:`.frame_scores`: frame-level scores (N, K, T) and class T-F maps from every model family;
- :mod:`.attribution`: sign-aware 2APAE frame scores (integrated gradients, occlusion of the
  step-1 output);
- :mod:`.events`: the true events, frame edges and frame labels (frames map to seconds only
  through :func:`paperlib.data.features.frame_centres_s`);
- :mod:`.temporal`: frame AP/AUROC, segment-based F1, collar-based event F1 and PSDS1
  (``sed_scores_eval``, through :mod:`.sse`), gated by true or predicted clip tags;
- :mod:`.prior`: the position prior, a localiser that only knows the three event slots, and
  the tags spread uniformly over time (the chance row);
- :mod:`.tf`: Kong's ideal binary masks and how well T-F maps predict them;
- :mod:`.run`: one run localised on its held-out fold, cached as ``localisation.json``;
- :mod:`.table`: tidy tables over the grid and the comparison with the prior::

    from paperlib.localisation import localisation_table, summarise_localisation
    tables = localisation_table(profile, workspace)          # every completed grid run
    summary = summarise_localisation(tables.temporal)
"""

from paperlib.localisation.attribution import integrated_gradients, median_baseline, occlusion
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.events import Event, clip_events, frame_boundaries_s, frame_labels
from paperlib.localisation.frame_scores import FAMILY_MAPS, SCORERS, model_maps, run_model
from paperlib.localisation.prior import (
    coverage_prior,
    position_prior,
    slot_frames,
    uniform_in_time,
)
from paperlib.localisation.run import (
    GATINGS,
    LOCALISATION_FILE,
    PRIOR,
    UNIFORM,
    ClipExample,
    clip_examples,
    localise_run,
)
from paperlib.localisation.table import (
    HEADLINE_METRICS,
    METRIC_LABELS,
    LocalisationTables,
    beating_models,
    compare_with_prior,
    grid_runs,
    inverted_scorers,
    localisation_table,
    metric_table,
    prior_statement,
    prior_wins,
    read_localisation,
    summarise_localisation,
)
from paperlib.localisation.temporal import (
    TEMPORAL_METRICS,
    TemporalSettings,
    gate,
    predicted_tags,
    tag_threshold,
    temporal_metrics,
    within_clip_auroc,
)
from paperlib.localisation.tf import TF_METRICS, best_iou, ideal_mask, tf_metrics

__all__ = [
    "FAMILY_MAPS",
    "GATINGS",
    "HEADLINE_METRICS",
    "LOCALISATION_FILE",
    "METRIC_LABELS",
    "PRIOR",
    "SCORERS",
    "TEMPORAL_METRICS",
    "TF_METRICS",
    "UNIFORM",
    "ClipExample",
    "Event",
    "LocalisationError",
    "LocalisationTables",
    "TemporalSettings",
    "beating_models",
    "best_iou",
    "clip_events",
    "clip_examples",
    "compare_with_prior",
    "coverage_prior",
    "frame_boundaries_s",
    "frame_labels",
    "gate",
    "grid_runs",
    "ideal_mask",
    "integrated_gradients",
    "inverted_scorers",
    "localisation_table",
    "localise_run",
    "median_baseline",
    "metric_table",
    "model_maps",
    "occlusion",
    "position_prior",
    "predicted_tags",
    "prior_statement",
    "prior_wins",
    "read_localisation",
    "run_model",
    "slot_frames",
    "summarise_localisation",
    "tag_threshold",
    "temporal_metrics",
    "tf_metrics",
    "uniform_in_time",
    "within_clip_auroc",
]
