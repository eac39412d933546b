"""Localising one trained run on its held-out fold, cached in the run directory.

:func:`localise_run` loads a finished run's best checkpoint, runs it on the held-out fold it was
evaluated on (standardised and pooled exactly as in training), and scores

- every frame scorer of the model (:mod:`.frame_scores`), the position prior and the chance
  row :data:`UNIFORM` (the tags spread uniformly over time, :mod:`.prior`) with every temporal
  metric (:mod:`.temporal`), gated by the true and by the predicted tags;
- the class T-F maps of the true classes against Kong's ideal masks (:mod:`.tf`), beside two
  references: the position prior's slots and the true event frames (an oracle that knows when
  each event is but not which mel bins it fills), both spread over every mel bin.

The result goes to ``<run dir>/localisation.json``; its ``cache_key`` hashes the run id, the
checkpoint's SHA-256, the metric settings and :data:`LOCALISATION_VERSION`, so a later call
returns the file unless one of those changed. :func:`clip_examples` gathers the arrays of a few
clips for the book's figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperlib import paths
from paperlib.config import config_hash
from paperlib.data.features import frame_centres_s
from paperlib.data.plan import read_plan
from paperlib.fingerprint import file_sha256
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.events import Event, check_frames, clip_events, frame_labels
from paperlib.localisation.frame_scores import FoldOutputs, run_model
from paperlib.localisation.prior import (
    coverage_prior,
    position_prior,
    slot_frames,
    uniform_in_time,
)
from paperlib.localisation.temporal import (
    TemporalSettings,
    gate,
    predicted_tags,
    tag_threshold,
    temporal_metrics,
)
from paperlib.localisation.tf import class_mask, clip_tracks, ideal_mask, tf_metrics
from paperlib.models import has_decoder
from paperlib.run.features import Split, feature_path_for_snr, features_sha256, load_split
from paperlib.run.provenance import atomic_write_json
from paperlib.run.recipe import resolve_device
from paperlib.run.result import RunResult, load_run

__all__ = [
    "GATINGS",
    "LOCALISATION_FILE",
    "LOCALISATION_VERSION",
    "PRIOR",
    "TF_EVENT_FRAMES",
    "TF_MAP",
    "UNIFORM",
    "ClipExample",
    "FoldData",
    "clip_examples",
    "fold_data",
    "localise_run",
    "run_recipe",
]

LOCALISATION_FILE = "localisation.json"
LOCALISATION_VERSION = 3
"""Bumped whenever the numbers :func:`localise_run` writes would change (part of the cache key)."""

PRIOR = "position prior"
UNIFORM = "tags, uniform in time"
"""The chance row: each clip's tag score on every frame (frame AP = share of active frames)."""
TF_MAP = "T-F map"
TF_EVENT_FRAMES = "event frames (oracle)"
GATINGS: tuple[str, ...] = ("true tags", "predicted tags")


@dataclass(frozen=True)
class FoldData:
    """A run's held-out fold, as the model sees it, with its true events.

    Attributes:
        run: the finished run.
        split: the standardised, pooled split (``x_val`` (N, T, F), ``y_val`` (N, K)).
        events: N lists of true events (from the mixture plan).
        mixtures_dir: folder of the SNR's rendered mixtures and tracks.
        onsets: the onset recipe of the run's data (``fixed`` or ``random``).
        prior: (T,) frame weights of the position prior: the fixed recipe's slots (0/1), or
            for ``random`` the training folds' event coverage (:func:`coverage_prior`).
    """

    run: RunResult
    split: Split
    events: list[list[Event]]
    mixtures_dir: Path
    onsets: str = "fixed"
    prior: np.ndarray | None = None

    @property
    def prior_weights(self) -> np.ndarray:
        """(T,) float32: :attr:`prior`, or the fixed slots when none was given."""
        n_t = self.split.x_val.shape[1]
        w = slot_frames(n_t, self.time_pool) if self.prior is None else self.prior
        return np.asarray(w, dtype=np.float32)

    @property
    def slots(self) -> np.ndarray:
        """(T,) bool: the fixed recipe's slots (none for a recipe without slots)."""
        n_t = self.split.x_val.shape[1]
        if self.onsets != "fixed":
            return np.zeros(n_t, dtype=bool)
        return slot_frames(n_t, self.time_pool)

    @property
    def time_pool(self) -> int:
        return int(self.run.key.time_pool)

    @property
    def mel_pool(self) -> int:
        return int(self.run.key.mel_pool)


