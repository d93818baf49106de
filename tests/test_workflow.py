"""Real Snakemake runs of the preprocessing stages on a small real data set."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_snakemake, scheduled_jobs, write_config
from poolup.artifacts import read_image_set, read_json

CASES = {"baseline": {"window": 1, "stride": 1}, "w2s2": {"window": 2, "stride": 2}, "w3s1": {"window": 3, "stride": 1}}


def small_config(path: Path, cases=CASES, **extra) -> Path:
    return write_config(path, dataset={"name": "tiny", "source": "bundled", "max_images": 200}, cases=cases, **extra)


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    config = small_config(workdir / "tiny.yaml")
    targets = [f"results/tiny/{case}/upsampled.h5" for case in CASES]
    run_snakemake(workdir, "--cores", "2", *targets, configfiles=[config])
    return workdir, config


def test_preprocessing_artifacts(preprocessed):
    workdir, _ = preprocessed
    raw = read_image_set(workdir / "results/tiny/raw.h5", image_shape=(28, 28), dtype="uint8")
    assert raw.images.shape == (200, 28, 28) and raw.attrs["source"] == "bundled"
    for case, spec in CASES.items():
        side = (28 - spec["window"]) // spec["stride"] + 1
        stored = read_image_set(workdir / f"results/tiny/{case}/stored.h5", image_shape=(side, side), dtype="uint8")
        assert stored.attrs["source_sha256"] == raw.attrs["content_sha256"]
        storage = read_json(workdir / f"results/tiny/{case}/storage.json")
        assert storage["stored_pixels"] == side * side and storage["n_images"] == 200
        up = read_image_set(workdir / f"results/tiny/{case}/upsampled.h5", image_shape=(28, 28), dtype="float32")
        np.testing.assert_array_equal(up.labels, raw.labels)
        assert (workdir / f"results/logs/tiny/{case}/store.log").read_text().strip()
        assert (workdir / f"results/benchmarks/tiny/{case}/upsample.tsv").is_file()
    baseline = read_image_set(workdir / "results/tiny/baseline/upsampled.h5")
    np.testing.assert_array_equal(baseline.images, raw.images.astype(np.float32))


def _dry_run(workdir, config, targets):
    result = run_snakemake(workdir, "-n", "--cores", "1", *targets, configfiles=[config])
    return {(rule, wildcards.get("case")) for rule, wildcards in scheduled_jobs(result.stdout)}


def test_changing_one_stride_reruns_only_that_case(preprocessed, tmp_path):
    workdir, _ = preprocessed
    changed = small_config(tmp_path / "changed.yaml", cases={**CASES, "w3s1": {"window": 3, "stride": 2}})
    targets = [f"results/tiny/{case}/upsampled.h5" for case in CASES]
    assert _dry_run(workdir, changed, targets) == {("store", "w3s1"), ("upsample", "w3s1")}


def test_adding_a_case_schedules_only_its_jobs(preprocessed, tmp_path):
    workdir, _ = preprocessed
    added = small_config(tmp_path / "added.yaml", cases={**CASES, "w2s1": {"window": 2, "stride": 1}})
    targets = [f"results/tiny/{case}/upsampled.h5" for case in [*CASES, "w2s1"]]
    assert _dry_run(workdir, added, targets) == {("store", "w2s1"), ("upsample", "w2s1")}


def test_changing_the_grid_reruns_only_upsampling(preprocessed, tmp_path):
    workdir, _ = preprocessed
    changed = small_config(tmp_path / "grid.yaml", interpolation={"grid": "centers"})
    targets = [f"results/tiny/{case}/upsampled.h5" for case in CASES]
    assert _dry_run(workdir, changed, targets) == {("upsample", case) for case in CASES}


def test_nothing_to_do_when_unchanged(preprocessed):
    workdir, config = preprocessed
    assert _dry_run(workdir, config, [f"results/tiny/{case}/upsampled.h5" for case in CASES]) == set()
