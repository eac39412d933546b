"""One table from model name to configuration, and the constructors by name.

Variants are fields of the table (which family, which pooling), never copied classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from paperlib.models.baselines import AtrousAP, PooledCNN
from paperlib.models.blocks import initialise
from paperlib.models.spec import MODEL_NAMES, ModelConfigError, ModelSpec, SEDModel
from paperlib.models.twostep import TwoStepAPAE


@dataclass(frozen=True)
class ModelEntry:
    """How one named model is built.

    Attributes:
        family: ``pooled_cnn`` (VGG-like trunk + global pooling), ``atrous`` or ``twostep``.
        pooling: the global pooling of the ``pooled_cnn`` family (``max``, ``avg``, ``gwrp``).
        description: one line for tables and the book.
        step2: step 2 of the ``twostep`` family: ``dense`` (the paper's ``Linear(T, T)``) or
            ``local`` (shift-equivariant, see :class:`~paperlib.models.attention.LocalAttentionStep`).
    """

    family: str
    pooling: str | None = None
    description: str = ""
    step2: str = "dense"


MODEL_TABLE: dict[str, ModelEntry] = {
    "GMP": ModelEntry("pooled_cnn", "max", "VGG-like CNN, global max pooling"),
    "GAP": ModelEntry("pooled_cnn", "avg", "VGG-like CNN, global average pooling"),
    "GWRP": ModelEntry("pooled_cnn", "gwrp", "VGG-like CNN, global weighted rank pooling (0.9998)"),
    "AtrousAP": ModelEntry("atrous", None, "atrous (dilated) CNN, 2-D attention pooling"),
    "2APAE": ModelEntry("twostep", None, "encoder + 2-step attention pooling + decoder (paper)"),
    "2APAE-local": ModelEntry(
        "twostep",
        None,
        "2APAE with a shift-equivariant step 2 (per-frame attention pooling, Conv1d k=3)",
        step2="local",
    ),
}
assert tuple(MODEL_TABLE) == MODEL_NAMES

_FAMILIES: dict[str, Callable[[ModelSpec, ModelEntry], SEDModel]] = {
    "pooled_cnn": lambda spec, entry: PooledCNN(spec, pooling=str(entry.pooling)),
    "atrous": lambda spec, entry: AtrousAP(spec),
    "twostep": lambda spec, entry: TwoStepAPAE(spec, step2=entry.step2),
}


def has_decoder(name: str) -> bool:
    """Whether model ``name`` has the decoder, hence the α-weighted reconstruction loss and
    the decoder/attention switches (the ``twostep`` family: ``2APAE`` and ``2APAE-local``).

    Raises:
        ModelConfigError: an unknown name (the valid names are listed).
    """
    entry = MODEL_TABLE.get(name)
    if entry is None:
        raise ModelConfigError(
            f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}"
        )
    return entry.family == "twostep"


def build_model_from_spec(spec: ModelSpec) -> nn.Module:
    """Build and initialise (see :func:`~paperlib.models.blocks.initialise`) the model of ``spec``.

    The random initialisation draws from torch's global generator: seed it
    (``torch.manual_seed``) for reproducible weights.
    """
    entry = MODEL_TABLE[spec.name]
    return initialise(_FAMILIES[entry.family](spec, entry))


def build_model(
    name: str,
    *,
    num_classes: int = 41,
    time_steps: int = 311,
    mel_bins: int = 64,
    width: float = 1.0,
    decoder_activation: str = "relu",
    attention: str = "authors",
) -> nn.Module:
    """Build one of :data:`MODEL_NAMES` by name (see :class:`ModelSpec` for the arguments).

    Raises:
        ModelConfigError: an unknown name (the valid names are listed), a width <= 0, or an
            unknown ``decoder_activation`` / ``attention``.
    """
    return build_model_from_spec(
        ModelSpec(
            name=name,
            num_classes=num_classes,
            time_steps=time_steps,
            mel_bins=mel_bins,
            width=width,
            decoder_activation=decoder_activation,
            attention=attention,
        )
    )