def run_recipe(run: RunResult, workspace: Path, onsets: str | None = None) -> tuple[str, Path]:
    """``(onset recipe, feature file)`` of a run in ``workspace``: the recipe whose feature
    file at the run's SNR has the bytes the run was trained on (``onsets``: only that one).

    Raises:
        LocalisationError: no recipe's feature file matches the run key's SHA-256.
        MissingFeaturesError: no recipe has a feature file at the run's SNR.
    """
    key = run.key
    candidates = [paths.check_onsets(onsets)] if onsets else list(paths.ONSET_RECIPES)
    present = [
        (r, p) for r in candidates if (p := paths.feature_file(workspace, key.snr_db, r)).is_file()
    ]
    if not present:
        feature_path_for_snr(workspace, key.snr_db, candidates[0])  # raises, listing the files
    found = []
    for recipe, path in present:
        digest = features_sha256(path)  # a complete feature file, or a clear error
        if digest == key.features_sha256:
            return recipe, path
        found.append(f"{path} holds {digest[:12]}")
    raise LocalisationError(
        f"run {run.run_id} was trained on features {key.features_sha256[:12]}, but "
        f"{'; '.join(found)}: the data changed since; prepare the data of the run's profile "
        "again or retrain"
    )


def fold_data(run: RunResult | Path, workspace: Path, onsets: str | None = None) -> FoldData:
    """Load the held-out fold of a finished run from ``workspace``.

    ``onsets`` names the run's onset recipe; by default it is the recipe whose feature file
    the run was trained on (:func:`run_recipe`). The plan, mixtures and the position prior
    are that recipe's.

    Raises:
        FileNotFoundError: the run is not complete.
        LocalisationError: the workspace's feature file is not the one the run was trained on
            (its SHA-256 differs from the run key's).
        MissingFeaturesError, MissingSourceError: the feature file or the plan is missing.
    """
    run = run if isinstance(run, RunResult) else load_run(Path(run))
    key = run.key
    workspace = Path(workspace)
    recipe, feature_path = run_recipe(run, workspace, onsets)
    split = load_split(feature_path, key.fold, time_pool=key.time_pool, mel_pool=key.mel_pool)
    n_t = split.x_val.shape[1]
    check_frames(n_t, key.time_pool)
    plan = read_plan(paths.plan_file(workspace, recipe))
    events = clip_events(plan, list(split.val_names))
    training = [k for k in sorted(set(plan["fold"].tolist())) if k != key.fold]
    prior = (
        slot_frames(n_t, key.time_pool).astype(np.float32)
        if recipe == "fixed"
        else coverage_prior(plan, training, n_t, key.time_pool)
    )
    mixtures = paths.mixtures_dir(workspace, key.snr_db, recipe)
    return FoldData(run, split, events, mixtures, onsets=recipe, prior=prior)


def _class_masks(data: FoldData, pairs: np.ndarray) -> np.ndarray:
    """Kong's masks of the (clip, class) pairs: (P, T, F) bool (each clip's tracks read once)."""
    n_t = data.split.x_val.shape[1]
    n_f = data.split.x_val.shape[2]
    masks = np.zeros((len(pairs), n_t, n_f), dtype=bool)
    clip_mask: dict[int, np.ndarray] = {}
    for p, (clip, cls) in enumerate(pairs):
        if clip not in clip_mask:
            name = str(data.split.val_names[clip])
            clip_mask[clip] = ideal_mask(
                *clip_tracks(data.mixtures_dir, name),
                time_pool=data.time_pool,
                mel_pool=data.mel_pool,
            )
        masks[p] = class_mask(
            clip_mask[clip], data.events[clip], int(cls), time_pool=data.time_pool
        )
    return masks


def _rows(scorer: str, primary: bool, values: dict[str, float], **extra: str) -> list[dict]:
    return [
        {"scorer": scorer, "primary": primary, **extra, "metric": metric, "value": float(value)}
        for metric, value in values.items()
    ]


