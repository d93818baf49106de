"""Real Snakemake runs of the preprocessing stages on a small real data set."""

import numpy as np
import pytest
from conftest import (
    TINY_CASES,
    run_snakemake,
    scheduled_jobs,
    synthetic_digits,
    tiny_config,
    write_config,
    write_idx,
    write_idx_folder,
)

from poolup.h5files import open_h5, read_image_set
from poolup.preprocess import reconstruct
from poolup.provenance import decode_attr
from poolup.recipe import read_back
from poolup.records import read_json

# Jobs over all cases that legitimately rerun whenever any run changes.
SUMMARY_RULES = {
    "all",
    "aggregate",
    "compare_datasets",
    "plot_methods",
    "codec_table",
    "plot_curves",
    "plot_per_class",
    "plot_tradeoff",
    "plot_confusion",
    "plot_forest",
    "plot_per_class_delta",
    "frontier",
    "plot_frontier",
}


def per_case(scheduled):
    """The scheduled jobs that belong to one case, and check the rest are summary jobs."""
    shared = {rule for rule, case in scheduled if case is None}
    assert shared <= SUMMARY_RULES, shared - SUMMARY_RULES
    return {job for job in scheduled if job[1] is not None}


CASES = TINY_CASES


@pytest.fixture(scope="module")
def preprocessed(tiny_run):
    return tiny_run


def test_preprocessing_artifacts(preprocessed):
    workdir, _ = preprocessed
    raw = read_image_set(workdir / "results/tiny/raw.h5", image_shape=(28, 28), dtype="uint8")
    assert raw.images.shape == (200, 28, 28) and raw.attrs["source"] == "bundled"
    for case, spec in CASES.items():
        side = (28 - spec["window"]) // spec["stride"] + 1
        with (
            open_h5(workdir / f"results/tiny/{case}/pooled.h5") as p,
            open_h5(workdir / f"results/tiny/{case}/stored.h5") as s,
        ):
            # raw <- pooled <- stored (the same payload, re-encoded) and raw <- pooled <- upsampled
            pooled, stored = read_back(p), read_back(s)
            assert pooled.shape == (200, side, side) and pooled.dtype == np.uint8
            np.testing.assert_array_equal(stored, pooled)
            np.testing.assert_array_equal(s["labels"][()], p["labels"][()])
            pooled_attrs = {key: decode_attr(value) for key, value in p.attrs.items()}
            assert pooled_attrs["source_sha256"] == raw.attrs["content_sha256"]
            assert decode_attr(s.attrs["source_sha256"]) == pooled_attrs["content_sha256"]
            assert sorted(set(s) - {"labels"}) == (["encoded", "offsets"] if "codec" in spec else ["images"])
        storage = read_json(workdir / f"results/tiny/{case}/storage.json")
        assert storage["stored_pixels"] == side * side and storage["n_images"] == 200
        # The up-sampled images are made in memory by the jobs that read them: no float32 copy on disk.
        assert not (workdir / f"results/tiny/{case}/upsampled.h5").exists()
        up = reconstruct(workdir / f"results/tiny/{case}/pooled.h5", case=case)
        assert up.images.shape == (200, 28, 28) and up.images.dtype == np.float32
        np.testing.assert_array_equal(up.labels, raw.labels)
        assert up.attrs["source_sha256"] == pooled_attrs["content_sha256"]
        assert (workdir / f"results/logs/tiny/{case}/store.log").read_text().strip()
    baseline = reconstruct(workdir / "results/tiny/baseline/pooled.h5")
    np.testing.assert_array_equal(baseline.images, raw.images.astype(np.float32))


def _dry_run(workdir, config, targets):
    """(rule, case) of each planned job; the training rules (one per seed group) as "train"."""
    result = run_snakemake(workdir, "-n", "--cores", "1", *targets, configfiles=[config])
    return {
        ("train" if rule.startswith("train_") else rule, wildcards.get("case"))
        for rule, wildcards in scheduled_jobs(result.stdout)
    }


def test_changing_one_stride_reruns_only_that_case(preprocessed, tmp_path):
    workdir, _ = preprocessed
    changed = tiny_config(tmp_path / "changed.yaml", cases={**CASES, "w2s2": {"window": 2, "stride": 1}})
    assert per_case(_dry_run(workdir, changed, [])) == {
        (rule, "w2s2") for rule in ("pool", "store", "codecs", "fidelity", "train", "plot_preprocessing")
    }


def test_adding_a_case_schedules_only_its_jobs(preprocessed, tmp_path):
    workdir, _ = preprocessed
    added = tiny_config(tmp_path / "added.yaml", cases={**CASES, "w3s2": {"window": 3, "stride": 2}})
    assert per_case(_dry_run(workdir, added, [])) == {
        (rule, "w3s2") for rule in ("pool", "store", "codecs", "fidelity", "train", "plot_preprocessing")
    }


def test_changing_the_grid_reruns_only_the_jobs_that_interpolate(preprocessed, tmp_path):
    workdir, _ = preprocessed
    changed = tiny_config(tmp_path / "grid.yaml", interpolation={"grid": "centers"})
    expected = {(rule, case) for case in CASES for rule in ("fidelity", "train")}
    expected |= {("plot_preprocessing", case) for case in CASES if case != "baseline"}
    assert per_case(_dry_run(workdir, changed, [])) == expected


def test_nothing_to_do_when_unchanged(preprocessed):
    workdir, config = preprocessed
    assert _dry_run(workdir, config, []) == set()


