"""The five models of the paper (Table IV) and the variant ``2APAE-local`` behind one
constructor, and checkpoint I/O.

Chapter 2 of the book (``chapters/02_model.ipynb``) walks through them::

    from paperlib.models import build_model, MODEL_NAMES
    model = build_model("2APAE", width=0.125)      # pocket size; width=1.0 is the paper's
    out = model(x)                                  # x: (B, T=311, F=64) standardised log-mel
    out["clip_probs"]                               # (B, 41) in [0, 1]

Every model takes (B, T, F) and returns a dict with at least ``clip_probs`` (B, K); see
:class:`~paperlib.models.twostep.TwoStepAPAE` for the 2APAE's named intermediates.
"""

from paperlib.models.checkpoint import CheckpointError, load_model, read_checkpoint, save_model
from paperlib.models.registry import (
    MODEL_TABLE,
    ModelEntry,
    build_model,
    build_model_from_spec,
    has_decoder,
)
from paperlib.models.spec import (
    ATTENTION_VARIANTS,
    DECODER_ACTIVATIONS,
    MODEL_NAMES,
    InputShapeError,
    ModelConfigError,
    ModelSpec,
    SEDModel,
)

__all__ = [
    "ATTENTION_VARIANTS",
    "DECODER_ACTIVATIONS",
    "MODEL_NAMES",
    "MODEL_TABLE",
    "CheckpointError",
    "InputShapeError",
    "ModelConfigError",
    "ModelEntry",
    "ModelSpec",
    "SEDModel",
    "build_model",
    "build_model_from_spec",
    "has_decoder",
    "load_model",
    "read_checkpoint",
    "save_model",
]
