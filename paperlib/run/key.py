"""Identity of a training run: what it depends on, its hash and its directory.

A run is one model trained on one SNR with one held-out fold. Its id,
``<model>-snr<S>-fold<k>-<hash>``, hashes everything the numbers depend on (model, SNR, fold,
model variant, training settings and the SHA-256 of the feature file's bytes) and nothing they
do not (device, thread count, data settings that leave the feature file unchanged), so the
grid and a chapter that ask for the same cell share one run directory, and features remade
from changed sources give a new run instead of the old run's numbers.

The feature file's hash comes from :func:`paperlib.run.features.features_sha256`
(:func:`paperlib.fingerprint.cached_sha256` of a checked file): computed from the bytes once (the data pipeline does it right after writing the file) and reused while the
file's size, modification time and inode are unchanged; any rewrite of the file rehashes it.
It is the same SHA-256 that ``sha256sum`` prints and that ``provenance.json`` records. (A hash
attribute stored inside the HDF5 file was considered and not used: it cannot be checked
without reading the whole file again, and a file edited in place would keep a stale one.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperlib import paths
from paperlib.config import Profile, config_hash, to_dict

__all__ = ["MODEL_WITH_DECODER", "RunKey", "run_key"]

MODEL_WITH_DECODER = "2APAE"
"""The only model with a reconstruction loss, α and decoder/attention variants."""


@dataclass(frozen=True)
class RunKey:
    """Everything that identifies one run.

    Attributes:
        model: model name (one of ``paperlib.models.MODEL_NAMES``).
        snr_db: SNR of the feature file.
        fold: held-out (validation) fold.
        alpha: reconstruction weight (0.0 for the baselines).
        width, decoder_activation, attention: model variant (defaults for the baselines).
        time_pool, mel_pool: input pooling (``model.time_pool``, ``model.mel_pool``).
        train: the training settings that affect the numbers.
        features_sha256: SHA-256 of the feature file's bytes (everything the data stages made
            it from: sources, plan, rendering, features).
        onsets: the mixing recipe's event placement (``data.onsets``: ``fixed``, the paper's
            three slots, or ``random``). Left out of the hash when ``fixed``, so the runs made
            before the setting existed keep their ids.
    """

    model: str
    snr_db: int
    fold: int
    alpha: float
    width: float
    decoder_activation: str
    attention: str
    time_pool: int
    mel_pool: int
    train: dict[str, Any]
    features_sha256: str
    onsets: str = "fixed"

    def as_dict(self) -> dict[str, Any]:
        """The fields that name the run (``onsets`` only when it is not ``fixed``)."""
        values = dataclasses.asdict(self)
        if values["onsets"] == "fixed":
            del values["onsets"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunKey:
        """The key stored in a run's ``config.yaml`` (fields of older versions are ignored; a
        field they lack reads as its default, or ``""`` as ``features_sha256`` does)."""
        fields = {
            f.name: values.get(f.name, "" if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(cls)
        }
        return cls(**fields)

    @property
    def run_id(self) -> str:
        return f"{self.model}-snr{self.snr_db}-fold{self.fold}-{config_hash(self.as_dict())}"

    def run_dir(self, workspace: Path) -> Path:
        return paths.runs_dir(workspace) / self.run_id

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``paperlib.models.build_model`` (besides shapes)."""
        return {
            "width": self.width,
            "decoder_activation": self.decoder_activation,
            "attention": self.attention,
        }


def _model_names() -> tuple[str, ...]:
    from paperlib.models import MODEL_NAMES

    return MODEL_NAMES


_TRAIN_KEYS_IGNORED = ("device", "num_threads", "eval_batch_size")

_TRAIN_KEYS_AT_DEFAULT_OMITTED = {"steps": None, "init": "paper"}
"""Training settings added after runs were first cached: at these values (what every earlier
run did) they are left out of the key, so those runs keep their ids."""


def run_key(
    profile: Profile,
    *,
    model: str,
    snr_db: int,
    fold: int,
    features_sha256: str = "",
    alpha: float | None = None,
    decoder_activation: str | None = None,
    seed: int | None = None,
    onsets: str = "fixed",
) -> RunKey:
    """The :class:`RunKey` of one cell of ``profile``.

    Args:
        profile: the profile (model and train sections are used).
        model: model name.
        snr_db, fold: the feature file's SNR and the held-out fold.
        features_sha256: SHA-256 of the feature file
            (:func:`paperlib.run.features.features_sha256`).
        alpha: 2APAE reconstruction weight; default ``profile.train.alpha``. Forced to 0.0 for
            the models without a decoder (``paperlib.models.has_decoder``).
        decoder_activation: 2APAE last decoder activation; default the profile's.
        seed: override ``profile.train.seed`` (as ``train_run(seed=...)``).
        onsets: the recipe of the feature file (``fixed`` or ``random``).
    """
    from paperlib.models import has_decoder as model_has_decoder  # torch only when called

    has_decoder = model_has_decoder(model)  # 2APAE and 2APAE-local
    defaults = type(profile.model)()
    train = {
        k: v
        for k, v in to_dict(profile.train).items()
        if k not in _TRAIN_KEYS_IGNORED
        and not (k in _TRAIN_KEYS_AT_DEFAULT_OMITTED and v == _TRAIN_KEYS_AT_DEFAULT_OMITTED[k])
    }
    by_model = train.pop("steps_by_model", {})
    unknown = sorted(set(by_model) - set(_model_names()))
    if unknown:
        raise ValueError(
            f"train.steps_by_model names unknown model(s) {', '.join(unknown)}; "
            f"valid models: {', '.join(_model_names())}"
        )
    steps = profile.train.steps_for(model)  # this model's budget only
    if steps is None:
        train.pop("steps", None)
    else:  # a budget in steps replaces the epoch count (TrainConfig.steps)
        train["steps"] = int(steps)
        del train["epochs"]
    run_alpha = float(profile.train.alpha if alpha is None else alpha) if has_decoder else 0.0
    train["alpha"] = run_alpha
    if seed is not None:
        train["seed"] = int(seed)
    return RunKey(
        model=model,
        snr_db=int(snr_db),
        fold=int(fold),
        alpha=run_alpha,
        width=float(profile.model.width),
        decoder_activation=(
            (decoder_activation or profile.model.decoder_activation)
            if has_decoder
            else defaults.decoder_activation
        ),
        attention=profile.model.attention if has_decoder else defaults.attention,
        time_pool=int(profile.model.time_pool),
        mel_pool=int(profile.model.mel_pool),
        train=train,
        features_sha256=str(features_sha256),
        onsets=str(onsets),
    )
