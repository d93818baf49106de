"""Several data sets in one run, and OpenML's other 28x28 image sets read offline.

OpenML's Fashion-MNIST and Kuzushiji-MNIST are read through the real
``fetch_openml`` code path from a scikit-learn cache written by
``openml_cache.py`` (nothing downloads: the network is switched off).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TINY_TRAINING, run_snakemake, scheduled_jobs, synthetic_digits, write_config
from openml_cache import write_openml_cache

from poolup.cli import main as cli_main
from poolup.h5files import read_image_set
from poolup.preprocess import fetch
from poolup.records import read_json

# OpenML's names and ids of the two MNIST-shaped data sets the README names.
OPENML_SETS = {"fashion-mnist": ("Fashion-MNIST", 40996), "kuzushiji-mnist": ("Kuzushiji-MNIST", 41982)}
CASES = {"baseline": {"window": 1, "stride": 1}, "w2s2": {"window": 2, "stride": 2}}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt of scikit-learn to reach openml.org fails the test."""
    import sklearn.datasets._openml as openml

    def refuse(request, *args, **kwargs):
        raise AssertionError(f"tried to download {getattr(request, 'full_url', request)}")

    monkeypatch.setattr(openml, "urlopen", refuse)


def openml_cache(data_home, n=120):
    """Cache both data sets (different generated images each); return them by folder name."""
    written = {}
    for seed, (name, (openml_name, data_id)) in enumerate(OPENML_SETS.items(), start=3):
        images, labels = synthetic_digits(n, seed=seed)
        write_openml_cache(data_home, openml_name, data_id, images, labels)
        written[name] = images, labels
    return written


def dataset_entry(name, data_home, **extra):
    return {"name": name, "source": "openml", "openml_name": OPENML_SETS[name][0], "data_home": str(data_home), **extra}


@pytest.mark.parametrize("name", OPENML_SETS)
def test_openml_image_sets_are_read_from_the_cache(name, tmp_path, no_network):
    written = openml_cache(tmp_path / "sklearn")
    info = fetch(raw=tmp_path / "raw.h5", dataset=dataset_entry(name, tmp_path / "sklearn", image_shape=[28, 28]))
    raw = read_image_set(tmp_path / "raw.h5", image_shape=(28, 28), dtype="uint8")
    np.testing.assert_array_equal(raw.images, written[name][0])
    np.testing.assert_array_equal(raw.labels, written[name][1])
    assert raw.attrs["source"] == "openml" and info["n_images"] == 120


@pytest.mark.filterwarnings("ignore:Invalid cache")
def test_unknown_openml_name_is_one_line(tmp_path, no_network):
    from poolup.errors import PoolupError

    openml_cache(tmp_path / "sklearn")
    with pytest.raises(PoolupError, match="could not fetch 'EMNIST' from OpenML") as error:
        fetch(
            raw=tmp_path / "raw.h5",
            dataset={**dataset_entry("fashion-mnist", tmp_path / "sklearn"), "openml_name": "EMNIST"},
        )
    assert "\n" not in str(error.value) and not (tmp_path / "raw.h5").exists()


# The tables of every data set and one figure each: the other figures are drawn per data set by the same
# rules, which the tiny run checks one by one.
TARGETS = ["results/summary/datasets.csv", *(f"results/{name}/figures/tradeoff.png" for name in OPENML_SETS)]


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """The whole workflow on two OpenML data sets at once (1 seed, 2 cases), for real."""
    workdir = tmp_path_factory.mktemp("datasets")
    openml_cache(workdir / "sklearn")
    datasets = [dataset_entry(name, workdir / "sklearn") for name in OPENML_SETS]
    config = write_config(workdir / "two.yaml", datasets=datasets, cases=CASES, seeds=1, training=TINY_TRAINING)
    run_snakemake(workdir, "--cores", "2", *TARGETS, configfiles=[config])
    return workdir, datasets


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_every_stage_runs_per_data_set(two_datasets):
    workdir, _ = two_datasets
    for name, (openml_name, _) in OPENML_SETS.items():
        raw = read_image_set(workdir / f"results/{name}/raw.h5", image_shape=(28, 28), dtype="uint8")
        assert raw.attrs["source_detail"] == f"openml:{openml_name}"
        for case in CASES:
            metrics = read_json(workdir / f"results/{name}/{case}/seed0/test_metrics.json")
            assert metrics["case"] == case and metrics["n_test"] == 24
        assert (workdir / f"results/{name}/figures/tradeoff.png").is_file()
    assert cli_main(["verify", str(workdir / "results")]) == 0


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_the_datasets_table_compares_every_data_set(two_datasets):
    workdir, _ = two_datasets
    combined = pd.read_csv(workdir / "results/summary/datasets.csv")
    assert list(zip(combined["dataset"], combined["test_images"], combined["case"])) == [
        (name, kind, case) for name in OPENML_SETS for kind in ("stored", "raw") for case in CASES
    ]
    for name in OPENML_SETS:
        own = pd.read_csv(workdir / f"results/{name}/summary/summary.csv")
        pd.testing.assert_frame_equal(
            combined[combined["dataset"] == name].drop(columns="dataset").reset_index(drop=True), own, check_dtype=False
        )
    table = (workdir / "results/summary/datasets.md").read_text().splitlines()
    assert len(table) == 2 + len(OPENML_SETS) * 2 * len(CASES) and table[2].startswith(
        "| fashion-mnist | baseline | stored | 28x28 | 1.00 |"
    )


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_changing_one_data_set_reruns_only_that_data_set(two_datasets, tmp_path):
    workdir, datasets = two_datasets
    changed = [datasets[0], {**datasets[1], "max_images": 100}]
    config = write_config(tmp_path / "changed.yaml", datasets=changed, cases=CASES, seeds=1, training=TINY_TRAINING)
    result = run_snakemake(workdir, "-n", "--cores", "1", *TARGETS, configfiles=[config])
    jobs = scheduled_jobs(result.stdout)
    assert {rule for rule, wildcards in jobs if "dataset" not in wildcards} == {"compare_datasets"}
    assert {wildcards["dataset"] for _, wildcards in jobs if "dataset" in wildcards} == {"kuzushiji-mnist"}
    assert "fetch" in {rule for rule, _ in jobs}


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_reordered_settings_rerun_nothing(two_datasets, tmp_path):
    workdir, datasets = two_datasets
    reordered = [dict(reversed(list(entry.items()))) for entry in datasets]
    training = dict(reversed(list(TINY_TRAINING.items())))
    config = write_config(tmp_path / "reordered.yaml", seeds=1, training=training, cases=CASES, datasets=reordered)
    result = run_snakemake(workdir, "-n", "--cores", "1", *TARGETS, configfiles=[config])
    assert scheduled_jobs(result.stdout) == []


def test_a_config_files_list_replaces_the_data_sets(tmp_path):
    # Snakemake merges config files key by key but replaces lists: the offline config runs only its data set.
    result = run_snakemake(
        tmp_path, "-n", "--cores", "1", configfiles=[REPO / "config.yaml", REPO / "configs/offline.yaml"]
    )
    assert {wildcards["dataset"] for _, wildcards in scheduled_jobs(result.stdout) if "dataset" in wildcards} == {
        "mnist-bundled"
    }
