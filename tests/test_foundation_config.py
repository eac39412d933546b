"""Profiles and typed configs: loading, validation errors, round trips and hashes."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from paperlib.config import (
    PROFILE_NAMES,
    ConfigError,
    Profile,
    TrainConfig,
    config_hash,
    from_dict,
    load_profile,
    profile_with_overrides,
    replace,
    to_dict,
)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_shipped_profile_loads_and_round_trips_through_yaml(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    text = yaml.safe_dump(to_dict(profile))
    assert from_dict(Profile, yaml.safe_load(text)) == profile


def test_paper_profile_has_the_papers_hyper_parameters() -> None:
    paper = load_profile("paper")
    assert paper.requires_gpu and paper.data.source == "dcase"
    assert (paper.train.epochs, paper.train.batch_size, paper.train.lr) == (80, 24, 1e-3)
    assert paper.train.alpha == 0.001 and paper.model.width == 1.0
    assert paper.data.mixtures_per_fold == 2000 and paper.data.snrs == (0, 10, 20)
    assert paper.grid.folds == (1, 2, 3, 4)
    assert paper.train.precision == "fp32"  # the authors trained in plain fp32


def test_unknown_profile_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        load_profile("pockett")
    message = str(info.value)
    assert "pockett" in message
    for name in PROFILE_NAMES:
        assert name in message


def test_profile_file_with_unknown_key_names_the_file_and_valid_keys(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntrain:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message and "train.epochz" in message and "epochs" in message


def test_profile_file_that_is_not_a_mapping_is_rejected(tmp_path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_profile(path)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"epochs": "many"}, "epochs: expected an integer"),
        ({"lr": True}, "lr: expected a number"),
        ({"device": 3}, "device: expected a string"),
    ],
)
def test_wrongly_typed_values_name_the_key(values: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        from_dict(TrainConfig, values, where="train")


def test_paper_profile_trains_as_the_authors_did() -> None:
    """fp32, the authors' init, a budget in epochs (the pocket departs; chapter 3 lists why)."""
    train = load_profile("paper").train
    assert (train.precision, train.init, train.steps) == ("fp32", "paper", None)


def test_step_budget_gives_whole_epochs() -> None:
    """train.steps -> ceil(steps / steps per epoch); without it, train.epochs."""
    assert TrainConfig(epochs=7).epochs_for(19) == 7
    assert TrainConfig(epochs=7, steps=600).epochs_for(19) == 32  # 31 epochs = 589 < 600
    assert TrainConfig(steps=38).epochs_for(19) == 2
    assert TrainConfig(steps=1).epochs_for(19) == 1
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1"):
        TrainConfig(steps=5).epochs_for(0)
    with pytest.raises(ConfigError, match=r"train.steps must be an integer >= 1 or null.*0"):
        TrainConfig(steps=0)
    assert from_dict(TrainConfig, {"steps": None}).steps is None


def test_init_accepts_paper_and_prior_only() -> None:
    assert TrainConfig(init="prior").init == "prior"
    with pytest.raises(ConfigError, match=r"train\.init must be one of paper, prior, got 'zero'"):
        TrainConfig(init="zero")


def test_precision_accepts_the_three_modes_and_rejects_others_naming_the_key(tmp_path) -> None:
    pocket = load_profile("pocket")
    for mode in ("fp32", "tf32", "bf16"):
        assert profile_with_overrides(pocket, {"train.precision": mode}).train.precision == mode
    with pytest.raises(ConfigError) as info:
        profile_with_overrides(pocket, {"train.precision": "fp16"})
    message = str(info.value)
    assert "train.precision" in message and "'fp16'" in message
    assert "fp32, tf32, bf16" in message
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntrain:\n  precision: half\n")
    with pytest.raises(ConfigError, match=f"{path}: train.precision must be one of .*'half'"):
        load_profile(path)
    with pytest.raises(ConfigError, match="precision: expected a string"):
        from_dict(TrainConfig, {"precision": 16}, where="train")


def test_lists_become_tuples_and_ints_become_floats_where_declared() -> None:
    profile = from_dict(Profile, {"name": "x", "grid": {"alphas": [0, 1]}, "data": {"snrs": [5]}})
    assert profile.grid.alphas == (0.0, 1.0) and isinstance(profile.grid.alphas[0], float)
    assert profile.data.snrs == (5,)


