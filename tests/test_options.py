"""What each schema option does, for the options that no other test checks by their effect (issue 14).

Each test calls the library directly (no Snakemake run) and checks an option's effect against
a plain reference where one exists: scikit-learn's split, zlib, scipy's and statsmodels'
statistics, Adam's first step, the saved model evaluated again, Pillow's image size. The
reruns that a changed option causes are checked in tests/test_invalidation.py.
"""

from __future__ import annotations

import csv
import math
import zlib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from poolup import plots, preprocess, stats
from poolup.aggregate import summarize
from poolup.codecs import measure_case
from poolup.config import case_method, load_schema, seed_list, validate_config
from poolup.errors import PoolupError
from poolup.h5files import read_image_set
from poolup.job_inputs import TrainSettings, load_training_data
from poolup.loop import prepare
from poolup.model import build_model, load_model
from poolup.preprocess import fetch, fetch_source, pool_and_store, upsample
from poolup.records import read_json
from poolup.runs import RunPaths, reproducible
from poolup.runtime import seed_everything
from poolup.sources import load_source, subsample
from poolup.splits import split_indices
from poolup.training import train_run

SCHEMA = load_schema(Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml")
N_IMAGES = 600  # bundled real digits in the shared raw.h5: 480 training and 120 test images at train_size 0.8


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A folder with raw.h5 (600 bundled digits), the w2s2 case stored (uint8, gzip 4) and up-sampled (linear)."""
    folder = tmp_path_factory.mktemp("options")
    fetch_source(folder / "raw.h5", "bundled", max_images=N_IMAGES)
    pool_and_store(folder / "raw.h5", folder / "stored.h5", folder / "storage.json", "w2s2", 2, 2)
    upsample(folder / "stored.h5", folder / "upsampled.h5")
    return folder


def run_paths(folder: Path) -> RunPaths:
    folder.mkdir(parents=True, exist_ok=True)
    return RunPaths(*(str(folder / n) for n in ("model.keras", "history.csv", "test_metrics.json", "predictions.h5")))


def history_rows(path: str) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def loss_and_accuracy(model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Categorical cross-entropy (probabilities clipped to [1e-7, 1]) and accuracy of ``model``, in NumPy."""
    probabilities = np.asarray(model(images))
    picked = np.clip(probabilities[np.arange(labels.size), labels], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probabilities.argmax(axis=1) == labels).mean())


# --- datasets[] ----------------------------------------------------------------


def test_max_images_and_subset_seed_pick_a_seeded_subset_of_that_size(tmp_path):
    images, labels, _ = load_source("bundled")  # (5000, 28, 28), as the fetch stage reads it
    first, first_labels = subsample(images, labels, 300, 0)
    again, _ = subsample(images, labels, 300, 0)
    other, _ = subsample(images, labels, 300, 1)
    assert first.shape == other.shape == (300, 28, 28) and first_labels.shape == (300,)
    np.testing.assert_array_equal(first, again)  # the same seed: the same subset
    row = {image.tobytes(): i for i, image in enumerate(images)}  # the 5,000 bundled digits are distinct
    assert len(row) == images.shape[0]
    rows_first, rows_other = [row[i.tobytes()] for i in first], [row[i.tobytes()] for i in other]
    assert rows_first == sorted(rows_first)  # in source order
    # Another seed: another subset of the same size (two random 300-of-5,000 subsets share about 18 images).
    assert len(set(rows_first) & set(rows_other)) < 60
    # The fetch stage writes exactly that subset for the entry's max_images and subset_seed.
    fetch(raw=tmp_path / "raw.h5", dataset={"source": "bundled", "max_images": 300, "subset_seed": 1})
    raw = read_image_set(tmp_path / "raw.h5", image_shape=(28, 28), dtype="uint8")
    np.testing.assert_array_equal(raw.images, other)
    assert raw.attrs["n_images"] == 300 and raw.attrs["subset_seed"] == 1


def test_image_shape_is_checked_against_the_data(tmp_path):
    entry = {"source": "bundled", "max_images": 100}
    with pytest.raises(PoolupError, match=r"images are \[28, 28\] but datasets\[\]\.image_shape is \[28, 28, 1\]"):
        fetch(raw=tmp_path / "raw.h5", dataset={**entry, "image_shape": [28, 28, 1]})
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert fetch(raw=tmp_path / "raw.h5", dataset={**entry, "image_shape": [28, 28]})["image_shape"] == (28, 28)


