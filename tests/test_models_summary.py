"""Shape tables against the paper's Tables I-III; parameter and FLOP counts by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.models import ModelConfigError, ModelSpec, build_model
from paperlib.models.summary import complexity, complexity_table, layer_table, paper_tables

# Output sizes read from the paper (Deshmukh, Raj, Singh 2020), Section IV-D.
# Table I "Shared Segmentation Network", rows top to bottom.
PAPER_TABLE_I = [
    (1, 311, 64),  # log mel spectrogram
    (32, 311, 64),  # Conv2D {K=3, C=32}, BN, ReLU x 2
    (32, 311, 64),  # 2D Average pooling {K=3, S=1, P=1}
    (64, 311, 64),
    (64, 311, 64),
    (128, 311, 64),
    (128, 311, 64),
    (256, 311, 64),
    (256, 311, 64),
    (41, 311, 64),  # Conv2D {K=1, C=41}
]
# Table II "Classification Network".
PAPER_TABLE_II = [(41, 311, 64), (41, 311), (41,)]
# Table III "Decoder Network".
PAPER_TABLE_III = [
    (256, 311, 64),  # Internal T-F representation
    (128, 311, 64),
    (128, 311, 64),
    (64, 311, 64),
    (64, 311, 64),
    (32, 311, 64),
    (32, 311, 64),
    (1, 311, 64),  # the paper prints "311 × 64" (the single channel dropped)
]


def test_paper_tables_match_the_paper() -> None:
    tables = paper_tables(ModelSpec("2APAE"))
    assert list(tables["Table I"]["shape"]) == PAPER_TABLE_I
    assert list(tables["Table II"]["shape"]) == PAPER_TABLE_II
    # the code's Table III has one row more: the last decoder block's pooling (authors' code)
    assert list(tables["Table III"]["shape"]) == [*PAPER_TABLE_III, (1, 311, 64)]
    assert tables["Table III"]["layer"].iloc[-1].startswith("2D Average pooling")
    assert tables["Table III"]["layer"].iloc[-1].endswith("(code)")
    assert tables["Table III"]["layer"].str.endswith("(code)").sum() == 1
    assert tables["Table I"]["layer"].iloc[1] == "Conv2D: {K = 3, C = 32}, BN, ReLU × 2"
    assert tables["Table II"]["output_size"].iloc[1] == "41 × 311"


def test_paper_tables_from_a_real_model_agree_with_meta() -> None:
    spec = ModelSpec("2APAE", width=0.125, time_steps=40, mel_bins=16)
    torch.manual_seed(0)
    real = paper_tables(build_model("2APAE", width=0.125, time_steps=40, mel_bins=16))
    meta = paper_tables(spec)
    for key in meta:
        assert list(real[key]["shape"]) == list(meta[key]["shape"])
    with pytest.raises(ModelConfigError, match="needs a 2APAE"):
        paper_tables(ModelSpec("GMP"))


def _double_conv_params(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + 9 * c_out * c_out + 2 * 2 * c_out  # 2 convs + 2 BN (w, b)


def test_parameter_counts_by_hand() -> None:
    K, T, F = 41, 311, 64
    # 2APAE at paper size
    enc = sum(
        _double_conv_params(a, b) for a, b in zip((1, 32, 64, 128), (32, 64, 128, 256), strict=True)
    )
    dec = sum(
        _double_conv_params(a, b) for a, b in zip((256, 128, 64, 32), (128, 64, 32, 1), strict=True)
    )
    att = 2 * (F * F + F) + 2 * (T * T + T)
    expected = enc + (256 * K + K) + att + dec
    assert complexity(ModelSpec("2APAE"))["parameters"] == expected
    model = build_model("2APAE")
    assert sum(p.numel() for p in model.parameters()) == expected
    # VGG-like baselines at pocket width (32, 64, 128, 128) * 0.125 = (4, 8, 16, 16)
    trunk = sum(
        _double_conv_params(a, b) for a, b in zip((1, 4, 8, 16), (4, 8, 16, 16), strict=True)
    )
    assert complexity(ModelSpec("GWRP", width=0.125))["parameters"] == trunk + 16 * K + K
    # Atrous AP: three 5x5 convs (no bias) + BN, then two 1x1 convs with bias
    atrous = 25 * (1 * 64 + 64 * 128 + 128 * 256) + 2 * (64 + 128 + 256) + 2 * (256 * K + K)
    assert complexity(ModelSpec("AtrousAP"))["parameters"] == atrous


def test_macs_by_hand() -> None:
    K, T, F = 41, 311, 64
    enc_convs = [
        (1, 32),
        (32, 32),
        (32, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
    ]
    dec_convs = [(256, 128), (128, 128), (128, 64), (64, 64), (64, 32), (32, 32), (32, 1), (1, 1)]
    conv_macs = sum(9 * a * b * T * F for a, b in enc_convs + dec_convs) + 256 * K * T * F
    linear_macs = 2 * (K * T * F * F) + 2 * (K * T * T)
    macs = complexity(ModelSpec("2APAE"))["macs"]
    assert macs == conv_macs + linear_macs
    assert 34e9 < macs < 36e9  # REFERENCE_FACTS: "about 35 GMAC per clip forward"
    table = layer_table(ModelSpec("GMP", width=0.125))
    first = table.iloc[0]
    assert first["type"] == "Conv2d" and first["macs"] == 9 * 1 * 4 * T * F
    assert first["flops"] == 2 * first["macs"]


def test_complexity_table() -> None:
    table = complexity_table({"paper": 1.0, "pocket": 0.125}, names=("GMP", "2APAE"))
    assert list(table["model"]) == ["GMP", "GMP", "2APAE", "2APAE"]
    paper = table.set_index(["model", "size"])
    assert paper.loc[("2APAE", "paper"), "GMACs"] > paper.loc[("2APAE", "pocket"), "GMACs"] * 20
    assert np.allclose(table["train_GFLOPs"], 3 * table["GFLOPs"])
