"""train.precision: every mode trains on CPU, tf32 is fp32 there, bf16 stays close; flags."""

from __future__ import annotations

import pytest
import torch

from paperlib.models import MODEL_NAMES, build_model, has_decoder
from paperlib.run import predict, train_step
from paperlib.run.precision import PRECISIONS, Precision

SMALL = {"num_classes": 5, "time_steps": 24, "mel_bins": 12, "width": 0.125}
BF16_LOSS_RTOL = 0.02
"""Relative |bf16 - fp32| of the first training loss (measured: under 0.2 %)."""
BF16_PROB_ATOL = 0.02
"""|bf16 - fp32| of a clip probability after the step (measured: under 0.005)."""


def _one_step(name: str, precision: str) -> tuple[torch.nn.Module, dict, float]:
    torch.manual_seed(0)
    net = build_model(name, **SMALL).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 24, 12, generator=g)
    y = (torch.rand(4, 5, generator=g) > 0.5).float()
    out, loss, _, _ = train_step(
        net, optimiser, x, y, alpha=0.001, device=torch.device("cpu"), precision=precision
    )
    return net, out, loss.detach().item()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_precision_trains_and_tf32_is_fp32_on_cpu(name: str) -> None:
    runs = {mode: _one_step(name, mode) for mode in PRECISIONS}
    fp32_net, _, fp32_loss = runs["fp32"]
    tf32_net, _, tf32_loss = runs["tf32"]
    assert tf32_loss == fp32_loss  # TF32 is a CUDA format: on a CPU the same arithmetic
    tf32_state = tf32_net.state_dict()
    for key, value in fp32_net.state_dict().items():
        assert torch.equal(value, tf32_state[key]), key
    torch.manual_seed(0)
    initial = build_model(name, **SMALL).state_dict()
    assert any(not torch.equal(v, initial[k]) for k, v in fp32_net.state_dict().items())
    bf16_net, bf16_out, bf16_loss = runs["bf16"]
    assert bf16_out["clip_probs"].dtype == torch.float32  # heads stay fp32
    if has_decoder(name):  # the decoder (a trunk) really ran under bf16 autocast
        assert bf16_out["reconstruction"].dtype == torch.bfloat16
    assert bf16_loss == pytest.approx(fp32_loss, rel=BF16_LOSS_RTOL)
    for key, value in bf16_net.state_dict().items():
        assert torch.isfinite(value.float()).all(), key
    x = torch.randn(6, 24, 12, generator=torch.Generator().manual_seed(3))
    scores = {mode: predict(fp32_net, x, precision=mode) for mode in PRECISIONS}
    assert (scores["tf32"] == scores["fp32"]).all()
    assert abs(scores["bf16"] - scores["fp32"]).max() < BF16_PROB_ATOL


def test_unknown_precision_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown precision 'fp16'; valid values: fp32, tf32, bf16"
    ):
        Precision("fp16", torch.device("cpu"))


def test_tf32_flags_follow_the_precision_on_cuda_and_are_restored() -> None:
    # the flags are plain settings: they can be read and set without a GPU
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True  # PyTorch's cuDNN default
        with Precision("fp32", torch.device("cuda")).backends():
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        matmul.allow_tf32 = cudnn.allow_tf32 = False
        with Precision("tf32", torch.device("cuda")).backends():
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        with Precision("bf16", torch.device("cuda")).backends():
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        with Precision("tf32", torch.device("cpu")).backends():  # CPU: untouched
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before
