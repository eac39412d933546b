"""Identity of a training run: what it depends on, its hash and its directory.

A run is one model trained on one SNR with one held-out fold. Its id,
``<model>-snr<S>-fold<k>-<hash>``, hashes everything the numbers depend on (model, SNR, fold,
model variant, training settings, data settings and the plan hash stored in the feature file)
and nothing they do not (device, thread count), so the grid and a chapter that ask for the
same cell share one run directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperlib import paths
from paperlib.config import Profile, config_hash, to_dict

__all__ = ["RunKey", "run_key"]

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
        data: the data settings that made the feature file.
        plan_sha256: the plan hash recorded in the feature file.
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
    data: dict[str, Any]
    plan_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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


_TRAIN_KEYS_IGNORED = ("device", "num_threads", "eval_batch_size")
_DATA_KEYS_IGNORED = ("workers",)


def run_key(
    profile: Profile,
    *,
    model: str,
    snr_db: int,
    fold: int,
    plan_sha256: str = "",
    alpha: float | None = None,
    decoder_activation: str | None = None,
) -> RunKey:
    """The :class:`RunKey` of one cell of ``profile``.

    Args:
        profile: the profile (model, train and data sections are used).
        model: model name.
        snr_db, fold: the feature file's SNR and the held-out fold.
        plan_sha256: ``plan_sha256`` attribute of the feature file.
        alpha: 2APAE reconstruction weight; default ``profile.train.alpha``. Forced to 0.0 for
            the baselines (they have no decoder).
        decoder_activation: 2APAE last decoder activation; default the profile's.
    """
    has_decoder = model == MODEL_WITH_DECODER
    defaults = type(profile.model)()
    train = {k: v for k, v in to_dict(profile.train).items() if k not in _TRAIN_KEYS_IGNORED}
    run_alpha = float(profile.train.alpha if alpha is None else alpha) if has_decoder else 0.0
    train["alpha"] = run_alpha
    data = {k: v for k, v in to_dict(profile.data).items() if k not in _DATA_KEYS_IGNORED}
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
        data=data,
        plan_sha256=str(plan_sha256),
    )