# --- baseline, cases.*.method, seeds ----------------------------------------------


def runs_frame(f1: dict[str, np.ndarray | list[float]]) -> pd.DataFrame:
    """A runs table as collect_runs returns it, with these macro F1 per case and seed."""
    rows = []
    for case, values in f1.items():
        for seed, value in enumerate(values):
            scores = dict.fromkeys(("accuracy", "macro_precision", "macro_recall", "macro_f1"), float(value))
            rows.append({"case": case, "seed": seed, **scores, "train_seconds": 1.0})
    return pd.DataFrame(rows)


def storage_records(stored_bytes: dict[str, int]) -> dict[str, dict]:
    shape = {"window": 1, "stride": 1, "stored_shape": [28, 28], "stored_pixels": 784, "pixel_ratio": 1.0}
    return {case: {**shape, "stored_bytes": size, "bytes_per_image": size / 100} for case, size in stored_bytes.items()}


ANALYSIS = {"margin": 0.005, "confidence": 0.95, "bootstrap_resamples": 999, "power": 0.8}


def test_baseline_is_the_case_every_other_case_is_compared_with():
    f1 = {"a": [0.90, 0.92, 0.94], "b": [0.80, 0.85, 0.81]}
    runs, storage = runs_frame(f1), storage_records({"a": 1000, "b": 250})
    for baseline, other in (("a", "b"), ("b", "a")):
        summary = summarize(runs, storage, baseline, ["a", "b"], ANALYSIS).set_index("case")
        row, reference = summary.loc[other], scipy_stats.ttest_rel(f1[other], f1[baseline])
        assert row["delta_f1"] == pytest.approx(np.mean(f1[other]) - np.mean(f1[baseline]))
        assert row["f1_diff_to_baseline"] == pytest.approx(np.mean(f1[other]) - np.mean(f1[baseline]))
        assert (row["delta_ci_low"], row["delta_ci_high"]) == pytest.approx(tuple(reference.confidence_interval()))
        assert row["paired_p"] == pytest.approx(reference.pvalue)
        assert row["byte_ratio_to_baseline"] == storage[other]["stored_bytes"] / storage[baseline]["stored_bytes"]
        assert summary.loc[baseline, "byte_ratio_to_baseline"] == 1.0 and np.isnan(summary.loc[baseline, "paired_p"])
    # b loses 0.1 against a (more than the margin); a loses nothing against b: the verdict follows the baseline.
    verdicts = [
        summarize(runs, storage, baseline, ["a", "b"], ANALYSIS).set_index("case").loc[other, "verdict"]
        for baseline, other in (("a", "b"), ("b", "a"))
    ]
    assert verdicts == [stats.LARGER, stats.SMALLER]


def test_a_case_method_overrides_the_interpolation_method(data, tmp_path):
    from scipy.interpolate import RectBivariateSpline

    config = validate_config(
        {
            "cases": {
                "baseline": {"window": 1, "stride": 1},
                "w2s2": {"window": 2, "stride": 2, "method": "cubic"},
                "w3s2": {"window": 3, "stride": 2},
            },
            "interpolation": {"method": "nearest"},
        },
        SCHEMA,
    )
    assert [case_method(config, case) for case in config["cases"]] == ["nearest", "cubic", "nearest"]
    upsample(data / "stored.h5", tmp_path / "up.h5", method=case_method(config, "w2s2"))
    stored = read_image_set(data / "stored.h5", image_shape=(14, 14)).images
    result = read_image_set(tmp_path / "up.h5", image_shape=(28, 28))
    assert result.attrs["method"] == "cubic"
    # The authors' corner grid (linspace(0, 28, 14) onto linspace(0, 28, 28)) under an interpolating cubic spline.
    source, target = np.linspace(0, 28, 14), np.linspace(0, 28, 28)
    for image, upsampled in zip(stored[:5], result.images[:5]):
        reference = RectBivariateSpline(source, source, image.astype(np.float64), kx=3, ky=3, s=0)(target, target)
        np.testing.assert_allclose(upsampled, reference, atol=1e-3)


