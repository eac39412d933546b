"""Layer-by-layer shape tables, parameter counts and forward FLOPs, measured from the model.

Nothing here is typed by hand: forward hooks record what each layer really outputs, so the
tables in chapter 2 (the paper's Tables I-III) are regenerated from the code. A
:class:`~paperlib.models.ModelSpec` is run on PyTorch's ``meta`` device (shapes only, no
arithmetic, instant even at paper size); a built model is run for real on one zero clip.

Counting rules (per clip, forward pass): a multiply-accumulate (MAC) is 2 FLOPs.

- ``Conv2d`` / ``Conv1d``: MACs = output elements x (C_in / groups) x kernel elements (k_h x k_w,
  or k); + 1 FLOP per output element for a bias.
- ``Linear``: MACs = output elements x in_features; + 1 FLOP per output element for a bias.
- ``BatchNorm2d`` / ``BatchNorm1d``: 2 FLOPs per element (scale and shift, inference form).
- ``AvgPool2d``: k x k FLOPs per output element (k*k - 1 additions and a division).
- ``ReLU``: 1 FLOP per element.

Functional operations (softmax, sigmoid, weighted sums, GWRP's sort) are not counted; they
are a small fraction of the convolutions. A training step (forward + backward) costs about 3x
the forward FLOPs, the usual rule of thumb (used by ``benchmarks/bench_models.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from paperlib.models.blocks import ConvBlock
from paperlib.models.registry import build_model_from_spec
from paperlib.models.spec import MODEL_NAMES, ModelConfigError, ModelSpec

TRAIN_STEP_FLOP_FACTOR = 3.0
"""forward + backward ~ 3 x forward FLOPs (rule of thumb for conv nets)."""


def _as_model(model_or_spec: nn.Module | ModelSpec) -> tuple[nn.Module, torch.device]:
    if isinstance(model_or_spec, ModelSpec):
        with torch.device("meta"):
            model = build_model_from_spec(model_or_spec)
        return model.eval(), torch.device("meta")
    try:
        device = next(model_or_spec.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    return model_or_spec, device


def _spec_of(model: nn.Module) -> ModelSpec:
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise ModelConfigError(f"{type(model).__name__} has no ModelSpec in .spec")
    return spec


def _run(model: nn.Module, device: torch.device, batch: int = 1) -> None:
    spec = _spec_of(model)
    x = torch.zeros(batch, spec.time_steps, spec.mel_bins, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return output[-1]  # attention steps return (weights, output)
    if isinstance(output, Mapping):
        return output["clip_probs"]
    raise TypeError(f"cannot read a tensor from {type(output).__name__}")


def layer_cost(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> tuple[int, int]:
    """(MACs, FLOPs) of one leaf module's call, for the whole batch (see the module docstring)."""
    n_out = output.numel()
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        macs = n_out * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return macs, 2 * macs + (n_out if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        macs = n_out * module.in_features
        return macs, 2 * macs + (n_out if module.bias is not None else 0)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return 0, 2 * n_out
    if isinstance(module, nn.AvgPool2d):
        k = module.kernel_size
        k_h, k_w = (k, k) if isinstance(k, int) else k
        return 0, k_h * k_w * n_out
    if isinstance(module, nn.ReLU):
        return 0, n_out
    return 0, 0


def layer_table(model_or_spec: nn.Module | ModelSpec) -> pd.DataFrame:
    """One row per leaf layer in call order: what each layer outputs and costs per clip.

    Args:
        model_or_spec: a spec (run on the meta device, instant) or a built model (one real
            forward pass of a zero clip, batch 1, no gradients).

    Returns:
        DataFrame with columns ``layer`` (qualified module name), ``type``, ``output_shape``
        (tuple without the batch axis), ``parameters``, ``macs`` and ``flops`` (per clip).
    """
    model, device = _as_model(model_or_spec)
    rows: list[dict[str, Any]] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None or isinstance(module, nn.Identity):
            continue

        def hook(mod: nn.Module, inputs: tuple[Any, ...], output: Any, name: str = name) -> None:
            out = _first_tensor(output)
            macs, flops = layer_cost(mod, inputs, out)
            rows.append(
                {
                    "layer": name,
                    "type": type(mod).__name__,
                    "output_shape": tuple(out.shape[1:]),
                    "parameters": sum(p.numel() for p in mod.parameters(recurse=False)),
                    "macs": macs,
                    "flops": flops,
                }
            )

        handles.append(module.register_forward_hook(hook))
    try:
        _run(model, device)
    finally:
        for handle in handles:
            handle.remove()
    return pd.DataFrame(
        rows, columns=["layer", "type", "output_shape", "parameters", "macs", "flops"]
    )


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def complexity(model_or_spec: nn.Module | ModelSpec) -> dict[str, float]:
    """Parameters, forward MACs and forward FLOPs per clip of one model.

    Returns:
        ``{"parameters", "macs", "flops"}`` (per clip, forward pass).
    """
    model, _ = _as_model(model_or_spec)
    table = layer_table(model_or_spec)
    return {
        "parameters": count_parameters(model),
        "macs": int(table["macs"].sum()),
        "flops": int(table["flops"].sum()),
    }


def complexity_table(
    widths: Mapping[str, float],
    *,
    names: Iterable[str] = MODEL_NAMES,
    num_classes: int = 41,
    time_steps: int = 311,
    mel_bins: int = 64,
) -> pd.DataFrame:
    """Parameters and forward cost of each model at each named width (meta device, instant).

    Args:
        widths: size label -> width multiplier, e.g. ``{"paper": 1.0, "pocket": 0.125}``.
        names: model names.

    Returns:
        DataFrame with columns ``model``, ``size``, ``width``, ``parameters``, ``GMACs``,
        ``GFLOPs`` (forward, per clip) and ``train_GFLOPs`` (forward + backward estimate).
    """
    rows = []
    for name in names:
        for label, width in widths.items():
            spec = ModelSpec(
                name=name,
                num_classes=num_classes,
                time_steps=time_steps,
                mel_bins=mel_bins,
                width=width,
            )
            cost = complexity(spec)
            rows.append(
                {
                    "model": name,
                    "size": label,
                    "width": width,
                    "parameters": cost["parameters"],
                    "GMACs": cost["macs"] / 1e9,
                    "GFLOPs": cost["flops"] / 1e9,
                    "train_GFLOPs": TRAIN_STEP_FLOP_FACTOR * cost["flops"] / 1e9,
                }
            )
    return pd.DataFrame(rows)


def _size_text(shape: tuple[int, ...]) -> str:
    return " × ".join(str(s) for s in shape)


def _block_label(block: ConvBlock) -> str:
    last = block.convs[-1]
    act = "ReLU" if isinstance(last, nn.ReLU) else "linear"
    act_text = "ReLU × 2" if act == "ReLU" else "ReLU, then linear"
    return f"Conv2D: {{K = 3, C = {block.out_channels}}}, BN, {act_text}"


def paper_tables(model_or_spec: nn.Module | ModelSpec) -> dict[str, pd.DataFrame]:
    """The 2APAE's Tables I (encoder), II (classification) and III (decoder), from the model.

    Rows follow the paper's rows; each output size is recorded by a forward hook. Table III
    has one row more than the paper's: the average pooling of the last decoder block, which the
    authors' code has and the paper's table omits (its label ends in "(code)").

    Returns:
        ``{"Table I": df, "Table II": df, "Table III": df}``, each with columns ``layer``,
        ``output_size`` (text as the paper writes it, "C × T × F") and ``shape`` (tuple,
        without the batch axis).

    Raises:
        ModelConfigError: the model is not a 2APAE.
    """
    model, device = _as_model(model_or_spec)
    spec = _spec_of(model)
    if spec.name != "2APAE":
        raise ModelConfigError(f"paper_tables needs a 2APAE model, got {spec.name!r}")
    records: dict[str, list[tuple[str, tuple[int, ...]]]] = {
        "Table I": [],
        "Table II": [],
        "Table III": [],
    }
    handles = []

    def watch(table: str, module: nn.Module, label: str, *, pre: bool = False) -> None:
        if pre:

            def pre_hook(mod: nn.Module, inputs: tuple[Any, ...]) -> None:
                records[table].append((label, tuple(inputs[0].shape[1:])))

            handles.append(module.register_forward_pre_hook(pre_hook))
            return

        def hook(mod: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            records[table].append((label, tuple(_first_tensor(output).shape[1:])))

        handles.append(module.register_forward_hook(hook))

    pool_label = "2D Average pooling {K = 3, S = 1, P = 1}"
    watch("Table I", model.encoder, "log mel spectrogram", pre=True)
    for block in model.encoder.blocks:
        watch("Table I", block.convs, _block_label(block))
        watch("Table I", block.pool, pool_label)
    watch("Table I", model.class_conv, f"Conv2D: {{K = 1, C = {spec.num_classes}}}")
    watch("Table II", model.attention, "class T-F representation", pre=True)
    watch("Table II", model.attention.step1, "1st step Attention Pooling")
    watch("Table II", model.attention.step2, "2nd step Attention Pooling")
    watch("Table III", model.decoder, "Internal T-F representation", pre=True)
    last = len(model.decoder.blocks) - 1
    for i, block in enumerate(model.decoder.blocks):
        watch("Table III", block.convs, _block_label(block))
        if not isinstance(block.pool, nn.Identity):
            # the paper's Table III has no pooling row after its last block; the code pools
            note = " (code)" if i == last else ""
            watch("Table III", block.pool, pool_label + note)
    try:
        _run(model, device)
    finally:
        for handle in handles:
            handle.remove()
    return {
        table: pd.DataFrame(
            {
                "layer": [label for label, _ in rows],
                "output_size": [_size_text(shape) for _, shape in rows],
                "shape": [shape for _, shape in rows],
            }
        )
        for table, rows in records.items()
    }


def part_table(table: pd.DataFrame) -> pd.DataFrame:
    """Sum a :func:`layer_table` by top-level part (``encoder``, ``attention``, ``decoder``...).

    Returns:
        DataFrame indexed by part, in call order, with ``parameters``, ``macs``, ``flops`` and
        ``share_of_flops`` (fraction of the model's forward FLOPs).
    """
    parts = table["layer"].str.split(".").str[0]
    summed = table.groupby(parts, sort=False)[["parameters", "macs", "flops"]].sum()
    summed.index.name = "part"
    summed["share_of_flops"] = summed["flops"] / summed["flops"].sum()
    return summed
