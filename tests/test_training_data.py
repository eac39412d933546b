"""load_split: standardisation with training-fold statistics, and its error paths."""

import h5py
import numpy as np
import pytest
from synthetic_workspace import write_synthetic_features

from paperlib.run import (
    FeatureFileError,
    FoldNotPresentError,
    MissingFeaturesError,
    feature_path_for_snr,
    load_split,
)


@pytest.fixture
def features(tmp_path):
    return write_synthetic_features(
        tmp_path / "f.h5", clips_per_fold=5, time_steps=12, mel_bins=8, num_classes=6, seed=3
    )


def test_standardised_with_training_fold_stats(features):
    split = load_split(features, 2)
    with h5py.File(features) as h:
        x = h["features"][:]
        folds = h["folds"][:]
        weak = h["weak_targets"][:]
    train = x[folds != 2]
    mean = train.reshape(-1, 8).mean(0)
    std = train.reshape(-1, 8).std(0)
    np.testing.assert_allclose(split.x_train, (train - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(split.x_val, (x[folds == 2] - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(split.y_val, weak[folds == 2])
    assert split.x_train.shape == (15, 12, 8) and split.x_val.dtype == np.float32
    # training folds standardised to zero mean / unit std per mel bin
    np.testing.assert_allclose(split.x_train.reshape(-1, 8).mean(0), 0, atol=1e-4)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFeaturesError, match="does not exist"):
        load_split(tmp_path / "nope.h5", 1)


def test_not_hdf5(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(FeatureFileError, match="not a readable HDF5"):
        load_split(bad, 1)


def test_incomplete_file(tmp_path):
    path = write_synthetic_features(
        tmp_path / "f.h5", clips_per_fold=2, time_steps=4, mel_bins=4, num_classes=3,
        events_per_clip=1, complete=False,
    )  # fmt: skip
    with pytest.raises(FeatureFileError, match="incomplete"):
        load_split(path, 1)


def test_missing_dataset(features):
    with h5py.File(features, "a") as h:
        del h["weak_targets"]
    with pytest.raises(FeatureFileError, match="lacks a required dataset"):
        load_split(features, 1)


def test_fold_not_present_lists_present(tmp_path):
    path = write_synthetic_features(
        tmp_path / "f.h5", clips_per_fold=2, folds=(1, 2, 3), time_steps=4, mel_bins=4,
        num_classes=3, events_per_clip=1,
    )  # fmt: skip
    with pytest.raises(FoldNotPresentError, match=r"fold 4 .*folds present: 1, 2, 3"):
        load_split(path, 4)


def test_snr_without_features_names_present(tmp_path):
    from paperlib import paths

    write_synthetic_features(
        paths.feature_file(tmp_path, 20), clips_per_fold=2, time_steps=4, mel_bins=4,
        num_classes=3, events_per_clip=1,
    )  # fmt: skip
    assert feature_path_for_snr(tmp_path, 20).is_file()
    with pytest.raises(MissingFeaturesError, match=r"SNR 5 dB.*snr20db"):
        feature_path_for_snr(tmp_path, 5)


def test_pool_input_averages_groups_by_hand():
    from paperlib.run import pool_input

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 5)).astype(np.float32)
    pooled = pool_input(x, time_pool=2, mel_pool=2)
    assert pooled.shape == (2, 3, 2)
    # group (t=1, f=0) covers frames 2..3 and bins 0..1; trailing frame 6 and bin 4 are dropped
    assert pooled[1, 1, 0] == pytest.approx(x[1, 2:4, 0:2].mean(), abs=1e-6)
    assert pool_input(x, 1, 1) is not None and np.array_equal(pool_input(x, 1, 1), x)
    with pytest.raises(ValueError, match="time_pool=8"):
        pool_input(x, time_pool=8)


def test_load_split_pools_after_standardising(features):
    from paperlib.run import pool_input

    full = load_split(features, 2)
    pooled = load_split(features, 2, time_pool=2, mel_pool=4)
    np.testing.assert_allclose(pooled.x_val, pool_input(full.x_val, 2, 4), atol=1e-6)
    assert pooled.x_train.shape[1:] == (full.x_train.shape[1] // 2, full.x_train.shape[2] // 4)


def test_frame_centres_of_pooled_frames_are_group_means():
    from paperlib.data.features import frame_centres_s, time_pool_for

    single = frame_centres_s()
    assert single.shape == (311,) and single[0] == pytest.approx(1024 / 32000)
    pooled = frame_centres_s(time_pool=2)
    assert pooled.shape == (155,)
    np.testing.assert_allclose(pooled, single[:310].reshape(155, 2).mean(axis=1))
    assert [time_pool_for(n) for n in (311, 155, 103, 77)] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="200 frames"):
        time_pool_for(200)


def test_unpool_input_spreads_each_group_back():
    from paperlib.run import pool_input, unpool_input

    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 311, 64)).astype(np.float32)
    pooled = pool_input(x, 4, 4)[0]
    back = unpool_input(pooled, (311, 64))
    assert back.shape == (311, 64)
    assert back[5, 9] == pooled[1, 2]  # frame 5 is in group 1 (frames 4-7), bin 9 in group 2
    assert back[310, 63] == pooled[76, 15]  # the dropped last frames repeat the last group
    np.testing.assert_allclose(pool_input(back[None], 4, 4)[0], pooled, atol=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        unpool_input(np.zeros((400, 4)), (311, 64))