def test_seeds_a_count_or_a_list_and_each_seed_is_a_split():
    from sklearn.model_selection import train_test_split

    assert seed_list(validate_config({"seeds": 3}, SCHEMA)["seeds"]) == [0, 1, 2]
    assert seed_list(validate_config({"seeds": [12, 4]}, SCHEMA)["seeds"]) == [12, 4]
    labels = np.arange(200) % 10
    tests = []
    for seed in (12, 4):
        train, test = split_indices(labels, 0.8, seed)
        np.testing.assert_array_equal(test, train_test_split(np.arange(200), train_size=0.8, random_state=seed)[1])
        tests.append(set(test.tolist()))
    assert tests[0] != tests[1]


# --- storage, codecs ----------------------------------------------------------


def test_storage_dtype_uint8_rounds_and_float32_keeps_the_exact_averages(data, tmp_path):
    raw = read_image_set(data / "raw.h5", image_shape=(28, 28), dtype="uint8").images
    exact = raw.reshape(N_IMAGES, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4))  # 2x2 blocks, stride 2
    for dtype in ("uint8", "float32"):
        pool_and_store(data / "raw.h5", tmp_path / f"{dtype}.h5", tmp_path / f"{dtype}.json", "w2s2", 2, 2, dtype)
    kept = read_image_set(tmp_path / "float32.h5", image_shape=(14, 14), dtype="float32").images
    rounded = read_image_set(tmp_path / "uint8.h5", image_shape=(14, 14), dtype="uint8").images
    np.testing.assert_array_equal(kept, exact)  # quarters are exact in float32
    assert np.any(kept % 1 != 0)
    np.testing.assert_array_equal(rounded, np.rint(exact))  # half to even, as the schema's "rounded"


def test_storage_filter_and_level_set_the_encoding_and_its_bytes(data, tmp_path):
    sizes = {}
    for filter_name, level in (("none", None), ("lzf", None), ("gzip", 0), ("gzip", 1), ("gzip", 4), ("gzip", 9)):
        name = filter_name + ("" if level is None else str(level))
        outputs = (tmp_path / f"{name}.h5", tmp_path / f"{name}.json")
        # The workflow's two rules: pool (one fixed encoding), then store under the configured one.
        preprocess.pool(data / "raw.h5", tmp_path / "pooled.h5", "w2s2", 2, 2)
        record = preprocess.store(
            tmp_path / "pooled.h5", data / "raw.h5", *outputs, encoding={"filter": filter_name, "level": level}
        )
        with h5py.File(tmp_path / f"{name}.h5") as file:
            images = file["images"]
            assert images.compression == {"none": None, "lzf": "lzf", "gzip": "gzip"}[filter_name]
            assert images.compression_opts == level
            pixels = images[()]
        sizes[name] = record["stored_bytes"]
        assert record["filter"] == filter_name and record["filter_level"] == level
        if filter_name == "none":
            assert sizes[name] == pixels.nbytes
        if filter_name == "gzip" and level > 0:
            # 600 images are one chunk, and shuffling 1-byte values changes nothing: one zlib stream at that level.
            assert sizes[name] == len(zlib.compress(pixels.tobytes(), level))
        if level == 0:  # deflate's stored blocks: the pixels as they are, plus a few bytes of framing
            assert 0 < sizes[name] - pixels.nbytes <= 64
    assert sizes["lzf"] < sizes["none"] < sizes["gzip0"]  # level 0 stores, plus deflate's framing
    assert sizes["gzip0"] > sizes["gzip1"] >= sizes["gzip4"] >= sizes["gzip9"]


def test_codecs_names_and_sample_choose_what_is_measured_on_how_many_images(data, tmp_path):
    records = measure_case(
        data / "raw.h5", data / "stored.h5", tmp_path / "codecs.json", names=["webp", "hdf5-lzf"], sample=15
    )
    assert [r["codec"] for r in records] == ["webp", "hdf5-lzf"]  # only the named codecs, in their order
    assert [r["images_measured"] for r in records] == [15, N_IMAGES]  # the sample is for per-image codecs only
    assert read_json(tmp_path / "codecs.json")["codecs"] == records
    larger = measure_case(data / "raw.h5", data / "stored.h5", tmp_path / "all.json", names=["png"], sample=10_000)
    assert larger[0]["images_measured"] == N_IMAGES  # a sample larger than the data set: every image


# --- training ---------------------------------------------------------------------


