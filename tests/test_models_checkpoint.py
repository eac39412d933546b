"""Checkpoints: state_dict + spec, loadable with weights_only=True, identical outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paperlib.models import (
    MODEL_NAMES,
    CheckpointError,
    ModelSpec,
    build_model,
    load_model,
    save_model,
)

SMALL = {"num_classes": 5, "time_steps": 24, "mel_bins": 12, "width": 0.125}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_reload_identical_outputs(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **SMALL)
    # one training step so BatchNorm running statistics differ from their initial values
    model.train()(torch.randn(4, 24, 12))["clip_probs"].sum().backward()
    model.eval()
    path = save_model(tmp_path / "sub" / "model.pt", model, extra={"epoch": 3})
    assert path.is_file() and list(path.parent.iterdir()) == [path]  # no temp file left
    raw = torch.load(path, weights_only=True)  # plain dict of tensors and primitives
    assert raw["spec"] == model.spec.to_dict() and raw["extra"] == {"epoch": 3}
    loaded = load_model(path)
    assert loaded.spec == model.spec and not loaded.training
    x = torch.randn(3, 24, 12)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_model(tmp_path / "missing.pt")
    model = build_model("GAP", **SMALL)
    path = save_model(tmp_path / "gap.pt", model)
    with pytest.raises(CheckpointError, match=r"width: file has 0.125, expected 1.0"):
        load_model(path, spec=ModelSpec("GAP", num_classes=5, time_steps=24, mel_bins=12))
    # a file whose weights do not fit its spec
    torch.save({"spec": ModelSpec("GMP", **SMALL).to_dict(), "state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad.pt: weights do not fit spec"):
        load_model(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"spec": {"name": "XYZ"}, "state_dict": {}}, tmp_path / "name.pt")
    with pytest.raises(CheckpointError, match="valid names: GMP, GAP, GWRP, AtrousAP, 2APAE"):
        load_model(tmp_path / "name.pt")
    with pytest.raises(CheckpointError, match="has no ModelSpec"):
        save_model(tmp_path / "x.pt", torch.nn.Linear(2, 2))
