"""Set-ups that cannot work are refused before any work: the CNN's smallest input and the training split.

The split check is compared with scikit-learn itself: over a grid of data set
sizes, class counts and settings, ``check_split`` refuses exactly the set-ups
whose real split (``split_indices``, then ``carve_validation`` for early
stopping) raises, and the CNN's smallest input with Keras building the model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml
from conftest import TINY_TRAINING, run_snakemake, tiny_config

from poolup.errors import PoolupError
from poolup.model import build_model, smallest_input_side
from poolup.preprocess import fetch, fetch_source
from poolup.sources import subsample
from poolup.splits import SplitCheck, carve_validation, check_split, split_indices


def real_split_fails(labels: np.ndarray, check: SplitCheck) -> bool:
    """Whether any seed's real split (what a training run does) raises."""
    for seed in check.seeds:
        try:
            train, _ = split_indices(labels, check.train_size, seed, check.stratify)
            if check.early_stopping:
                carve_validation(train, labels, check.validation_size, seed, check.stratify)
        except ValueError:
            return True
    return False


def labels_of(counts: tuple[int, ...]) -> np.ndarray:
    """Labels with these class counts, interleaved (no class sorted at one end)."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return labels[np.random.default_rng(0).permutation(labels.size)]


GRID = list(
    itertools.product(
        [(1, 5), (2, 2), (2, 3, 5), (3, 3, 3), (5, 1, 9), (20, 20), (4, 4, 4, 4, 4)],  # images per class
        [0.05, 0.2, 0.5, 0.8, 0.95],  # train_size
        [False, True],  # stratify
        [False, True],  # early stopping
        [0.1, 0.5, 0.9],  # validation_size
    )
)


def test_the_split_check_refuses_exactly_what_scikit_learn_refuses():
    refused = 0
    for counts, train_size, stratify, stopping, validation_size in GRID:
        labels = labels_of(counts)
        check = SplitCheck("d", train_size, stratify, stopping, validation_size, (0, 1, 2))
        try:
            check_split(labels, check)
            ours = False
        except PoolupError as error:
            ours = True
            assert "\n" not in str(error) and str(error).startswith("config key 'training.")
        assert ours == real_split_fails(labels, check), (counts, train_size, stratify, stopping, validation_size)
        refused += ours
    assert 0 < refused < len(GRID)  # the grid holds both kinds


@pytest.mark.parametrize(
    ("labels", "check", "message"),
    [
        (
            np.arange(200) % 10,
            SplitCheck("tiny", 0.001, False, False, 0.1, (0,)),
            "'training.train_size': 0.001 of the 200 images of data set 'tiny' leaves the training part empty; use a "
            "train_size of at least 0.005",
        ),
        (
            np.r_[np.arange(199) % 9, 9],
            SplitCheck("tiny", 0.8, True, False, 0.1, (0,)),
            "'training.stratify': class 9 has only one image among the 200 images of data set 'tiny'",
        ),
        (
            np.arange(200) % 10,
            SplitCheck("tiny", 0.04, True, False, 0.1, (0,)),
            "leaves 8 images in the training part for 10 classes",
        ),
        (
            np.arange(200) % 10,
            SplitCheck("tiny", 0.8, False, True, 0.999, (0,)),
            "'training.early_stopping.validation_size': 0.999 of the 160 training images of data set 'tiny' leaves "
            "nothing to fit",
        ),
    ],
)
def test_each_impossible_split_is_one_line_naming_the_key(labels, check, message):
    with pytest.raises(PoolupError, match="config key") as info:
        check_split(labels, check)
    assert message in str(info.value)


def test_the_cnns_smallest_input_is_what_keras_can_build():
    side = smallest_input_side()
    assert side == 16
    build_model((side, side, 1))
    build_model((side, side + 20, 1))  # one side at the limit suffices
    with pytest.raises(ValueError):  # Keras itself: a pooling or convolution of a 0-pixel map
        build_model((side - 1, side - 1, 1))


def test_images_too_small_for_the_cnn_are_refused_before_any_job(tmp_path):
    config = tiny_config(tmp_path / "small.yaml", cases={"baseline": {"window": 1, "stride": 1}})
    config.write_text(config.read_text().replace("max_images: 200", "max_images: 200\n  image_shape: [4, 4]"))
    result = run_snakemake(tmp_path, "-n", configfiles=[config], check=False)
    assert result.returncode == 1
    assert (
        "poolup: config error: config key 'datasets.0.image_shape': 4x4 images of data set 'tiny' are smaller than "
        "the CNN's smallest input, 16x16" in result.stderr
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "results").exists()


def test_max_images_above_the_data_is_refused(tmp_path):
    with pytest.raises(PoolupError, match=r"datasets\[\]\.max_images 9000 is more than the 5,000 images of bundled"):
        fetch(raw=tmp_path / "raw.h5", dataset={"source": "bundled", "max_images": 9000})
    assert not (tmp_path / "raw.h5").exists()
    exactly = fetch(raw=tmp_path / "raw.h5", dataset={"source": "bundled", "max_images": 5000})
    assert exactly["n_images"] == 5000


def test_a_subset_with_a_class_of_one_image_is_refused():
    labels = np.r_[np.zeros(60, np.uint8), np.arange(1, 10).repeat(3)]
    keep = np.sort(np.random.default_rng(0).choice(labels.size, size=60, replace=False))
    assert np.bincount(labels[keep], minlength=10).min() == 1  # subset_seed 0 keeps class 1 once
    with pytest.raises(
        PoolupError, match=r"max_images 60: the subset \(subset_seed 0\) has only 1 image of class 1, 5"
    ):
        subsample(np.zeros((labels.size, 4, 4), np.uint8), labels, 60, 0)


def test_fetch_checks_the_split_before_it_writes(tmp_path):
    check = SplitCheck("tiny", 0.95, True, False, 0.1, (0,))
    np.savez(tmp_path / "d.npz", images=np.zeros((30, 16, 16), np.uint8), labels=np.arange(30) % 3)
    with pytest.raises(
        PoolupError, match="'training.train_size': 0.95 of the 30 images .* leaves 2 images in the test"
    ):
        fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "d.npz"), split=check)
    assert list(tmp_path.iterdir()) == [tmp_path / "d.npz"]


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """A working directory whose raw.h5 is fetched (200 bundled digits), nothing else run."""
    workdir = tmp_path_factory.mktemp("fetched")
    run_snakemake(workdir, "--cores", "1", "results/tiny/raw.h5", configfiles=[tiny_config(workdir / "tiny.yaml")])
    return workdir


@pytest.mark.parametrize(
    ("training", "before_fetch", "message"),
    [
        (
            {"train_size": 0.001},
            True,
            "config key 'training.train_size': 0.001 of the 200 images of data set 'tiny' leaves the training part "
            "empty; use a train_size of at least 0.005 or raise datasets[].max_images",
        ),
        (
            {"epochs": 2, "early_stopping": {"enabled": True, "validation_size": 0.999}},
            True,
            "config key 'training.early_stopping.validation_size': 0.999 of the 160 training images",
        ),
        (
            {"train_size": 0.03, "stratify": True},
            False,  # the classes are known from the data only
            "config key 'training.train_size': 0.03 of the 200 images of data set 'tiny' leaves 6 images in the "
            "training part for 10 classes",
        ),
    ],
)
def test_an_impossible_split_stops_before_any_job(fetched, tmp_path, training, before_fetch, message):
    """Known from raw.h5's labels, or before the fetch from max_images alone: no job starts."""
    config = tiny_config(tmp_path / "changed.yaml", training={**TINY_TRAINING, **training})
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for where in (fetched, fresh) if before_fetch else (fetched,):
        result = run_snakemake(where, "-n", configfiles=[config], check=False)
        assert result.returncode == 1, result.stdout[-2000:]
        assert f"poolup: config error: {message}" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not (fresh / "results").exists()


def test_class_counts_known_only_from_the_data_stop_before_any_job(tmp_path):
    """Stratified early stopping on 40 images: 3 validation images for 10 classes, found in raw.h5's labels."""
    config = tiny_config(tmp_path / "forty.yaml")
    config.write_text(config.read_text().replace("max_images: 200", "max_images: 40"))
    run_snakemake(tmp_path, "--cores", "1", "results/tiny/raw.h5", configfiles=[config])
    stratified = yaml.safe_load(config.read_text())
    stratified["training"].update(
        train_size=0.75, stratify=True, epochs=2, early_stopping={"enabled": True, "validation_size": 0.1}
    )
    (tmp_path / "stratified.yaml").write_text(yaml.safe_dump(stratified))
    result = run_snakemake(tmp_path, "-n", configfiles=[tmp_path / "stratified.yaml"], check=False)
    assert result.returncode == 1
    assert (
        "poolup: config error: config key 'training.early_stopping.validation_size': with stratify, the training "
        "part of seed 0 (30 images of data set 'tiny') would leave 27 images to fit and 3 to validate for 10 classes"
    ) in result.stderr, result.stderr[-2000:]
