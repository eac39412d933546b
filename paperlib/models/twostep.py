"""2APAE: shared encoder + two-step attention pooling + decoder (paper Fig. 2, Tables I-III)."""

from __future__ import annotations

import torch

from paperlib.models.attention import TwoStepAttention
from paperlib.models.decoder import DECODER_CHANNELS, Decoder
from paperlib.models.encoder import ENCODER_CHANNELS, ClassConv, Encoder
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
    - ``reconstruction`` (B, T, F): decoder output.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.encoder = Encoder(tuple(spec.channels(c) for c in ENCODER_CHANNELS))
        self.class_conv = ClassConv(self.encoder.out_channels, spec.num_classes)
        self.attention = TwoStepAttention(
            time_steps=spec.time_steps, mel_bins=spec.mel_bins, variant=spec.attention
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