def test_train_size_and_stratify_split_as_scikit_learn():
    from sklearn.model_selection import train_test_split

    labels = np.repeat(np.arange(4), [50, 30, 15, 5])  # unbalanced classes
    indices = np.arange(labels.size)
    for train_size, stratify in ((0.6, False), (0.6, True), (0.9, False), (0.9, True)):
        train, test = split_indices(labels, train_size, 5, stratify)
        reference = train_test_split(
            indices, train_size=train_size, random_state=5, stratify=labels if stratify else None
        )
        np.testing.assert_array_equal(train, reference[0])
        np.testing.assert_array_equal(test, reference[1])
        assert (train.size, test.size) == (round(100 * train_size), round(100 * (1 - train_size)))
    _, test = split_indices(labels, 0.6, 5, stratify=True)
    assert np.bincount(labels[test]).tolist() == [20, 12, 6, 2]  # 40 % of every class


def test_batch_size_history_every_monitor_samples_and_train_size_in_a_real_run(data, tmp_path):
    """450 training images (train_size 0.75) in batches of 64: 8 steps an epoch, the last of 2 images."""
    settings = TrainSettings(
        epochs=2, batch_size=64, history_every=3, monitor_samples=30, train_size=0.75, precision="float32"
    )
    paths = run_paths(tmp_path / "run")
    metrics = train_run(data / "upsampled.h5", paths, "w2s2", 4, settings, image_shape=(28, 28))
    assert (metrics["n_train"], metrics["n_test"]) == (450, 150)
    rows = history_rows(paths.history)
    # A row every 3 steps and at each epoch's end (step 8 of 8).
    assert [int(r["step"]) for r in rows] == [3, 6, 8, 11, 14, 16]
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2]
    assert [float(r["progress"]) for r in rows] == [s / 8 for s in (3, 6, 8, 11, 14, 16)]
    assert [int(r["images_seen"]) for r in rows] == [192, 384, 450, 642, 834, 900]
    # The held-out points are on 30 images: every accuracy is a multiple of 1/30 ...
    assert all(abs(float(r["val_accuracy"]) * 30 - round(float(r["val_accuracy"]) * 30)) < 1e-6 for r in rows)
    # ... a fixed sample of the test split, on which the final model scores the last row's values.
    run = prepare(load_training_data(data / "upsampled.h5"), 4, settings)
    assert run.monitor.size == 30 and set(run.monitor.tolist()) <= set(run.test.tolist())
    labels = read_image_set(data / "upsampled.h5").labels.astype(np.int64)
    loss, accuracy = loss_and_accuracy(load_model(paths.model), run.images[run.monitor], labels[run.monitor])
    assert float(rows[-1]["val_loss"]) == pytest.approx(loss, rel=1e-4)
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(accuracy)


def test_learning_rate_is_the_size_of_adams_first_step(data, tmp_path):
    """One step (one batch of all 480 training images): Adam moves each weight by lr * |g| / (|g| + 3.2e-6).

    At step 1 the bias-corrected moments are g and g**2, so the step is the learning rate wherever the
    gradient is well above epsilon / sqrt(1 - beta_2) = 3.2e-6 (and 0 where it is 0: dead ReLU units).
    """
    learning_rate = 0.004
    settings = TrainSettings(
        batch_size=480, history_every=1, monitor_samples=20, learning_rate=learning_rate, precision="float32"
    )
    paths = run_paths(tmp_path / "run")
    train_run(data / "upsampled.h5", paths, "w2s2", 2, settings, image_shape=(28, 28))
    assert [int(r["step"]) for r in history_rows(paths.history)] == [1]
    seed_everything(2)  # the run's initial weights, as train_run draws them
    initial = build_model((28, 28, 1), 10).get_weights()
    moved = np.concatenate(
        [np.abs(after - before).ravel() for after, before in zip(load_model(paths.model).get_weights(), initial)]
    )
    assert moved.max() == pytest.approx(learning_rate, rel=1e-3)  # never more than the learning rate ...
    assert 0.9 * learning_rate < np.median(moved) <= learning_rate  # ... and most weights by nearly all of it


