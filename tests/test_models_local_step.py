"""2APAE-local: the shift-equivariant step 2, against a hand formula and exact symmetries.

Which equivariance is exact where:

- the two-step head alone (class maps -> clip probabilities) is exactly equivariant under a
  *circular* shift in time: step 1 acts frame by frame and the local step 2's convolutions pad
  circularly, so its weights and per-frame outputs roll with the input and the clip
  probabilities do not change;
- the whole model's encoder pads with zeros (as the paper's), so for the whole model the
  comparison is on *interior* frames: those whose receptive field touches neither end of the
  clip nor the wrap point of the shift.

The paper's dense step 2 (``Linear(T, T)``) is the control: the same shifts change its clip
probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.config import load_profile
from paperlib.models import (
    MODEL_NAMES,
    MODEL_TABLE,
    CheckpointError,
    ModelConfigError,
    ModelSpec,
    build_model,
    has_decoder,
    load_model,
    save_model,
)
from paperlib.models.attention import LocalAttentionStep, TwoStepAttention

K, T, F = 5, 40, 12
SMALL = {"num_classes": K, "time_steps": T, "mel_bins": F, "width": 0.125}
ENCODER_RADIUS = 4 * 3  # 4 blocks of (3x3 conv, 3x3 conv, 3x3 pool): 12 frames each side
LOCAL_RADIUS = 1  # the step-2 convolution's kernel of 3 frames


def _randomise_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters (eval mode
    then applies a real per-channel affine map, not the identity)."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def _head(step2: str, variant: str = "authors") -> TwoStepAttention:
    torch.manual_seed(0)
    head = TwoStepAttention(time_steps=T, mel_bins=F, variant=variant, step2=step2, num_classes=K)
    _randomise_batchnorm(head, torch.Generator().manual_seed(1))
    return head.eval()


def _circular_conv1d(h: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(B, C, T) x (K, C, k) -> (B, K, T), circular padding, by explicit sums over taps."""
    k = weight.shape[-1]
    out = np.zeros((h.shape[0], weight.shape[0], h.shape[-1])) + bias[None, :, None]
    for j in range(k):
        shifted = np.roll(h, -(j - k // 2), axis=-1)  # shifted[..., t] = h[..., t + j - k//2]
        out += np.einsum("kc,bct->bkt", weight[:, :, j], shifted)
    return out


@pytest.mark.parametrize("variant", ["authors", "paper"])
def test_local_step_matches_hand_formula(variant: str) -> None:
    torch.manual_seed(0)
    step = LocalAttentionStep(K, variant=variant)
    _randomise_batchnorm(step, torch.Generator().manual_seed(2))
    step.eval()
    z = torch.rand(3, K, T)
    with torch.no_grad():
        weights, output = step(z)
    zn = z.double().numpy()
    norm = step.norm
    mean, var = norm.running_mean.double().numpy(), norm.running_var.double().numpy()
    gamma, beta = norm.weight.double().detach().numpy(), norm.bias.double().detach().numpy()
    h = (zn - mean[:, None]) / np.sqrt(var[:, None] + norm.eps) * gamma[:, None] + beta[:, None]

    def branch(conv: nn.Conv1d) -> np.ndarray:
        w = conv.weight.double().detach().numpy()
        return _circular_conv1d(h, w, conv.bias.double().detach().numpy())

    att, cla = branch(step.attention), branch(step.classification)
    if variant == "authors":
        cla = 1.0 / (1.0 + np.exp(-cla))
    else:
        att = 1.0 / (1.0 + np.exp(-att))
    e = np.exp(att - att.max(axis=-1, keepdims=True))
    expected_w = e / e.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(weights.numpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output.numpy(), (expected_w * cla).sum(-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["authors", "paper"])
@pytest.mark.parametrize("shift", [1, 7, T - 3])
def test_local_head_is_exactly_shift_equivariant(variant: str, shift: int) -> None:
    head = _head("local", variant)
    maps = torch.randn(2, K, T, F, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        a = head(maps)
        b = head(torch.roll(maps, shift, dims=2))
    for key in ("step1_weights", "step1_output", "step2_weights", "step2_classification"):
        torch.testing.assert_close(b[key], torch.roll(a[key], shift, dims=2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b["clip_probs"], a["clip_probs"], rtol=0, atol=1e-6)
    torch.testing.assert_close(b["step2_output"], a["step2_output"], rtol=0, atol=1e-6)
    # the weights are proper distributions over time, and the output is their weighted sum
    torch.testing.assert_close(a["step2_weights"].sum(-1), torch.ones(2, K))
    torch.testing.assert_close(
        (a["step2_weights"] * a["step2_classification"]).sum(-1), a["step2_output"]
    )
    # not a trivial symmetry: the step-2 weights really vary over time
    assert (a["step2_weights"].amax(-1) / a["step2_weights"].amin(-1)).min() > 1.01


def test_dense_head_is_not_shift_invariant() -> None:
    """Control: the paper's Linear(T, T) step 2 on the same class maps."""
    head = _head("dense")
    maps = torch.randn(2, K, T, F, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        a = head(maps)
        b = head(torch.roll(maps, 7, dims=2))
    # step 1 acts per frame in both models, so its output rolls here too...
    torch.testing.assert_close(b["step1_output"], torch.roll(a["step1_output"], 7, dims=2))
    # ...but step 2 does not: its weights are no roll and the probabilities move
    rolled = torch.roll(a["step2_weights"], 7, dims=2)
    assert (b["step2_weights"] - rolled).abs().max() > 1e-2
    assert (b["clip_probs"] - a["clip_probs"]).abs().max() > 1e-3


def _interior(shift: int) -> slice:
    """Frames t of the shifted clip whose receptive field lies inside both clips, unwrapped."""
    radius = ENCODER_RADIUS + LOCAL_RADIUS
    return slice(shift + radius, T - radius)


def _log_weights(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.log(out["step2_weights"].double())


def test_whole_model_is_shift_equivariant_on_interior_frames() -> None:
    torch.manual_seed(0)
    model = build_model("2APAE-local", **SMALL)
    _randomise_batchnorm(model, torch.Generator().manual_seed(4))
    model.eval()
    shift = 5
    x = torch.randn(2, T, F, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, b = model(x), model(torch.roll(x, shift, dims=1))
    inner = _interior(shift)
    assert inner.stop - inner.start >= 8  # enough frames to compare
    source = slice(inner.start - shift, inner.stop - shift)
    for key in ("class_maps", "step1_weights", "step1_output", "step2_classification"):
        torch.testing.assert_close(b[key][:, :, inner], a[key][:, :, source], rtol=1e-4, atol=1e-5)
    # (the decoder doubles the receptive field, so the reconstruction has fewer interior frames)
    # the softmax over T normalises over every frame: on interior frames the log-weights
    # agree up to one constant per clip and class (the attention logits agree exactly)
    diff = _log_weights(b)[:, :, inner] - _log_weights(a)[:, :, source]
    torch.testing.assert_close(
        diff - diff.mean(-1, keepdim=True), torch.zeros_like(diff), rtol=0, atol=1e-4
    )
    # the comparison is not vacuous: the series vary along the compared frames
    assert b["step2_classification"][:, :, inner].std(-1).min() > 1e-5
    assert _log_weights(b)[:, :, inner].std(-1).min() > 1e-5


def test_whole_2apae_step2_is_not_shift_equivariant() -> None:
    """Control on a random 2APAE: interior step-1 frames match, step 2 does not."""
    torch.manual_seed(0)
    model = build_model("2APAE", **SMALL)
    _randomise_batchnorm(model, torch.Generator().manual_seed(4))
    model.eval()
    shift = 5
    x = torch.randn(2, T, F, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, b = model(x), model(torch.roll(x, shift, dims=1))
    inner = _interior(shift)
    source = slice(inner.start - shift, inner.stop - shift)
    torch.testing.assert_close(
        b["step1_output"][:, :, inner], a["step1_output"][:, :, source], rtol=1e-4, atol=1e-5
    )
    diff = _log_weights(b)[:, :, inner] - _log_weights(a)[:, :, source]
    assert (diff - diff.mean(-1, keepdim=True)).abs().max() > 1e-2
    assert (b["clip_probs"] - a["clip_probs"]).abs().max() > 1e-3


def test_registry_builds_the_local_variant_with_no_weight_tied_to_a_frame() -> None:
    assert "2APAE-local" in MODEL_NAMES and MODEL_NAMES[:5] == (
        "GMP",
        "GAP",
        "GWRP",
        "AtrousAP",
        "2APAE",
    )
    entry = MODEL_TABLE["2APAE-local"]
    assert (entry.family, entry.step2) == ("twostep", "local")
    assert MODEL_TABLE["2APAE"].step2 == "dense"
    sizes = {"num_classes": 5, "time_steps": 37, "mel_bins": 12, "width": 0.125}  # 37: no channel
    local = build_model("2APAE-local", **sizes)
    dense = build_model("2APAE", **sizes)
    assert type(local) is type(dense)  # a registry field, not a copied class
    assert isinstance(local.attention.step2, LocalAttentionStep)
    assert not any(37 in p.shape for p in local.parameters())
    assert any(37 in p.shape for p in dense.parameters())  # the paper's Linear(T, T)
    # its step-2 outputs are real per-frame series
    with torch.no_grad():
        out = local.eval()(torch.randn(2, 37, 12))
    assert out["step2_weights"].shape == (2, 5, 37)
    assert out["step2_classification"].shape == (2, 5, 37)
    assert "step2_classification" not in dense.eval()(torch.randn(1, 37, 12))


def test_has_decoder_matches_the_models_outputs() -> None:
    for name in MODEL_NAMES:
        torch.manual_seed(0)
        with torch.no_grad():
            out = build_model(name, **SMALL).eval()(torch.randn(1, T, F))
        assert has_decoder(name) == ("reconstruction" in out), name
    assert [n for n in MODEL_NAMES if has_decoder(n)] == ["2APAE", "2APAE-local"]
    with pytest.raises(ModelConfigError, match=r"unknown model name '2apae'; valid names: GMP"):
        has_decoder("2apae")


def test_step2_and_kernel_errors() -> None:
    with pytest.raises(
        ModelConfigError, match=r"unknown step2 'global'; valid values: dense, local"
    ):
        TwoStepAttention(time_steps=T, mel_bins=F, variant="authors", step2="global")
    with pytest.raises(ModelConfigError, match="needs num_classes"):
        TwoStepAttention(time_steps=T, mel_bins=F, variant="authors", step2="local")
    with pytest.raises(ModelConfigError, match="positive odd integer, got 2"):
        LocalAttentionStep(K, kernel_size=2, variant="authors")


def test_checkpoint_round_trip_and_no_cross_loading(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("2APAE-local", **SMALL)
    model.train()(torch.randn(4, T, F))["clip_probs"].sum().backward()  # moves BN statistics
    model.eval()
    path = save_model(tmp_path / "local.pt", model)
    loaded = load_model(path, spec=ModelSpec("2APAE-local", **SMALL))
    assert isinstance(loaded.attention.step2, LocalAttentionStep)
    assert loaded.attention.step2.norm.num_batches_tracked.item() == 1
    x = torch.randn(2, T, F)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(CheckpointError, match=r"name: file has '2APAE-local', expected '2APAE'"):
        load_model(path, spec=ModelSpec("2APAE", **SMALL))
    # a 2APAE's weights under a 2APAE-local spec do not fit, and say so
    dense = build_model("2APAE", **SMALL)
    torch.save(
        {"spec": ModelSpec("2APAE-local", **SMALL).to_dict(), "state_dict": dense.state_dict()},
        tmp_path / "mixed.pt",
    )
    with pytest.raises(CheckpointError, match=r"mixed\.pt: weights do not fit spec"):
        load_model(tmp_path / "mixed.pt")


def test_run_key_gives_the_local_variant_alpha_and_decoder_switches() -> None:
    from paperlib.run.key import run_key

    profile = load_profile("pocket")
    local = run_key(
        profile,
        model="2APAE-local",
        snr_db=0,
        fold=1,
        features_sha256="f",
        alpha=0.01,
        decoder_activation="linear",
    )
    assert (local.alpha, local.decoder_activation) == (0.01, "linear")
    assert local.run_id.startswith("2APAE-local-snr0-fold1-")
    gmp = run_key(profile, model="GMP", snr_db=0, fold=1, features_sha256="f", alpha=0.01)
    assert gmp.alpha == 0.0
    dense = run_key(
        profile,
        model="2APAE",
        snr_db=0,
        fold=1,
        features_sha256="f",
        alpha=0.01,
        decoder_activation="linear",
    )
    assert dense.run_id != local.run_id and dense.alpha == local.alpha


def test_figure3_panels_take_the_local_variant() -> None:
    """The book's Fig. 3 reads the same named outputs; panel 7 is the per-frame step-2 weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from paperlib import interpret
    from paperlib.plots.interpret_plots import plot_figure3

    plan = pd.DataFrame({"mixture": ["m0"], "label": ["Bark"], "onset_s": [0.5], "offset_s": [2.5]})
    torch.manual_seed(0)
    model = build_model("2APAE-local", time_steps=77, mel_bins=16, width=0.0625)  # pocket input
    x = np.random.default_rng(0).standard_normal((1, 77, 16)).astype(np.float32)
    weak = np.zeros((1, 41), dtype=np.float32)
    (panels,) = interpret.figure3_panels(model, x, ["m0"], weak_targets=weak, plan=plan)
    with torch.no_grad():
        direct = model.eval()(torch.as_tensor(x))
    np.testing.assert_allclose(panels.step2_weights, direct["step2_weights"][0].numpy(), rtol=1e-6)
    assert panels.step2_weights.shape == (41, 77)
    fig = plot_figure3(panels, snr_db=0)
    assert len(fig.axes) >= 8
    plt.close(fig)