def test_config_hash_is_stable_and_sensitive_to_every_change() -> None:
    pocket = load_profile("pocket")
    assert config_hash(pocket) == config_hash(load_profile("pocket"))
    changed = replace(pocket, train={"epochs": pocket.train.epochs + 1})
    assert config_hash(changed) != config_hash(pocket)
    assert len(config_hash(pocket)) == 12


def test_dotted_overrides_change_only_what_they_name() -> None:
    pocket = load_profile("pocket")
    changed = profile_with_overrides(pocket, {"train.lr": 0.5, "data.snrs": [20]})
    assert changed.train.lr == 0.5 and changed.data.snrs == (20,)
    assert dataclasses.replace(changed.train, lr=pocket.train.lr) == pocket.train
    # (train.epochs alone also clears the step budget: see the test below)
    with pytest.raises(ConfigError, match="valid sections"):
        profile_with_overrides(pocket, {"trian.epochs": 2})
    with pytest.raises(ConfigError, match="valid keys"):
        profile_with_overrides(pocket, {"train.epoch": 2})


def test_configs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_profile("smoke").train.epochs = 5  # type: ignore[misc]


def test_full_profile_is_the_paper_setting_on_the_pocket_corpus() -> None:
    """Only the data source (and the pocket corpus' size) may differ from ``paper``."""
    paper, full = to_dict(load_profile("paper")), to_dict(load_profile("full"))
    for section in ("model", "train", "grid"):
        assert full[section] == paper[section], section
    assert full["requires_gpu"] and full["data"]["source"] == "pocket"
    assert full["data"]["mixtures_per_fold"] == paper["data"]["mixtures_per_fold"] == 2000
    # every background is used once: 4 folds of 2,000 mixtures
    assert full["data"]["pocket_backgrounds"] >= 4 * full["data"]["mixtures_per_fold"]


def test_steps_by_model_replaces_the_budget_of_its_models_only() -> None:
    train = from_dict(TrainConfig, {"steps": 400, "steps_by_model": {"GAP": 800}}, where="train")
    assert (train.steps_for("GAP"), train.steps_for("GMP")) == (800, 400)
    assert train.epochs_for(19, "GAP") == 43 and train.epochs_for(19, "GMP") == 22
    assert TrainConfig(epochs=5, steps_by_model={"GAP": 38}).epochs_for(19, "GMP") == 5
    with pytest.raises(ConfigError, match=r"train\.steps_by_model must be a mapping of model"):
        from_dict(TrainConfig, {"steps_by_model": {"GAP": 0}}, where="train")
    with pytest.raises(ConfigError, match=r"train.steps_by_model.GAP: expected an integer"):
        from_dict(TrainConfig, {"steps_by_model": {"GAP": "many"}}, where="train")
    with pytest.raises(ConfigError, match=r"train\.steps_by_model: expected a mapping"):
        from_dict(TrainConfig, {"steps_by_model": [800]}, where="train")


def test_an_epochs_override_replaces_the_step_budget_unless_steps_are_given_too() -> None:
    pocket = load_profile("pocket")
    assert pocket.train.steps is not None  # the pocket counts steps
    two = profile_with_overrides(pocket, {"train.epochs": 2})
    assert (two.train.steps, two.train.steps_by_model, two.train.epochs_for(19, "GAP")) == (
        None,
        {},
        2,
    )
    both = profile_with_overrides(pocket, {"train.epochs": 2, "train.steps": 38})
    assert (
        both.train.epochs_for(19, "GMP") == 2
        and both.train.steps_by_model == pocket.train.steps_by_model
    )


def test_budget_text_names_the_budget_of_every_model() -> None:
    assert TrainConfig(epochs=80).budget_text() == "80 epochs"
    assert TrainConfig(steps=1140).budget_text() == "1,140 steps"
    text = TrainConfig(steps=380, steps_by_model={"GAP": 760, "GWRP": 760, "GMP": 100})
    assert text.budget_text() == "380 steps (GAP, GWRP: 760; GMP: 100)"
    assert TrainConfig(epochs=5, steps_by_model={"GAP": 38}).budget_text() == "5 epochs (GAP: 38)"