def test_training_outputs_exist(preprocessed):
    workdir, _ = preprocessed
    for case in CASES:
        for seed in (0, 1):
            run = workdir / f"results/tiny/{case}/seed{seed}"
            assert {p.name for p in run.iterdir()} >= {
                "model.keras",
                "history.csv",
                "test_metrics.json",
                "predictions.h5",
            }
            assert read_json(run / "test_metrics.json")["n_test"] == 40
            # One job trained both seeds (seeds_per_job 5): its log has a line per seed and progress lines
            # (5 batches an epoch: a point every 2, so that the curve has 3, history_every 3 notwithstanding).
            log = (workdir / f"results/logs/tiny/{case}/train_seeds_0_1.log").read_text()
            assert f"seed {seed} epoch 1/1" in log and f"seed {seed} ({seed + 1}/2) step 2/5" in log


def test_changing_one_case_method_reruns_only_that_case(preprocessed, tmp_path):
    workdir, _ = preprocessed
    changed = tiny_config(tmp_path / "method.yaml", cases={**CASES, "w2s2": {**CASES["w2s2"], "method": "cubic"}})
    assert per_case(_dry_run(workdir, changed, [])) == {
        (rule, "w2s2") for rule in ("fidelity", "train", "plot_preprocessing")
    }


def test_codec_table(preprocessed):
    import pandas as pd

    workdir, _ = preprocessed
    table = pd.read_csv(workdir / "results/tiny/summary/storage_codecs.csv")
    assert set(table["case"]) == set(CASES) and len(table) == 6 * len(CASES)
    baseline = table[table["case"] == "baseline"].set_index("codec")
    assert (baseline["ratio_to_raw"] == 1.0).all()  # raw against itself


def test_fetch_declares_its_idx_files(tmp_path):
    """A dry run sees a missing IDX file; a replaced one reruns fetch (and only what follows it)."""
    folder = write_idx_folder(tmp_path / "idx", 60, 20)
    config = write_config(tmp_path / "idx.yaml", datasets=[{"name": "digits", "source": "idx", "path": str(folder)}])
    workdir = tmp_path / "run"
    run_snakemake(workdir, "--cores", "1", "results/digits/raw.h5", configfiles=[config])
    assert _dry_run(workdir, config, ["results/digits/raw.h5"]) == set()
    images, labels = synthetic_digits(20, seed=3)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)  # a replaced data file
    assert _dry_run(workdir, config, ["results/digits/raw.h5"]) == {("fetch", None)}
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    missing = run_snakemake(workdir, "-n", "--cores", "1", "results/digits/raw.h5", configfiles=[config], check=False)
    assert missing.returncode != 0
    said = missing.stdout + missing.stderr  # Snakemake 9 logs its errors to stdout
    assert "MissingInputException" in said and "t10k-labels-idx1-ubyte.gz" in said


def test_reordered_cases_rerun_nothing(preprocessed, tmp_path):
    """Cases in another order (as Snakemake's merge of --configfile files may give them): nothing to do."""
    workdir, _ = preprocessed
    reordered = tiny_config(tmp_path / "reordered.yaml", cases=dict(reversed(list(CASES.items()))))
    assert _dry_run(workdir, reordered, []) == set()


def test_the_end_of_a_run_says_where_the_answer_is_and_how_to_report_it(preprocessed, tmp_path):
    import shutil

    source, config = preprocessed
    workdir = tmp_path / "end"
    shutil.copytree(source, workdir, symlinks=True)
    result = run_snakemake(
        # The target before --forcerun, which takes every name after it (a target there would be a rule to force).
        workdir,
        "--cores",
        "1",
        "results/tiny/summary/result.csv",
        "--forcerun",
        "aggregate",
        configfiles=[config],
    )
    said = [line for line in result.stderr.splitlines() if line.startswith(("poolup: tiny", "poolup: the report"))]
    # Run from elsewhere (-s, -d): paths in full, the command changes into the working directory and names the
    # Snakefile; 200 digits and 2 seeds cannot decide, and the run says so with the seeds that would.
    assert said[0] == (
        f"poolup: tiny: the answer (every case against the baseline) in {workdir.resolve()}/results/tiny/summary/"
        f"result.csv; frontier.md and summary.md beside it, figures in {workdir.resolve()}/results/tiny/figures/"
    ), said
    assert said[1].startswith("poolup: tiny: This run cannot decide ") and "seeds per case" in said[1], said
    from conftest import REPO

    assert said[-1] == (
        f"poolup: the report of this run: cd {workdir.resolve()} && snakemake --snakefile {REPO / 'Snakefile'}"
        f" --report results/report.html --configfile {config}"
    ), said
    summary = (workdir / "results/tiny/summary/summary.md").read_text()
    assert summary.startswith("This run cannot decide ")
    # A run that builds only raw.h5 (or nothing) has no answer to point at: it says nothing of one.
    (workdir / "results/tiny/raw.h5").unlink()
    quiet = run_snakemake(workdir, "--cores", "1", "results/tiny/raw.h5", configfiles=[config])
    assert not [line for line in quiet.stderr.splitlines() if line.startswith(("poolup: tiny", "poolup: the report"))]
    assert "Shell command: None" not in result.stdout + result.stderr


def test_the_small_jobs_are_local_rules():
    """Every figure, the codec table and the data-set table run on the submitting host (one sbatch each otherwise)."""
    import re

    from conftest import REPO

    snakefile = (REPO / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", snakefile, flags=re.M).group(1)
    local = set(re.findall(r"\w+", block))
    rules = set()
    for path in (REPO / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^rule (\w+):", path.read_text(), flags=re.M))
    rules |= set(re.findall(r"^rule (\w+):", snakefile, flags=re.M))
    assert local <= rules, local - rules
    assert {rule for rule in rules if rule.startswith("plot_")} | {"codec_table", "compare_datasets", "all"} <= local
    assert not local & {"fetch", "pool", "store", "codecs", "upsample", "aggregate"}