def test_early_stopping_without_restore_best_weights_keeps_the_last_epochs_weights(data, tmp_path):
    settings = TrainSettings(
        epochs=8,
        batch_size=32,
        history_every=5,
        monitor_samples=20,
        learning_rate=0.01,
        early_stopping=True,
        validation_size=0.25,
        patience=0,
        restore_best_weights=False,
        precision="float32",
    )
    paths = run_paths(tmp_path / "run")
    metrics = train_run(data / "upsampled.h5", paths, "w2s2", 1, settings, image_shape=(28, 28))
    losses = [epoch["validation_loss"] for epoch in metrics["epochs"]]
    best = metrics["best_epoch"]
    assert best == int(np.argmin(losses)) + 1
    assert best < metrics["epochs_run"] == len(losses)  # stopped after a worse epoch: the last is not the best
    run = prepare(load_training_data(data / "upsampled.h5"), 1, settings)
    labels = read_image_set(data / "upsampled.h5").labels.astype(np.int64)
    loss, _ = loss_and_accuracy(load_model(paths.model), run.images[run.validation], labels[run.validation])
    assert loss == pytest.approx(losses[-1], rel=1e-4)  # the last epoch's weights ...
    assert loss != pytest.approx(losses[best - 1], rel=1e-3)  # ... not the best epoch's


def test_keep_leaves_out_the_model_and_predictions_and_changes_nothing_else(data, tmp_path):
    """training.keep [] (the workflow passes None for a file not kept): the same run, two files fewer."""
    settings = TrainSettings(batch_size=64, history_every=4, monitor_samples=20, precision="float32")
    full = train_run(data / "upsampled.h5", run_paths(tmp_path / "full"), "w2s2", 3, settings, image_shape=(28, 28))
    (tmp_path / "lean").mkdir()
    lean_paths = RunPaths(None, str(tmp_path / "lean/history.csv"), str(tmp_path / "lean/test_metrics.json"), None)
    lean = train_run(data / "upsampled.h5", lean_paths, "w2s2", 3, settings, image_shape=(28, 28))
    assert sorted(path.name for path in (tmp_path / "lean").iterdir()) == ["history.csv", "test_metrics.json"]
    assert list(lean["outputs"]) == ["history.csv"]
    assert lean["outputs"]["history.csv"] == full["outputs"]["history.csv"]
    assert lean["macro_f1"] == full["macro_f1"]
    same = {key: value for key, value in reproducible(full).items() if key != "outputs"}
    assert {key: value for key, value in reproducible(lean).items() if key != "outputs"} == same


# --- plots ------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the plot functions save, in order."""
    figures, save = [], plots.save_figure

    def keep(figure, png, pdf, dpi):
        figures.append(figure)
        save(figure, png, pdf, dpi)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figures


def test_plots_examples_is_the_number_of_digits_drawn(data, tmp_path, drawn):
    labels = read_image_set(data / "raw.h5").labels
    firsts = [int(np.flatnonzero(labels == label)[0]) for label in range(10)]  # the first digit of each class
    rest = [i for i in range(labels.size) if i not in firsts]
    for examples, chosen in ((3, firsts[:3]), (12, firsts + rest[:2])):
        plots.plot_examples(data / "raw.h5", tmp_path / "e.png", tmp_path / "e.pdf", examples, 60)
        axes = [axis for axis in drawn[-1].axes if axis.images]
        assert [axis.get_title() for axis in axes] == [f"label {labels[i]}" for i in chosen]
        args = (data / "raw.h5", data / "stored.h5", "w2s2", tmp_path / "p.png")
        plots.plot_preprocessing(*args, tmp_path / "p.pdf", examples, 60)
        assert sum(1 for axis in drawn[-1].axes if axis.images) == 3 * examples  # original, stored, up-sampled


def test_plots_dpi_scales_the_png(data, tmp_path):
    from PIL import Image

    sizes = {}
    for dpi in (50, 100, 200):
        plots.plot_examples(data / "raw.h5", tmp_path / f"{dpi}.png", tmp_path / f"{dpi}.pdf", 4, dpi)
        with Image.open(tmp_path / f"{dpi}.png") as image:
            sizes[dpi] = np.array(image.size)
            assert image.info["dpi"] == pytest.approx((dpi, dpi), rel=1e-3)  # PNG stores pixels per metre
    # The same figure in inches, so pixels in proportion to dpi (a pixel or two of rounding in the tight box).
    assert np.all(np.abs(sizes[100] - 2 * sizes[50]) <= 3) and np.all(np.abs(sizes[200] - 4 * sizes[50]) <= 6)
    assert sizes[50][0] > 100


# --- analysis ---------------------------------------------------------------------

