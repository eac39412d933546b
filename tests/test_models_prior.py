"""train.init: prior -- each model's start against the class priors, computed independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.models import build_model
from paperlib.models.prior import class_prior, start_at_prior

SHAPE = {"num_classes": 5, "time_steps": 12, "mel_bins": 8, "width": 0.125}
PRIOR = np.array([0.05, 0.1, 0.2, 0.5, 0.9])


def _built(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **SHAPE)


def _probs(model: torch.nn.Module, seed: int = 1) -> np.ndarray:
    x = torch.randn(
        16, SHAPE["time_steps"], SHAPE["mel_bins"], generator=torch.Generator().manual_seed(seed)
    )
    model.eval()
    with torch.no_grad():
        return model(x)["clip_probs"].double().numpy()


def test_class_prior_is_the_share_of_clips_kept_half_a_clip_from_0_and_1() -> None:
    y = np.array([[1, 0, 0], [1, 0, 1], [1, 0, 0], [1, 0, 1]])
    np.testing.assert_allclose(class_prior(y), [1 - 0.5 / 4, 0.5 / 4, 0.5])
    for bad, fragment in (
        (np.zeros(4), "shape"),
        (np.zeros((0, 3)), "shape"),
        (np.array([[0.5, 1.0]]), "0 or 1"),
    ):
        with pytest.raises(ValueError, match=fragment):
            class_prior(bad)


def test_gmp_starts_exactly_at_the_prior_for_every_clip() -> None:
    name = "GMP"
    model = start_at_prior(_built(name), PRIOR)
    probs = _probs(model)
    np.testing.assert_allclose(probs, np.broadcast_to(PRIOR, probs.shape), rtol=1e-6)
    # the trunk keeps the paper's initialisation: the same weights as a model built alike
    paper = _built(name)
    for (key, a), b in zip(
        model.trunk.state_dict().items(), paper.trunk.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key


def test_paper_init_gmp_starts_far_above_the_prior() -> None:
    """Why the bias alone is not enough: GMP's max over T x F starts high."""
    assert _probs(_built("GMP")).mean() > 0.6


@pytest.mark.parametrize("name", ["GAP", "GWRP", "2APAE", "AtrousAP"])
def test_the_other_models_keep_the_papers_init(name: str) -> None:
    before = _built(name).state_dict()
    after = start_at_prior(_built(name), PRIOR).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_start_at_prior_rejects_a_prior_of_the_wrong_length_or_range() -> None:
    with pytest.raises(ValueError, match="5 classes, got an array of shape \\(4,\\)"):
        start_at_prior(_built("GMP"), PRIOR[:4])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        start_at_prior(_built("GMP"), np.array([0.0, 0.1, 0.2, 0.5, 0.9]))
