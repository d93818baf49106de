"""Every run evaluated twice: on its test images as stored (the paper's protocol) and raw (as deployed).

The reference for the raw metrics is made outside the product: the saved model, the authors' split from
scikit-learn, scikit-learn's StandardScaler fitted on the stored training images, a plain Keras forward
pass over the raw test images and scikit-learn's metrics.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import same_storage

from poolup.h5files import read_image_set
from poolup.records import read_json

SCORES = ("accuracy", "macro_precision", "macro_recall", "macro_f1")


def test_the_baseline_stores_losslessly_so_its_raw_and_stored_rows_are_equal_to_the_last_digit(tiny_run):
    workdir, _ = tiny_run
    for seed in (0, 1):
        record = read_json(workdir / f"results/tiny/baseline/seed{seed}/test_metrics.json")
        assert {key: record[key] for key in (*SCORES, "f1", "confusion_matrix")} == {
            key: record["raw_test"][key] for key in (*SCORES, "f1", "confusion_matrix")
        }
    summary = pd.read_csv(workdir / "results/tiny/summary/summary.csv")
    rows = summary[summary["case"] == "baseline"].set_index("test_images")
    score_columns = [c for c in summary.columns if c.startswith(SCORES)]
    pd.testing.assert_series_equal(rows.loc["stored", score_columns], rows.loc["raw", score_columns], check_names=False)
    # A lossy recipe's model meets other images raw: its rows are its own (not a copy of the stored ones).
    w2s2 = summary[summary["case"] == "w2s2"].set_index("test_images")
    assert w2s2.loc["stored", "macro_f1_mean"] != w2s2.loc["raw", "macro_f1_mean"]


def test_raw_test_metrics_equal_scikit_learns_on_a_plain_keras_forward_pass_of_the_saved_model(tiny_run):
    import keras
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from poolup.preprocess import reconstruct

    workdir, _ = tiny_run
    run = workdir / "results/tiny/w2s2/seed1"
    record = read_json(run / "test_metrics.json")
    raw = read_image_set(workdir / "results/tiny/raw.h5")
    stored = reconstruct(workdir / "results/tiny/w2s2/pooled.h5", case="w2s2").images  # what training saw
    train, test = train_test_split(np.arange(raw.images.shape[0]), train_size=0.8, random_state=1)
    with __import__("h5py").File(run / "predictions.h5") as predictions:
        np.testing.assert_array_equal(predictions["test_indices"][()], test)
        raw_predicted = predictions["raw_predicted"][()]
    scaler = StandardScaler().fit(stored[train].reshape(train.size, -1))
    mean = scaler.mean_.astype(np.float32).reshape(28, 28)
    scale = scaler.scale_.astype(np.float32).reshape(28, 28)
    images = ((raw.images[test].astype(np.float32) - mean) / scale)[..., None]
    model = keras.saving.load_model(run / "model.keras")
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(predicted, raw_predicted)
    truth = raw.labels[test]
    reference = {
        "accuracy": accuracy_score(truth, predicted),
        "macro_precision": precision_score(truth, predicted, average="macro", zero_division=0),
        "macro_recall": recall_score(truth, predicted, average="macro", zero_division=0),
        "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
    }
    assert {key: record["raw_test"][key] for key in SCORES} == pytest.approx(reference, abs=1e-12)


def test_the_tables_hold_a_tidy_block_per_kind_and_summary_md_shows_them_side_by_side(tiny_run):
    workdir, _ = tiny_run
    summary = workdir / "results/tiny/summary"
    for name in ("summary.csv", "result.csv", "frontier.csv"):
        table = pd.read_csv(summary / name)
        assert list(dict.fromkeys(table["test_images"])) == ["stored", "raw"], name
        assert (table["test_images"] == "stored").sum() == (table["test_images"] == "raw").sum(), name
    frame = pd.read_csv(summary / "summary.csv")
    for kind, rows in frame.groupby("test_images"):  # Holm within each kind (the CSV holds 6 digits)
        from poolup.stats import holm

        np.testing.assert_allclose(rows["holm_p"], holm(rows["paired_p"]), rtol=1e-5, equal_nan=True, err_msg=kind)
    text = (summary / "summary.md").read_text()
    assert "| case | bytes saved | stored: ΔF1 [95% CI] | stored: verdict | raw: ΔF1 [95% CI] | raw: verdict |" in text
    frontier = (summary / "frontier.md").read_text()
    assert "## On test images as stored" in frontier and "## On raw test images" in frontier


def test_a_design_judges_the_kind_analysis_test_images_names(tiny_run, tmp_path):
    """analysis.test_images: raw, over the finished runs: only the summary is made again, and its looks read
    the raw scores (one look of the seeds already trained)."""
    import shutil

    import yaml
    from conftest import run_snakemake, scheduled_jobs

    source, config = tiny_run
    workdir = tmp_path / "raw"
    shutil.copytree(source, workdir, symlinks=True)
    settings = yaml.safe_load(config.read_text())
    settings["analysis"] = {"test_images": "raw", "sequential": {"looks": [2]}}
    changed = tmp_path / "raw.yaml"
    changed.write_text(yaml.safe_dump(settings))
    planned = {rule for rule, _ in scheduled_jobs(run_snakemake(workdir, "-n", configfiles=[changed]).stdout)}
    assert "train" not in planned and "look" in planned
    run_snakemake(workdir, "--cores", "2", "results/tiny/summary/summary.csv", configfiles=[changed])
    look = read_json(workdir / "results/tiny/summary/looks/look1.json")
    table = pd.read_csv(workdir / "results/tiny/summary/summary.csv")
    raw = table[table["test_images"] == "raw"].set_index("case")
    assert look["cases"]["w2s2"]["verdict"] == raw.loc["w2s2", "verdict"]
    assert look["cases"]["w2s2"]["margin_ci_low"] == pytest.approx(
        raw.loc["w2s2", "margin_ci_low"], rel=1e-5
    )  # CSV: 6 digits
    stored = table[table["test_images"] == "stored"].set_index("case")
    assert stored.loc["w2s2", "margin_ci_low"] != raw.loc["w2s2", "margin_ci_low"]


def test_the_kind_a_design_did_not_judge_is_read_at_the_seeds_it_trained_even_if_decided_before():
    """A case open at look 1 on its stored images trains to look 2; its raw scores, decided already at look 1,
    are read at look 2's seeds (the design stopped on the stored ones), not refused."""
    from poolup.aggregate import summarize

    rng = np.random.default_rng(0)
    rows = []
    for kind, spread in (("stored", 0.02), ("raw", 0.0005)):
        for case, shift in (("baseline", 0.0), ("w2s2", -0.001)):
            for seed in range(20):
                f1 = 0.95 + shift + (rng.normal(0, spread) if case == "w2s2" else 0.0)
                rows.append(
                    {
                        "case": case,
                        "seed": seed,
                        "test_images": kind,
                        "macro_f1": f1,
                        "accuracy": f1,
                        "macro_precision": f1,
                        "macro_recall": f1,
                        "train_seconds": 1.0,
                    }
                )
    runs = pd.DataFrame(rows)
    storage = same_storage(("baseline", "w2s2"))
    analysis = {
        "margin": 0.005,
        "confidence": 0.95,
        "bootstrap_resamples": 200,
        "power": 0.8,
        "sequential": {"looks": [10, 20]},
        "test_images": "stored",
    }
    summary = summarize(runs, storage, "baseline", ["baseline", "w2s2"], analysis)
    raw = summary[(summary["test_images"] == "raw") & (summary["case"] == "w2s2")].iloc[0]
    assert raw["verdict"] == "loss smaller than the margin" and raw["looks_used"] == 2 and raw["seeds"] == 20
    with pytest.raises(Exception, match="decided at look 1"):  # the judged kind keeps the design's rule
        summarize(runs, storage, "baseline", ["baseline", "w2s2"], {**analysis, "test_images": "raw"})
