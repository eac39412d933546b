"""Typed, frozen configuration objects and the profiles (``pocket``, ``paper``, ``smoke``).

A profile is a small YAML file in ``paperlib/profiles/`` with one section per concern
(``data``, ``model``, ``train``, ``grid``, ``book``). Every section maps onto a frozen dataclass
below; unknown keys are rejected with the list of valid ones, so a typo never passes silently.
Configs round-trip to plain dicts (and so to YAML), and :func:`config_hash` names run
directories and keys the result cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from paperlib.paths import ONSET_RECIPES, is_plain_name

PROFILE_NAMES: tuple[str, ...] = ("pocket", "paper", "full", "smoke")
"""Profiles shipped with the package (``paperlib/profiles/<name>.yaml``)."""

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")
"""Values of ``train.precision`` (see :mod:`paperlib.run.precision`)."""

INITS: tuple[str, ...] = ("paper", "prior")
"""Values of ``train.init`` (see :mod:`paperlib.models.prior`)."""


@dataclass(frozen=True)
class DataConfig:
    """Where the source audio comes from and how the mixtures are made (paper Section IV-A)."""

    source: str = "pocket"
    """``pocket`` (synthesised offline by the project) or ``dcase`` (the real datasets)."""
    fsd_dir: str | None = None
    """FSDKaggle2018 root (``train_post_competition.csv`` + ``audio_train/``); dcase only."""
    tau_dir: str | None = None
    """TAU Urban Acoustic Scenes 2019 development root (``meta.csv`` + ``audio/``); dcase only."""
    pocket_events_per_class: int = 40
    """Pocket corpus: event clips synthesised per class (41 classes)."""
    pocket_backgrounds: int = 400
    """Pocket corpus: 10-s background segments (must cover ``4 * mixtures_per_fold``)."""
    mixtures_per_fold: int = 2000
    """Mixtures per event fold (4 folds); the paper uses 2,000."""
    snrs: tuple[int, ...] = (0, 10, 20)
    """Event-to-background ratios in dB at which the plan is rendered."""
    seed: int = 1234
    """Seed of the fold assignment, the mixture plan and the pocket corpus."""
    workers: int = 0
    """Processes for rendering and features; 0 means one per CPU core."""
    exclude_bad: bool = False
    """Leave out source files the check finds unusable (listed in the data manifest) instead
    of stopping with the table of problems (``data --exclude-bad``)."""
    keep_recordings_in_one_fold: bool = False
    """Deal backgrounds to folds by TAU recording (``identifier``), so no recording is heard
    in two folds; off in the paper's recipe."""
    onsets: str = "fixed"
    """Where the events go: ``fixed`` (the paper's slots at 0.5, 3.0, 5.5 s) or ``random``
    (uniform onsets inside the clip, never overlapping); see :mod:`paperlib.data.plan`."""
    study_onsets: tuple[str, ...] = ()
    """Further onset recipes that ``data all`` / ``prepare_data`` build after the main one
    (e.g. ``[random]`` for the robustness study), at :attr:`study_snrs`."""
    study_snrs: tuple[int, ...] | None = None
    """SNRs of the :attr:`study_onsets` recipes; ``None`` means the SNRs of :attr:`snrs`."""

    def __post_init__(self) -> None:
        check_ranges(self, "data")