def _temporal_rows(
    data: FoldData, outputs: FoldOutputs, threshold: float, settings: TemporalSettings
) -> list[dict]:
    truth = data.split.y_val
    tags = predicted_tags(outputs.clip_probs, threshold)
    names = [str(n) for n in data.split.val_names]
    n_frames = next(iter(outputs.frame_scores.values())).shape[-1]

    def score(frames: np.ndarray) -> dict[str, float]:
        return temporal_metrics(
            frames, data.events, names, time_pool=data.time_pool, settings=settings
        )

    rows: list[dict] = []
    for i, (scorer, frames) in enumerate(outputs.frame_scores.items()):
        rows += _rows(scorer, i == 0, score(gate(frames, truth)), gating=GATINGS[0])
        rows += _rows(scorer, i == 0, score(gate(frames, tags)), gating=GATINGS[1])
    weights = data.prior_weights
    prior_true = position_prior(truth, n_frames, data.time_pool, weights)
    prior_predicted = gate(
        position_prior(outputs.clip_probs, n_frames, data.time_pool, weights), tags
    )
    rows += _rows(PRIOR, False, score(prior_true), gating=GATINGS[0])
    rows += _rows(PRIOR, False, score(prior_predicted), gating=GATINGS[1])
    uniform_true = uniform_in_time(truth, n_frames)
    uniform_predicted = gate(uniform_in_time(outputs.clip_probs, n_frames), tags)
    rows += _rows(UNIFORM, False, score(uniform_true), gating=GATINGS[0])
    rows += _rows(UNIFORM, False, score(uniform_predicted), gating=GATINGS[1])
    return rows


def _tf_rows(data: FoldData, outputs: FoldOutputs) -> list[dict]:
    pairs = outputs.tf_pairs
    masks = _class_masks(data, pairs)
    n_t, n_f = masks.shape[1:]
    slots = data.prior_weights
    labels = frame_labels(data.events, n_t, data.time_pool)
    event_frames = labels[pairs[:, 0], pairs[:, 1]].astype(np.float32)  # (P, T)
    ones = np.ones((1, 1, n_f), np.float32)
    return (
        _rows(TF_MAP, True, tf_metrics(outputs.tf_maps, masks))
        + _rows(PRIOR, False, tf_metrics(np.broadcast_to(slots[None, :, None], masks.shape), masks))
        + _rows(TF_EVENT_FRAMES, False, tf_metrics(event_frames[:, :, None] * ones, masks))
    )


def _cache_key(run: RunResult, settings: TemporalSettings) -> str:
    return config_hash(
        {
            "run_id": run.run_id,
            "checkpoint_sha256": file_sha256(run.checkpoint),
            "settings": settings.as_dict(),
            "version": LOCALISATION_VERSION,
        }
    )


def localise_run(
    run: RunResult | Path,
    workspace: Path,
    *,
    settings: TemporalSettings | None = None,
    batch_size: int = 16,
    device: str = "auto",
    refresh: bool = False,
) -> dict[str, Any]:
    """Localisation metrics of a finished run on its held-out fold (cached, see the module doc).

    Args:
        run: a :class:`~paperlib.run.RunResult` or a run directory.
        workspace: the workspace holding the run's data (plan, mixtures, features).
        settings: metric parameters (default :class:`~.temporal.TemporalSettings`).
        batch_size: clips per forward pass.
        device: where the model runs (``auto``: CUDA when available, else CPU; the metrics
            run on the CPU). Not part of the cache key, like the run's own device.
        refresh: recompute even when the cached file matches.

    Returns:
        The contents of ``localisation.json`` (undefined numbers are ``None``): identity (``run_id``, ``model``, ``snr_db``,
        ``fold``, ``alpha`` (NaN for the baselines), ``decoder_activation``, ``time_pool``,
        ``mel_pool``), ``n_clips``, ``n_tf_pairs``, ``tag_threshold`` (of the predicted tags),
        ``seconds``, ``temporal`` (rows ``scorer, primary, gating, metric, value``) and ``tf``
        (rows ``scorer, primary, metric, value``).

    Raises:
        FileNotFoundError: the run is not complete.
        LocalisationError, MissingSourceError, AudioFormatError: missing or mismatched data.
    """
    run = run if isinstance(run, RunResult) else load_run(Path(run))
    settings = settings or TemporalSettings()
    target = run.run_dir / LOCALISATION_FILE
    cache_key = _cache_key(run, settings)
    if target.is_file() and not refresh:
        cached = json.loads(target.read_text())
        if cached.get("cache_key") == cache_key:
            return cached
    started = time.perf_counter()
    from paperlib.models import load_model

    data = fold_data(run, workspace)
    model = load_model(run.checkpoint)
    outputs = run_model(
        model,
        data.split.x_val,
        tf_select=data.split.y_val > 0,
        batch_size=batch_size,
        device=resolve_device(device),
    )
    threshold = tag_threshold(outputs.clip_probs, data.split.y_val)
    key = run.key
    payload = {
        "cache_key": cache_key,
        "version": LOCALISATION_VERSION,
        "run_id": run.run_id,
        "model": key.model,
        "snr_db": key.snr_db,
        "fold": key.fold,
        "alpha": key.alpha if has_decoder(key.model) else float("nan"),
        "decoder_activation": key.decoder_activation,
        "onsets": key.onsets,
        "time_pool": data.time_pool,
        "mel_pool": data.mel_pool,
        "n_clips": len(data.events),
        "n_tf_pairs": len(outputs.tf_pairs),
        "tag_threshold": threshold,
        "settings": settings.as_dict(),
        "temporal": _temporal_rows(data, outputs, threshold, settings),
        "tf": _tf_rows(data, outputs),
    }
    payload["seconds"] = time.perf_counter() - started
    atomic_write_json(target, payload)
    return json.loads(target.read_text())  # as a cached call returns it (strict JSON: NaN -> null)


