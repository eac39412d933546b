"""Frame scores and T-F maps of every model family against direct computations on the outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.localisation import LocalisationError, model_maps, run_model
from paperlib.localisation.frame_scores import primary_scorer
from paperlib.models import build_model
from paperlib.models.pooling import GWRP_DECAY

SHAPE = {"time_steps": 155, "mel_bins": 32, "width": 0.0625}  # a model pooled by 2 x 2


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.as_tensor(
        np.random.default_rng(0).standard_normal((3, 155, 32)), dtype=torch.float32
    )


def _eval(name: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, **SHAPE, **kwargs).eval()


@pytest.mark.parametrize("name", ["GMP", "GAP", "GWRP"])
def test_pooled_cnn_frame_scores_pool_each_frame_over_mel(name: str, x: torch.Tensor) -> None:
    model = _eval(name)
    with torch.no_grad():
        maps = model_maps(model, x)
        out = model(x)
    cm = out["class_maps"]
    if name == "GMP":
        expected = cm.amax(dim=-1)
    elif name == "GAP":
        expected = cm.mean(dim=-1)
    else:
        ranked = cm.sort(dim=-1, descending=True).values
        weights = GWRP_DECAY ** torch.arange(cm.shape[-1], dtype=cm.dtype)
        expected = (ranked * weights).sum(-1) / weights.sum()
    assert list(maps.frame_scores) == ["class maps"] == [primary_scorer(name)]
    torch.testing.assert_close(maps.frame_scores["class maps"], expected)
    torch.testing.assert_close(maps.tf_maps, cm)
    torch.testing.assert_close(maps.clip_probs, out["clip_probs"])


def test_atrous_frame_scores_are_attention_weighted_class_maps(x: torch.Tensor) -> None:
    model = _eval("AtrousAP")
    with torch.no_grad():
        maps = model_maps(model, x)
        out = model(x)
    weighted = out["attention_maps"] * out["class_maps"]
    torch.testing.assert_close(maps.tf_maps, weighted)
    torch.testing.assert_close(maps.frame_scores["attention x class maps"], weighted.sum(-1))


@pytest.mark.parametrize("attention", ["authors", "paper"])
def test_twostep_tf_map_sums_over_mel_to_the_step1_output(attention: str, x: torch.Tensor) -> None:
    model = _eval("2APAE", attention=attention)
    with torch.no_grad():
        maps = model_maps(model, x)
        out = model(x)
    assert list(maps.frame_scores) == [
        "integrated gradients",
        "step-1 output",
        "step-2 attention",
        "occlusion",
    ]
    torch.testing.assert_close(maps.frame_scores["step-1 output"], out["step1_output"])
    torch.testing.assert_close(maps.frame_scores["step-2 attention"], out["step2_weights"])
    torch.testing.assert_close(maps.tf_maps.sum(-1), out["step1_output"], atol=1e-5, rtol=1e-5)
    ratio = maps.tf_maps / out["step1_weights"]  # the classification branch, per bin
    if attention == "authors":  # a sigmoid: inside (0, 1)
        assert bool(((ratio > 0) & (ratio < 1)).all())


def test_run_model_batches_and_keeps_the_selected_maps(x: torch.Tensor) -> None:
    model = _eval("2APAE")
    select = np.zeros((3, 41), dtype=bool)
    select[0, [2, 9]] = True
    select[2, 40] = True
    whole = run_model(model, x.numpy(), tf_select=select, batch_size=3)
    single = run_model(model, x.numpy(), tf_select=select, batch_size=1)
    np.testing.assert_array_equal(whole.tf_pairs, [[0, 2], [0, 9], [2, 40]])
    np.testing.assert_array_equal(single.tf_pairs, whole.tf_pairs)
    np.testing.assert_allclose(single.tf_maps, whole.tf_maps, atol=1e-6)
    for name in whole.frame_scores:
        np.testing.assert_allclose(single.frame_scores[name], whole.frame_scores[name], atol=1e-6)
    with torch.no_grad():
        direct = model_maps(model, x)
    np.testing.assert_allclose(whole.tf_maps[1], direct.tf_maps[0, 9].numpy(), atol=1e-6)
    assert whole.clip_probs.shape == (3, 41) and whole.frame_scores["step-1 output"].shape == (
        3,
        41,
        155,
    )
    assert run_model(model, x.numpy()).tf_maps.shape == (0, 155, 32)
    assert model.training is False


def test_run_model_errors(x: torch.Tensor) -> None:
    model = _eval("GMP")
    with pytest.raises(LocalisationError, match="tf_select has shape \\(2, 41\\)"):
        run_model(model, x.numpy(), tf_select=np.zeros((2, 41), bool))
    with pytest.raises(LocalisationError, match="the model's clip probabilities"):
        run_model(model, x.numpy(), tf_select=np.zeros((3, 40), bool))
    with pytest.raises(LocalisationError, match="expected clips \\(N, T, F\\)"):
        run_model(model, x.numpy()[0])
    with pytest.raises(LocalisationError, match="not a paperlib model"):
        model_maps(torch.nn.Linear(32, 41), x)
