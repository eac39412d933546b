"""What to download: the two Zenodo records, their archives and where each archive's files go.

Checksums come from the Zenodo record at run time (the MD5 Zenodo publishes per file). Where the
same MD5 is also published elsewhere, it is pinned here as a second, offline check that must agree
with the record: the TAU 2019 development MD5s below appear identically in ``dcase_util``
(``TAUUrbanAcousticScenes_2019_DevelopmentSet``) and in ``soundata`` (``tau2019uas``). No
independent publication of the FSDKaggle2018 MD5s was found, so those rely on the record alone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "ArchiveSpec", "DatasetSpec", "dataset_specs"]

DEFAULT_BASE_URL = "https://zenodo.org"


@dataclass(frozen=True)
class ArchiveSpec:
    """One archive of a record and where its files land.

    A member ``<strip>/<rel>`` (or ``<rel>`` when the archive has no such top folder) is placed at
    ``<dest>/<dataset folder>/<subdir>/<rel>``.
    """

    name: str
    """File name in the Zenodo record (``key``)."""
    strip: str
    """Top folder inside the archive to drop (kept as-is when absent)."""
    subdir: str = ""
    """Sub-folder of the dataset folder receiving the files (``""`` = the dataset folder)."""
    pinned_md5: str | None = None
    """MD5 published independently of the record; must agree with the record when set."""


@dataclass(frozen=True)
class DatasetSpec:
    """One Zenodo record and the layout the data readers expect from it."""

    key: str
    """Short name used on the command line (``fsd`` or ``tau``)."""
    title: str
    record_id: str
    """Zenodo record number (DOI 10.5281/zenodo.<record_id>)."""
    folder: str
    """Folder under ``--dest`` holding the dataset in the readers' layout."""
    archives: tuple[ArchiveSpec, ...]
    required: tuple[str, ...]
    """Paths (relative to ``folder``) that must exist afterwards: the readers' inputs."""


_TAU_BASE = "TAU-urban-acoustic-scenes-2019-development"
# MD5s of the 21 audio archives (1..21), as published by dcase_util and soundata.
_TAU_AUDIO_MD5 = (
    "aca4ebfd9ed03d5f747d6ba8c24bc728",
    "c4f170408ce77c8c70c532bf268d7be0",
    "c7214a07211f10f3250290d05e72c37e",
    "a6a62110f6699cf4432072acb1dffda6",
    "091a0b6d3c84b8e60e46940aa7d4a8a0",
    "114f4ca13e074391b98a1cfd8140de65",
    "5951dd2968f7a514e2afbe279c4f060d",
    "b0b63dc95b327e1509857c8d8a663cc3",
    "3c32a693a6b111ffb957be3c1dd22e9b",
    "0ffbf60006da520cc761fb74c878b98b",
    "599055d93b4c11057c29be2df54538d4",
    "98b8d162ff3665695c4c910e6c372cc8",
    "a356c08b1a5a21d433eba37ef87587f4",
    "f8969771e7faf7dd471d1cf78b0cf011",
    "4758c4b0fb7484faa632266e78850820",
    "a18acad9ede8ea76574216feb887f0bc",
    "1af7703484632f340da5c33662dc9632",
    "b67402bf3e08f4da394a7c18756c0fd2",
    "035db315f19106eb848b6f9b32bcc47c",
    "9cb28c74911bf8a3eadcf53f50a5b5d6",
    "0e44ed85c88ec036a9725b4dd1dfaea0",
)
_TAU_META_MD5 = "09782f2097e4735687af73c44919329c"

FSD = DatasetSpec(
    key="fsd",
    title="FSDKaggle2018 (training audio + metadata)",
    record_id="2552860",
    folder="FSDKaggle2018",
    archives=(
        ArchiveSpec("FSDKaggle2018.meta.zip", strip="FSDKaggle2018.meta"),
        ArchiveSpec(
            "FSDKaggle2018.audio_train.zip", strip="FSDKaggle2018.audio_train", subdir="audio_train"
        ),
    ),
    required=("train_post_competition.csv", "audio_train"),
)

TAU = DatasetSpec(
    key="tau",
    title="TAU Urban Acoustic Scenes 2019, development (audio + metadata)",
    record_id="2589280",
    folder="TAU2019",
    archives=(
        ArchiveSpec(f"{_TAU_BASE}.meta.zip", strip=_TAU_BASE, pinned_md5=_TAU_META_MD5),
        *(
            ArchiveSpec(f"{_TAU_BASE}.audio.{i}.zip", strip=_TAU_BASE, pinned_md5=md5)
            for i, md5 in enumerate(_TAU_AUDIO_MD5, start=1)
        ),
    ),
    required=("meta.csv", "audio"),
)

DATASETS: dict[str, DatasetSpec] = {spec.key: spec for spec in (FSD, TAU)}


def dataset_specs(only: str | None = None) -> tuple[DatasetSpec, ...]:
    """The datasets to fetch: both, or only ``"fsd"`` / ``"tau"``."""
    if only is None:
        return tuple(DATASETS.values())
    if only not in DATASETS:
        raise ValueError(f"unknown dataset {only!r}; expected one of {sorted(DATASETS)}")
    return (DATASETS[only],)
