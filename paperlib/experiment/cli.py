"""``python -m paperlib train`` (one run) and ``python -m paperlib grid`` (the whole grid).

The handlers import the library when they run, not this module: ``python -m paperlib --help``
builds every sub-command's parser and must not wait for torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paperlib import paths
from paperlib.config import Profile, check_flag, load_profile_with_overrides

FLAG_FIELDS: dict[str, tuple[str, str, bool]] = {
    "alpha": ("--alpha", "train.alpha", False),
    "decoder_activation": ("--decoder-activation", "model.decoder_activation", False),
    "fold": ("--fold", "grid.folds", True),
    "models": ("--models", "grid.models", False),
    "snrs": ("--snrs", "grid.snrs", False),
    "folds": ("--folds", "grid.folds", False),
}
"""Argument -> (flag, the profile field whose check it passes, whether one item of a list)."""

ENGINE_NAMES = "local, serial, processes, gpus, ray"
"""``--engine`` values as the help shows them (``paperlib.experiment.engine.ENGINES``)."""


def _profile(args: argparse.Namespace) -> Profile:
    """The profile with ``--set`` applied, every flag checked as its profile field would be
    (before any folder is made)."""
    profile = load_profile_with_overrides(args.profile, args.set or [])
    for name, (flag, dotted, item) in FLAG_FIELDS.items():
        value = getattr(args, name, None)
        if value is not None:
            check_flag(profile, flag, dotted, [value] if item else value)
    return profile


def _workspace(profile: Profile, args: argparse.Namespace) -> Path:
    return Path(args.workspace) if args.workspace else paths.workspace_dir(profile.name)


def _prepare(profile: Profile, workspace: Path, progress: bool) -> None:
    from paperlib.data.pipeline import prepare_data

    prepare_data(profile, workspace, progress=progress)


def _train(args: argparse.Namespace) -> int:
    from paperlib.atomic import json_safe
    from paperlib.run import feature_path_for_snr, train_run

    profile = _profile(args)
    workspace = _workspace(profile, args)
    if args.features is None and args.prepare:
        if args.snr not in profile.data.snrs:
            feature_path_for_snr(workspace, args.snr)  # raises if no features for this SNR
        else:
            _prepare(profile, workspace, not args.no_progress)
    result = train_run(
        profile,
        workspace,
        model=args.model,
        snr_db=args.snr,
        fold=args.fold,
        alpha=args.alpha,
        decoder_activation=args.decoder_activation,
        feature_path=args.features,
        resume_from=args.resume,
        progress=not args.no_progress,
        wait=args.wait,
    )
    summary = {k: result.metrics[k] for k in ("micro_ap", "macro_ap", "roc_auc", "best_epoch")}
    print(  # strict JSON: NaN is null
        json.dumps(json_safe({"run_id": result.run_id, "run_dir": str(result.run_dir), **summary}))
    )
    return 0


def _grid(args: argparse.Namespace) -> int:
    from paperlib.experiment.engine import EngineError, GridCellError, check_engine_options
    from paperlib.experiment.grid import run_grid

    check_engine_options(args.engine, address=args.address, cpus_per_cell=args.cpus_per_cell)
    profile = _profile(args)
    workspace = _workspace(profile, args)
    if args.prepare:
        _prepare(profile, workspace, not args.no_progress)
    try:
        table = run_grid(
            profile,
            workspace,
            models=tuple(args.models) if args.models else None,
            snrs=tuple(args.snrs) if args.snrs else None,
            folds=tuple(args.folds) if args.folds else None,
            include_ablation=args.ablation,
            progress=not args.no_progress,
            engine=args.engine,
            address=args.address,
            cpus_per_cell=args.cpus_per_cell,
            wait=args.wait,
        )
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, GridCellError) else 2
    print(f"{table['run_id'].nunique()} runs; results in {paths.results_dir(workspace)}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="pocket", help="pocket, smoke, paper or a .yaml path")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a profile field, e.g. --set train.epochs=2 (repeatable)",
    )
    parser.add_argument(
        "--no-prepare",
        dest="prepare",
        action="store_false",
        help="do not prepare the data first (the feature files must exist)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--workspace",
        default=None,
        help="workspace folder (default: workspace/<profile>, or $PAPERLIB_WORKSPACE/<profile>)",
    )
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="stop with an error instead of waiting when another process is training the same "
        "run or running a grid on this workspace",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``grid`` sub-commands."""
    train = subparsers.add_parser("train", help="train and evaluate one model on one SNR/fold")
    _common(train)
    train.add_argument(
        "--model", required=True, help="GMP, GAP, GWRP, AtrousAP, 2APAE or 2APAE-local"
    )
    train.add_argument("--snr", type=int, required=True, help="SNR in dB (its features)")
    train.add_argument("--fold", type=int, required=True, help="held-out validation fold")
    train.add_argument("--alpha", type=float, default=None, help="2APAE MSE weight")
    train.add_argument(
        "--decoder-activation", default=None, help="2APAE last decoder activation: relu|linear"
    )
    train.add_argument("--features", type=Path, default=None, help="use this feature file")
    train.add_argument("--resume", type=Path, default=None, help="state.pt or run dir to resume")
    train.set_defaults(handler=_train)

    grid = subparsers.add_parser("grid", help="run the grid of Tables IV-V (cached cells)")
    _common(grid)
    grid.add_argument("--models", nargs="+", default=None, help="subset of models")
    grid.add_argument("--snrs", nargs="+", type=int, default=None, help="subset of SNRs")
    grid.add_argument("--folds", nargs="+", type=int, default=None, help="subset of folds")
    grid.add_argument(
        "--ablation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include the Table V cells (α values, linear decoder)",
    )
    grid.add_argument(
        "--engine",
        default="local",
        help=f"where the cells run ({ENGINE_NAMES}): local (this machine, default: "
        "serial, processes or gpus as the machine and grid.workers/grid.cells_per_gpu say) "
        "or ray (a Ray cluster; needs the 'cluster' extra)",
    )
    grid.add_argument(
        "--address",
        default=None,
        help="ray engine: the cluster to join (auto = the one running on this machine, or "
        "HOST:PORT of its head); without it a local Ray instance is started",
    )
    grid.add_argument(
        "--cpus-per-cell",
        type=float,
        default=None,
        metavar="N",
        help="ray engine: CPUs per cell (default 1); a CUDA profile asks for one GPU per cell",
    )
    grid.set_defaults(handler=_grid)