@dataclass(frozen=True)
class ClipExample:
    """What the book draws for one clip and one model (K classes, T frames, F mel bins).

    Attributes:
        model: model name; ``clip_name``: mixture name.
        time_s: (T,) frame centres in seconds.
        inputs: (T, F) standardised, pooled log-mel the model saw.
        clip_probs, weak_target: (K,) probabilities and true tags.
        events: the true events.
        frame_scores: scorer -> (K, T) (primary first).
        tf_maps: class index -> (T, F) T-F map, for each true class.
        masks: class index -> (T, F) Kong's mask of that class's events.
        slots: (T,) bool frames of the position prior's slots.
    """

    model: str
    clip_name: str
    time_s: np.ndarray
    inputs: np.ndarray
    clip_probs: np.ndarray
    weak_target: np.ndarray
    events: list[Event]
    frame_scores: dict[str, np.ndarray]
    tf_maps: dict[int, np.ndarray]
    masks: dict[int, np.ndarray]
    slots: np.ndarray


def clip_examples(
    run: RunResult | Path,
    workspace: Path,
    *,
    clip_names: Sequence[str] = (),
    count: int = 2,
    batch_size: int = 16,
    device: str = "auto",
) -> list[ClipExample]:
    """The arrays of a few held-out clips for figures: ``clip_names``, else the first ``count``
    (``device`` as in :func:`localise_run`).

    Raises:
        KeyError: a named clip is not in the run's held-out fold.
    """
    from paperlib.interpret import select_clips
    from paperlib.models import load_model

    run = run if isinstance(run, RunResult) else load_run(Path(run))
    data = fold_data(run, workspace)
    chosen = select_clips(data.split.val_names, list(clip_names), count)
    truth = data.split.y_val[chosen]
    outputs = run_model(
        load_model(run.checkpoint),
        data.split.x_val[chosen],
        tf_select=truth > 0,
        batch_size=batch_size,
        device=resolve_device(device),
    )
    pairs = outputs.tf_pairs.copy()
    pairs[:, 0] = chosen[pairs[:, 0]]
    masks = _class_masks(data, pairs)
    n_t = data.split.x_val.shape[1]
    examples = []
    for i, clip in enumerate(chosen):
        mine = np.flatnonzero(outputs.tf_pairs[:, 0] == i)
        examples.append(
            ClipExample(
                model=run.key.model,
                clip_name=str(data.split.val_names[clip]),
                time_s=frame_centres_s(n_t, data.time_pool),
                inputs=data.split.x_val[clip],
                clip_probs=outputs.clip_probs[i],
                weak_target=data.split.y_val[clip],
                events=data.events[clip],
                frame_scores={name: s[i] for name, s in outputs.frame_scores.items()},
                tf_maps={int(outputs.tf_pairs[p, 1]): outputs.tf_maps[p] for p in mine},
                masks={int(outputs.tf_pairs[p, 1]): masks[p] for p in mine},
                slots=data.slots,
            )
        )
    return examples