RNG = np.random.default_rng(14)
BASE_F1 = RNG.normal(0.97, 0.004, 12)
CASE_F1 = BASE_F1 + RNG.normal(-0.002, 0.003, 12)
DIFFERENCES = CASE_F1 - BASE_F1


def paired_row(**analysis) -> pd.Series:
    """The summary row of the case against the baseline under these analysis settings."""
    runs = runs_frame({"baseline": BASE_F1, "case": CASE_F1})
    storage = storage_records({"baseline": 1000, "case": 250})
    summary = summarize(runs, storage, "baseline", ["baseline", "case"], {**ANALYSIS, **analysis})
    return summary.set_index("case").loc["case"]


def bootstrap_reference(confidence: float, resamples: int) -> tuple[float, float]:
    """scipy's BCa bootstrap of the mean difference with the documented fixed seed 0."""
    result = scipy_stats.bootstrap(
        (DIFFERENCES,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="BCa",
        rng=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def test_confidence_is_the_level_of_the_intervals_and_sets_alpha():
    from statsmodels.stats.power import TTestPower

    reference = scipy_stats.ttest_rel(CASE_F1, BASE_F1)
    widths = {}
    for confidence in (0.90, 0.99):
        row = paired_row(confidence=confidence)
        assert (row["delta_ci_low"], row["delta_ci_high"]) == pytest.approx(
            tuple(reference.confidence_interval(confidence)), rel=1e-9
        )
        verdict_level = 1 - 2 * (1 - confidence)  # the verdict's interval is at 1 - 2 alpha
        assert (row["margin_ci_low"], row["margin_ci_high"]) == pytest.approx(
            tuple(reference.confidence_interval(verdict_level)), rel=1e-9
        )
        assert (row["delta_boot_low"], row["delta_boot_high"]) == pytest.approx(
            bootstrap_reference(confidence, 999), rel=1e-12
        )
        effect = TTestPower().solve_power(nobs=12, alpha=1 - confidence, power=0.8, alternative="two-sided")
        assert row["mde"] == pytest.approx(effect * DIFFERENCES.std(ddof=1), rel=1e-5)
        widths[confidence] = (
            row["delta_ci_high"] - row["delta_ci_low"],
            row["delta_boot_high"] - row["delta_boot_low"],
        )
    assert widths[0.99][0] > widths[0.90][0] and widths[0.99][1] > widths[0.90][1]


def test_bootstrap_resamples_is_the_number_of_resamples():
    rows = {n: paired_row(bootstrap_resamples=n) for n in (999, 4999)}
    for n, row in rows.items():
        assert (row["delta_boot_low"], row["delta_boot_high"]) == pytest.approx(bootstrap_reference(0.95, n), rel=1e-12)
    low, high = rows[999]["delta_boot_low"], rows[999]["delta_boot_high"]
    assert (low, high) != (rows[4999]["delta_boot_low"], rows[4999]["delta_boot_high"])  # other resamples ...
    assert abs(low - rows[4999]["delta_boot_low"]) < 0.2 * (high - low)  # ... move the ends a little
    again = paired_row(bootstrap_resamples=4999)
    assert (again["delta_boot_low"], again["delta_boot_high"]) == (
        rows[4999]["delta_boot_low"],
        rows[4999]["delta_boot_high"],
    )  # and the same resamples reproduce the interval


def test_power_sets_the_seeds_for_the_margin_and_the_detectable_difference():
    from statsmodels.stats.power import TTestPower

    solver, sd = TTestPower(), DIFFERENCES.std(ddof=1)
    rows = {power: paired_row(power=power) for power in (0.8, 0.95)}
    for power, row in rows.items():
        needed = solver.solve_power(effect_size=0.005 / sd, alpha=0.05, power=power, alternative="larger")
        assert row["seeds_for_margin"] == max(2, math.ceil(needed - 1e-6))
        effect = solver.solve_power(nobs=12, alpha=0.05, power=power, alternative="two-sided")
        assert row["mde"] == pytest.approx(effect * sd, rel=1e-5)
    assert rows[0.95]["seeds_for_margin"] > rows[0.8]["seeds_for_margin"]
    assert rows[0.95]["mde"] > rows[0.8]["mde"]
    assert rows[0.95]["delta_ci_low"] == rows[0.8]["delta_ci_low"]  # the intervals do not depend on power
