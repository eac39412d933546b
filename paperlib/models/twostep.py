"""2APAE: shared encoder + two-step attention pooling + decoder (paper Fig. 2, Tables I-III).

The same class builds ``2APAE-local`` (``step2="local"``, a shift-equivariant step 2).
"""

from __future__ import annotations

import torch

from paperlib.models.attention import TwoStepAttention
from paperlib.models.decoder import DECODER_CHANNELS, Decoder
from paperlib.models.encoder import ENCODER_CHANNELS, ClassConv, Encoder
from paperlib.models.precision import full_precision
from paperlib.models.spec import ModelSpec, SEDModel


class TwoStepAPAE(SEDModel):
    """The paper's model: 2-step Attention Pooling with an Auto-Encoder auxiliary task.

    The decoder reads the encoder output (the input of the class convolution), as the paper
    (Section IV-D) and the authors' code do. The loss weight α of the reconstruction belongs to
    the loss, not to the model; α = 0 is the "2-step attention only" ablation.

    Forward: ``x`` (B, T, F) standardised log-mel -> dict with

    - ``clip_probs`` (B, K): step-2 output clamped to [0, 1];
    - ``class_maps`` (B, K, T, F): class T-F representation (1x1 conv output, unbounded);
    - ``step1_weights`` (B, K, T, F): step-1 attention, sums to 1 over F;
    - ``step1_output`` (B, K, T);
    - ``step2_weights`` (B, K, T): step-2 attention, sums to 1 over T;
    - ``step2_output`` (B, K): unclamped step-2 output;
    - ``reconstruction`` (B, T, F): decoder output;
    - with ``step2="local"`` also ``step2_classification`` (B, K, T), the per-frame
      classification of the local step 2.

    Args:
        spec: the model's spec.
        step2: ``dense`` (the paper's, model ``2APAE``) or ``local`` (model ``2APAE-local``:
            step 2 computed frame by frame, so its weights are a real time axis; see
            :class:`~paperlib.models.attention.LocalAttentionStep`). The registry sets it.
    """

    def __init__(self, spec: ModelSpec, *, step2: str = "dense") -> None:
        super().__init__(spec)
        self.encoder = Encoder(tuple(spec.channels(c) for c in ENCODER_CHANNELS))
        self.class_conv = ClassConv(self.encoder.out_channels, spec.num_classes)
        self.attention = TwoStepAttention(
            time_steps=spec.time_steps,
            mel_bins=spec.mel_bins,
            variant=spec.attention,
            step2=step2,
            num_classes=spec.num_classes,
        )
        self.decoder = Decoder(
            self.encoder.out_channels,
            tuple(spec.channels(c) for c in DECODER_CHANNELS),
            last_activation=spec.decoder_activation,
        )

    def start_at_prior(self, logit: torch.Tensor) -> None:
        """Nothing: the paper's init is kept (see :mod:`paperlib.models.prior`). Step 2's
        classification layer is shared by the classes, so only the mean prior could be set
        there, and doing so (its bias at ``logit(mean prior)``) slowed learning in the pocket
        exploration (best micro-AP 0.41 instead of 0.60 at 0 dB in 1,140 steps)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(self.check_input(x))  # (B, C_enc, T, F)
        class_maps = self.class_conv(z)  # (B, K, T, F)
        outputs = self.attention(class_maps)
        reconstruction = self.decoder(z).squeeze(1)  # (B, T, F)
        return {"class_maps": class_maps, **outputs, "reconstruction": reconstruction}

    def pool_from_step1(self, step1_output: torch.Tensor) -> torch.Tensor:
        """Clip probabilities (B, K) from a step-1 output (B, K, T): step 2, then the clamp.

        Runs ``self.attention.step2`` (any module mapping (B, K, T) to ``(weights, output)``
        with ``output`` (B, K)) exactly as the forward does, in full precision, so
        ``pool_from_step1(model(x)["step1_output"])`` equals ``model(x)["clip_probs"]``.
        Differentiable: attribution methods feed it modified step-1 outputs
        (:mod:`paperlib.localisation.attribution`); a float64 input stays float64 (for
        finite-difference checks on a ``.double()`` model).
        """
        z = step1_output if step1_output.dtype == torch.float64 else step1_output.float()
        with full_precision(step1_output):
            _, output = self.attention.step2(z)
        return output.clamp(0.0, 1.0)