@dataclass(frozen=True)
class ModelConfig:
    """Model size and variant switches shared by the five models (paper Section III)."""

    width: float = 1.0
    """Channel-width multiplier: 1.0 is the paper's size."""
    decoder_activation: str = "relu"
    """Last activation of the 2APAE decoder: ``relu`` (paper and authors' code) or ``linear``."""
    attention: str = "authors"
    """Sigmoid/softmax placement in 2-step attention: ``authors`` (code) or ``paper`` (equations)."""
    time_pool: int = 1
    """Input frames averaged into one model frame (1 = the paper's 311 frames of 32 ms hop)."""
    mel_pool: int = 1
    """Adjacent mel bins averaged into one model bin (1 = the paper's 64 bins)."""

    def __post_init__(self) -> None:
        # the same checks as paperlib.models.ModelSpec, here so a profile typo fails at load time
        if not self.width > 0:
            raise ConfigError(f"model.width must be > 0, got {self.width!r}")
        if self.decoder_activation not in ("relu", "linear"):
            raise ConfigError(
                f"model.decoder_activation must be relu or linear, got {self.decoder_activation!r}"
            )
        if self.attention not in ("authors", "paper"):
            raise ConfigError(f"model.attention must be authors or paper, got {self.attention!r}")
        check_ranges(self, "model")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (authors' code: Adam 1e-3, batch 24, 80 epochs)."""

    epochs: int = 80
    """Training epochs; the checkpoint kept is the epoch with the best validation micro-AP.
    Ignored when ``steps`` is set."""
    steps: int | None = None
    """Training budget in optimiser steps instead of epochs: the run trains
    ``ceil(steps / steps_per_epoch)`` whole epochs (so it takes at least ``steps`` steps and
    every epoch is evaluated, checkpointed and resumable as usual), whatever the number of
    training clips. ``None`` (the default) counts ``epochs`` instead."""
    steps_by_model: dict[str, int] = field(default_factory=dict)
    """Step budgets of single models that replace ``steps`` for them, e.g. ``{GAP: 800}``
    (a slow learner given more steps than the others); empty by default. The run key holds
    only the budget of its own model."""
    batch_size: int = 24
    """Clips per optimisation step."""
    lr: float = 1e-3
    """Initial Adam learning rate (no weight decay)."""
    alpha: float = 0.001
    """Weight of the reconstruction MSE in the 2APAE loss (ignored by the baselines)."""
    lr_patience: int = 3
    """ReduceLROnPlateau patience (mode max on validation micro-AP)."""
    lr_factor: float = 0.1
    """ReduceLROnPlateau factor: PyTorch's default (the recipe names only mode and patience)."""
    eval_batch_size: int = 64
    """Clips per forward pass when scoring the validation fold (no effect on the numbers)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    seed: int = 0
    """Seed of weight initialisation and of the per-epoch shuffling."""
    num_threads: int = 0
    """CPU threads for torch; 0 leaves torch's default."""
    init: str = "paper"
    """Initialisation: ``paper`` (the authors' code) or ``prior`` (as ``paper``, then the last
    per-class layer set so that each class starts at its prior in the training split; see
    :mod:`paperlib.models.prior`)."""
    precision: str = "fp32"
    """Arithmetic of training and scoring: ``fp32`` (plain float32, as the authors trained;
    reproduces the paper), ``tf32`` (TF32 tensor cores on CUDA; identical to fp32 on a CPU) or
    ``bf16`` (bfloat16 autocast of the trunks). Heads, losses and metrics stay float32."""

    def __post_init__(self) -> None:
        check_ranges(self, "train")
        if self.init not in INITS:
            raise ConfigError(f"train.init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    def budget_text(self) -> str:
        """The training budget in words for tables and captions: ``80 epochs``, or
        ``380 steps (GAP, GWRP: 760)``."""
        if self.steps is None and not self.steps_by_model:
            return f"{self.epochs} epochs"
        by_steps: dict[int, list[str]] = {}
        for model, steps in self.steps_by_model.items():
            by_steps.setdefault(steps, []).append(model)
        others = "; ".join(f"{', '.join(m)}: {n:,}" for n, m in by_steps.items())
        main = f"{self.epochs} epochs" if self.steps is None else f"{self.steps:,} steps"
        return f"{main} ({others})" if others else main

    def steps_for(self, model: str) -> int | None:
        """The step budget of ``model``: its ``steps_by_model`` entry, else ``steps``."""
        return self.steps_by_model.get(model, self.steps)

    def epochs_for(self, steps_per_epoch: int, model: str | None = None) -> int:
        """Epochs to train with ``steps_per_epoch`` optimiser steps an epoch: ``epochs``, or
        ``ceil(budget / steps_per_epoch)`` when ``model``'s budget (:meth:`steps_for`; without
        ``model``, ``steps``) is set.

        Raises:
            ValueError: ``steps_per_epoch`` below 1.
        """
        steps = self.steps if model is None else self.steps_for(model)
        return epochs_for_budget(self.epochs, steps, steps_per_epoch)


def epochs_for_budget(epochs: int, steps: int | None, steps_per_epoch: int) -> int:
    """``epochs`` when ``steps`` is None, else ``ceil(steps / steps_per_epoch)`` (whole epochs).

    Raises:
        ValueError: ``steps_per_epoch`` below 1.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
    if steps is None:
        return int(epochs)
    return -(-int(steps) // steps_per_epoch)


@dataclass(frozen=True)
class GridConfig:
    """The experiment grid behind Tables IV and V."""

    models: tuple[str, ...] = ("GMP", "GAP", "GWRP", "AtrousAP", "2APAE")
    """Models of Table IV."""
    snrs: tuple[int, ...] = (0, 10, 20)
    """Event-to-background ratios (dB) of the grid; each needs its feature file."""
    folds: tuple[int, ...] = (1, 2, 3, 4)
    """Held-out folds; the tables report the mean ± std over them."""
    alphas: tuple[float, ...] = (0.0, 0.001, 0.01)
    """α values of the 2APAE ablation (Table V)."""
    linear_decoder: bool = True
    """Also run 2APAE with a linear last decoder layer in the ablation."""
    ablation_snrs: tuple[int, ...] | None = None
    """SNRs of the ablation cells (α values, linear decoder); ``None`` means all of ``snrs``."""
    repeat_models: tuple[str, ...] = ()
    """Models trained again with other seeds (``repeat_seeds``) to measure the spread between
    runs; an ordering of models is only stated when it exceeds that spread."""
    repeat_seeds: tuple[int, ...] = ()
    """Extra ``train.seed`` values of the repeated cells (the profile's seed is the first run)."""
    repeat_snrs: tuple[int, ...] | None = None
    """SNRs of the repeated cells; ``None`` means the ablation SNRs."""
    study_models: tuple[str, ...] = ()
    """Models of the robustness study (book chapter "Do the results survive moving events?"):
    trained at ``data.study_snrs`` in the paper's recipe and in each ``data.study_onsets``
    recipe (see :func:`paperlib.experiment.cells.study_cells`)."""
    workers: int = 1
    """Cells trained at once on a CPU (one process each, with ``train.num_threads`` threads);
    a CUDA grid runs ``cells_per_gpu`` cells per GPU instead."""
    cells_per_gpu: int = 1
    """Cells trained at once on each CUDA GPU (the ``gpus`` engine's processes per GPU; the
    ``ray`` engine asks for ``1 / cells_per_gpu`` of a GPU per cell). No effect on the numbers."""

    def __post_init__(self) -> None:
        check_ranges(self, "grid")


@dataclass(frozen=True)
class BookConfig:
    """How the book runner executes chapters."""

    cell_timeout_s: int = 3600
    """Per-cell execution timeout handed to papermill."""

    def __post_init__(self) -> None:
        check_ranges(self, "book")


@dataclass(frozen=True)
class Profile:
    """One named profile: everything a chapter, the trainer or the grid needs to know."""

    name: str
    description: str = ""
    requires_gpu: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    book: BookConfig = field(default_factory=BookConfig)

    def __post_init__(self) -> None:
        check_profile_name(self.name)


T = TypeVar("T")


class ConfigError(ValueError):
    """A profile or config that does not match the schema (the message says where and why)."""


def check_profile_name(name: Any) -> None:
    """A profile name names its workspace folder: it must be a plain name.

    Raises:
        ConfigError: a name with a path separator, ``..``, a leading dot or ``~``, or other
            characters than letters, digits, ``_``, ``.`` and ``-``.
    """
    if not is_plain_name(name):
        raise ConfigError(
            f"name must be a plain name (letters, digits, '_', '.', '-'; no path separators, "
            f"no '..'), got {name!r}: it names the workspace folder under PAPERLIB_WORKSPACE"
        )


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _items(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda values: all(check(v) for v in values)


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.source": (lambda v: v in ("pocket", "dcase"), "pocket or dcase"),
    "data.pocket_events_per_class": (lambda v: v >= 1, "an integer >= 1"),
    "data.pocket_backgrounds": (lambda v: v >= 1, "an integer >= 1"),
    "data.mixtures_per_fold": (lambda v: v >= 1, "an integer >= 1"),
    "data.snrs": (lambda v: len(v) >= 1 and len(set(v)) == len(v), "a non-empty list of distinct SNRs"),
    "data.seed": (lambda v: v >= 0, "an integer >= 0"),
    "data.onsets": (lambda v: v in ONSET_RECIPES, " or ".join(ONSET_RECIPES)),
    "data.study_onsets": (
        lambda v: len(set(v)) == len(v) and all(o in ONSET_RECIPES for o in v),
        f"a list of distinct recipes among {list(ONSET_RECIPES)}",
    ),
    "data.study_snrs": (
        lambda v: v is None or (len(v) >= 1 and len(set(v)) == len(v)),
        "a non-empty list of distinct SNRs (or null: the SNRs of data.snrs)",
    ),
    "data.workers": (lambda v: v >= 0, "an integer >= 0 (0: one per CPU core)"),
    "train.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "train.steps": (lambda v: v is None or v >= 1, "an integer >= 1 or null (count epochs)"),
    "train.steps_by_model": (
        lambda v: all(isinstance(k, str) and v[k] >= 1 for k in v),
        "a mapping of model names to integers >= 1",
    ),
    "train.batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "train.lr": (lambda v: _finite(v) and v > 0, "a number > 0"),
    "train.alpha": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "train.lr_patience": (lambda v: v >= 0, "an integer >= 0"),
    "train.lr_factor": (lambda v: _finite(v) and 0 < v < 1, "a number between 0 and 1 (exclusive)"),
    "train.eval_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "train.device": (
        lambda v: v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()),
        "auto, cpu, cuda or cuda:N",
    ),
    "train.seed": (lambda v: v >= 0, "an integer >= 0"),
    "train.num_threads": (lambda v: v >= 0, "an integer >= 0 (0: torch's default)"),
    "grid.models": (lambda v: len(v) >= 1, "a non-empty list of model names"),
    "grid.snrs": (lambda v: len(v) >= 1, "a non-empty list of SNRs"),
    "grid.folds": (lambda v: len(v) >= 1 and all(1 <= k <= 4 for k in v), "a non-empty list of folds 1-4"),
    "grid.alphas": (_items(lambda a: _finite(a) and a >= 0), "a list of numbers >= 0"),
    "grid.repeat_seeds": (_items(lambda v: v >= 0), "a list of integers >= 0"),
    "grid.workers": (lambda v: v >= 1, "an integer >= 1"),
    "grid.cells_per_gpu": (lambda v: v >= 1, "an integer >= 1"),
    "model.time_pool": (lambda v: v >= 1, "an integer >= 1 (1: the paper's 311 frames)"),
    "model.mel_pool": (lambda v: v >= 1, "an integer >= 1 (1: the paper's 64 mel bins)"),
    "book.cell_timeout_s": (lambda v: v >= 1, "an integer >= 1 (seconds)"),
}  # fmt: skip
"""Range of every numeric (and enumerated) profile field: ``section.key`` -> (test, expected)."""


def check_ranges(config: Any, section: str) -> None:
    """Check every field of ``config`` that has a rule in :data:`_RULES`.

    Raises:
        ConfigError: the first field out of range, naming ``section.key``, what is expected
            and the value given.
    """
    for f in dataclasses.fields(config):
        rule = _RULES.get(f"{section}.{f.name}")
        value = getattr(config, f.name)
        if rule is None:
            continue
        try:
            ok = bool(rule[0](value))
        except (TypeError, ValueError, AttributeError):  # a value of the wrong type
            ok = False
        if not ok:
            raise ConfigError(f"{section}.{f.name} must be {rule[1]}, got {value!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML value to ``annotation`` (dataclasses, tuples, optionals, scalars)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where=where)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        (key_type, value_type) = typing.get_args(annotation)
        return {
            _coerce(k, key_type, f"{where} key"): _coerce(v, value_type, f"{where}.{k}")
            for k, v in value.items()
        }
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], values: Mapping[str, Any], *, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``values``, rejecting unknown keys.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones) or a value of the
            wrong type (the message names the key path and the value).
    """
    types_by_name = _field_types(cls)
    prefix = f"{where}." if where else ""
    unknown = sorted(set(values) - set(types_by_name))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys{' in ' + where if where else ''}: {', '.join(sorted(types_by_name))}"
        )
    kwargs = {k: _coerce(v, types_by_name[k], prefix + k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {error}") from error


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (tuples become lists), ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a config dataclass or plain mapping (names runs, keys caches)."""
    payload = to_dict(config) if dataclasses.is_dataclass(config) else config
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def replace(config: T, **changes: Any) -> T:
    """Copy of a frozen config with ``changes`` (nested: ``replace(p, train={"epochs": 2})``).

    Raises:
        ConfigError: a key that the config does not have (the valid ones are listed).
    """
    current = to_dict(config)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(current.get(key), dict):
            current[key] = {**current[key], **value}
        else:
            current[key] = value
    return from_dict(type(config), current)


