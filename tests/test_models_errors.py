"""Bad arguments give clear errors naming the value and what was expected."""

from __future__ import annotations

import pytest
import torch

from paperlib.config import ConfigError, load_profile, profile_with_overrides
from paperlib.models import (
    InputShapeError,
    ModelConfigError,
    ModelSpec,
    build_model,
)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ModelConfigError, match=r"'VGG'.*GMP, GAP, GWRP, AtrousAP, 2APAE"):
        build_model("VGG")
    assert issubclass(ModelConfigError, ValueError)


@pytest.mark.parametrize("width", [0, -0.5, 0.0, float("nan")])
def test_width_must_be_positive(width: float) -> None:
    with pytest.raises(ModelConfigError, match="width must be a number > 0"):
        build_model("2APAE", width=width)


def test_unknown_switches() -> None:
    with pytest.raises(ModelConfigError, match=r"decoder_activation 'tanh'.*relu, linear"):
        build_model("2APAE", decoder_activation="tanh")
    with pytest.raises(ModelConfigError, match=r"attention 'both'.*authors, paper"):
        build_model("2APAE", attention="both")
    with pytest.raises(ModelConfigError, match="num_classes must be a positive integer"):
        build_model("GMP", num_classes=0)
    with pytest.raises(ModelConfigError, match=r"unknown ModelSpec key\(s\) depth"):
        ModelSpec.from_dict({"name": "GMP", "depth": 3})


@pytest.mark.parametrize("name", ["GMP", "AtrousAP", "2APAE"])
def test_input_shape_must_match(name: str) -> None:
    model = build_model(name, time_steps=20, mel_bins=8, width=0.125)
    with pytest.raises(InputShapeError, match=r"T=20, F=8.*got \(2, 21, 8\)"):
        model(torch.zeros(2, 21, 8))
    with pytest.raises(InputShapeError, match=r"got \(2, 20, 9\)"):
        model(torch.zeros(2, 20, 9))
    with pytest.raises(InputShapeError, match=r"got \(2, 1, 20, 8\)"):
        model(torch.zeros(2, 1, 20, 8))


def test_spec_from_profile_config() -> None:
    profile = load_profile("pocket")
    spec = ModelSpec.from_config("2APAE", profile.model)
    assert spec.width == profile.model.width and spec.attention == "authors"
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model.width", 0, "model.width must be > 0"),
        ("model.attention", "both", "model.attention must be authors or paper"),
        ("model.decoder_activation", "tanh", "model.decoder_activation must be relu or linear"),
    ],
)
def test_profile_model_section_is_validated(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        profile_with_overrides(load_profile("pocket"), {key: value})