def _parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` with one-line errors naming ``where``, the line and the column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        hint = (
            "; tags such as !!python/... are not accepted, only plain YAML values"
            if isinstance(error, yaml.constructor.ConstructorError)
            else ""
        )
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}{hint}") from None


def profile_text(name_or_path: str | Path) -> tuple[str, str]:
    """``(text, source)`` of a shipped profile (by name) or of a ``.yaml`` profile file.

    Raises:
        ConfigError: an unknown profile name (the valid names are listed) or an unreadable file.
    """
    path = Path(name_or_path)
    if str(name_or_path) in PROFILE_NAMES:
        source = f"paperlib/profiles/{name_or_path}.yaml"
        return (
            resources.files("paperlib") / "profiles" / f"{name_or_path}.yaml"
        ).read_text(), source
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot be read as a UTF-8 YAML file ({error})") from None
    raise ConfigError(
        f"unknown profile {str(name_or_path)!r}; valid profiles: {', '.join(PROFILE_NAMES)} "
        "(or the path of a .yaml profile file)"
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name (``pocket``, ``paper``, ``smoke``) or a YAML file path.

    Raises:
        ConfigError: an unknown profile name (the valid names are listed), a file that is not
            a YAML mapping, or keys/values that do not match the schema.
    """
    text, text_source = profile_text(name_or_path)
    values = _parse_yaml(text, text_source)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{text_source}: expected a YAML mapping at the top level")
    try:
        return from_dict(Profile, values)
    except ConfigError as error:
        raise ConfigError(f"{text_source}: {error}") from error


def profile_with_overrides(profile: Profile, overrides: Mapping[str, Any]) -> Profile:
    """Apply dotted overrides such as ``{"train.epochs": 2, "data.snrs": [20]}``.

    An override of ``train.epochs`` alone also clears the profile's step budget
    (``train.steps``, ``train.steps_by_model``), so ``--set train.epochs=2`` trains two epochs
    in a profile that counts steps; give ``train.steps`` as well to keep a budget.

    Raises:
        ConfigError: a dotted key that names no section or field (valid ones are listed).
    """
    nested: dict[str, dict[str, Any]] = {}
    sections = {f.name for f in dataclasses.fields(Profile)}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in sections or (not key and isinstance(getattr(profile, section), tuple)):
            raise ConfigError(
                f"unknown override {dotted!r}; valid sections: {', '.join(sorted(sections))}"
            )
        if not key:
            nested[section] = value
        else:
            nested.setdefault(section, {})[key] = value
    train = nested.get("train")
    if isinstance(train, dict) and "epochs" in train:
        if not {"steps", "steps_by_model"} & set(train):
            train.update(steps=None, steps_by_model={})
    return replace(profile, **nested)


def check_flag(profile: Profile, flag: str, dotted: str, value: Any) -> None:
    """Check a command-line flag's value with the profile's own check of the field ``dotted``.

    A flag such as ``--alpha`` stands for a profile field (``train.alpha``); it is refused
    exactly when ``--set train.alpha=VALUE`` would be (types and ranges: :data:`_RULES`).

    Raises:
        ConfigError: ``--alpha nan: train.alpha must be a number >= 0, got nan``.
    """
    try:
        profile_with_overrides(profile, {dotted: value})
    except ConfigError as error:
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        raise ConfigError(f"{flag} {shown}: {error}") from None


def parse_assignment(item: str) -> tuple[str, Any]:
    """One command-line ``--set`` item: ``"train.epochs=2"`` -> ``("train.epochs", 2)``.

    The value is a YAML literal (``2``, ``0.5``, ``[0, 20]``, ``text``; empty means ``""``).

    Raises:
        ConfigError: an item without ``=`` or with an empty name.
    """
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(
            f"--set expects name=value or section.key=value (e.g. train.epochs=2), got {item!r}"
        )
    return name, (_parse_yaml(text, f"--set {item!r}") if text.strip() else "")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["data.seed=3", "data.snrs=[0, 20]"]`` -> ``{"data.seed": 3, "data.snrs": [0, 20]}``.

    Raises:
        ConfigError: a malformed item (see :func:`parse_assignment`).
    """
    return dict(parse_assignment(item) for item in items)


def load_profile_with_overrides(name_or_path: str | Path, items: Sequence[str] = ()) -> Profile:
    """A profile (see :func:`load_profile`) with command-line ``--set KEY=VALUE`` overrides."""
    return profile_with_overrides(load_profile(name_or_path), parse_overrides(items))
