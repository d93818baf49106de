"""Aggregation against hand computations on small per-seed files written here."""

import csv
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import same_storage

from poolup.aggregate import aggregate, mean_sd_ci, methods_markdown, welch_p
from poolup.errors import PoolupError
from poolup.records import write_json

F1 = {"baseline": [0.90, 0.92, 0.94], "small": [0.80, 0.84, 0.82]}
STORED = {"baseline": 1000, "small": 250}
ANALYSIS = {"margin": 0.005, "confidence": 0.95, "bootstrap_resamples": 999, "power": 0.8}
# The aggregation's outputs (the aggregate rule's output names).
AGGREGATE_OUTPUTS = (
    "runs",
    "summary",
    "summary_md",
    "result",
    "methods_md",
    "mean_history",
    "per_class",
    "per_class_delta",
    "confusion",
    "manifest",
)


def write_run(folder, case, seed, f1):
    folder.mkdir(parents=True)
    confusion = [[8, 2], [1, 9]] if seed == 0 else [[10, 0], [0, 10]]
    record = {
        "case": case,
        "seed": seed,
        "accuracy": f1 + 0.01,
        "macro_precision": f1 + 0.02,
        "macro_recall": f1 - 0.01,
        "macro_f1": f1,
        "n_train": 80,
        "n_test": 20,
        "train_seconds": 2.0 + seed,
        "monitor_seconds": 0.1,
        "total_seconds": 3.0,
        "images_per_second": 40.0,
        "threads": 1,
        "device": "CPU",
        "precision": [f1, 1.0],
        "recall": [f1 - 0.1, 0.9],
        "f1": [f1 - 0.05, 0.95],
        "support": [10, 10],
        "confusion_matrix": confusion,
    }
    write_json(folder / "test_metrics.json", record)
    with open(folder / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        metrics = [f"{s}_{m}" for s in ("train", "val") for m in ("loss", "accuracy", "precision", "recall", "f1")]
        writer.writerow(["epoch", "step", "progress", "images_seen", *metrics])
        for step in (1, 2):
            writer.writerow([1, step, step / 2, 32 * step, *[f1 * step + seed] * len(metrics)])
    return folder / "test_metrics.json", folder / "history.csv"


def aggregation_inputs(tmp_path, small_shape=(14, 14)):
    """Each case's run files and storage.json, as the workflow lays them out, and the outputs' paths."""
    metrics, history, storage = [], [], []
    for case, values in F1.items():
        for seed, f1 in enumerate(values):
            m, h = write_run(tmp_path / case / f"seed{seed}", case, seed, f1)
            metrics.append(m)
            history.append(h)
        record = {
            "case": case,
            "window": 1 if case == "baseline" else 2,
            "stride": 1 if case == "baseline" else 2,
            "stored_shape": [28, 28] if case == "baseline" else list(small_shape),
            "stored_pixels": 784 if case == "baseline" else int(np.prod(small_shape)),
            "pixel_ratio": 1.0 if case == "baseline" else 0.25,
            "stored_bytes": STORED[case],
            "bytes_per_image": STORED[case] / 100,
        }
        write_json(tmp_path / case / "storage.json", record)
        storage.append(tmp_path / case / "storage.json")
    suffix = {"confusion": "json", "manifest": "json", "summary_md": "md", "methods_md": "md"}
    outputs = {name: tmp_path / "out" / f"{name}.{suffix.get(name, 'csv')}" for name in AGGREGATE_OUTPUTS}
    return {"metrics": metrics, "history": history, "storage": storage, **outputs}


@pytest.fixture
def summary_files(tmp_path):
    inputs = aggregation_inputs(tmp_path)
    aggregate(**inputs, baseline="baseline", analysis=ANALYSIS)
    return {name: inputs[name] for name in AGGREGATE_OUTPUTS}


def test_summary_equals_hand_computation(summary_files):
    summary = pd.read_csv(summary_files["summary"]).set_index("case")
    small, base = np.array(F1["small"]), np.array(F1["baseline"])
    mean, sd = small.mean(), math.sqrt(((small - small.mean()) ** 2).sum() / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, df=2)
    row = summary.loc["small"]
    assert row["macro_f1_mean"] == pytest.approx(0.82)
    assert row["macro_f1_sd"] == pytest.approx(sd, rel=1e-5)
    assert (row["macro_f1_ci_low"], row["macro_f1_ci_high"]) == pytest.approx((mean - half, mean + half), rel=1e-5)
    assert row["f1_diff_to_baseline"] == pytest.approx(0.82 - 0.92)
    # Welch's t by hand: t = (m1 - m2) / sqrt(s1^2/n1 + s2^2/n2), Welch-Satterthwaite degrees of freedom.
    v1, v2 = small.var(ddof=1) / 3, base.var(ddof=1) / 3
    t = (small.mean() - base.mean()) / math.sqrt(v1 + v2)
    dof = (v1 + v2) ** 2 / (v1**2 / 2 + v2**2 / 2)
    from scipy.stats import t as student

    assert row["f1_welch_p"] == pytest.approx(2 * student.sf(abs(t), dof), rel=1e-4)
    assert row["byte_ratio_to_baseline"] == pytest.approx(0.25)
    assert row["accuracy_mean"] == pytest.approx(0.83) and row["seeds"] == 3
    assert math.isnan(summary.loc["baseline", "f1_welch_p"])


def test_runs_and_per_class_tables(summary_files):
    runs = pd.read_csv(summary_files["runs"])
    assert len(runs) == 6 and list(runs["case"]) == ["baseline"] * 3 + ["small"] * 3
    per_class = pd.read_csv(summary_files["per_class"])
    row = per_class[
        (per_class["case"] == "small") & (per_class["class"] == 0) & (per_class["metric"] == "recall")
    ].iloc[0]
    assert row["mean"] == pytest.approx(0.72) and row["sd"] == pytest.approx(0.02, rel=1e-5)


def test_history_mean_and_sd_over_seeds(summary_files):
    history = pd.read_csv(summary_files["mean_history"])
    row = history[(history["case"] == "small") & (history["step"] == 2)].iloc[0]
    values = np.array([0.80 * 2 + 0, 0.84 * 2 + 1, 0.82 * 2 + 2])
    assert row["train_f1_mean"] == pytest.approx(values.mean())
    assert row["val_loss_sd"] == pytest.approx(values.std(ddof=1), rel=1e-5)


def test_mean_confusion_is_row_normalised(summary_files):
    confusion = json.loads(summary_files["confusion"].read_text())["row_normalised_mean"]
    # seed 0: [[.8, .2], [.1, .9]]; seeds 1 and 2: identity -> mean over 3 seeds.
    np.testing.assert_allclose(confusion["small"], [[(0.8 + 2) / 3, 0.2 / 3], [0.1 / 3, (0.9 + 2) / 3]])


def test_summary_markdown(summary_files):
    text = summary_files["summary_md"].read_text()
    assert "| small | stored | 14x14 | 25% | 2.5 | 0.25 | 0.8200 ± 0.0200 |" in text
    # Paired by seed: differences -0.10, -0.08, -0.12 (mean -0.10, SD 0.02), one case so Holm p = paired p.
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    p = 2 * __import__("scipy").stats.t.sf(0.10 / (0.02 / math.sqrt(3)), 2)
    assert (
        f"| small | stored | 14x14 | 75% | 0.8200 ± 0.0200 | -0.1000 [{-0.1 - half:+.4f}, {-0.1 + half:+.4f}] |"
    ) in text
    assert f"| {p:.3g} | {p:.3g} | loss larger than the margin |" in text
    paired_row = next(line for line in text.splitlines() if line.startswith("| small | stored | 14x14 | 75%"))
    assert paired_row.endswith(
        "| 3 | 3 seeds |"
    )  # seeds paired, an integer; where it was decided (a fixed design: its seeds)
    assert "verdict (margin 0.005)" in text and "| case | class 0 | class 1 |" in text
    # class 0 F1 is f1 - 0.05: the same differences (interval excludes 0: starred); class 1 is 0.95 everywhere.
    assert "| small | -0.1000* | +0.0000 |" in text


def test_paired_columns_equal_their_references(summary_files):
    from scipy import stats as scipy_stats

    summary = pd.read_csv(summary_files["summary"]).set_index("case")
    row = summary.loc["small"]
    small, base = np.array(F1["small"]), np.array(F1["baseline"])
    reference = scipy_stats.ttest_rel(small, base)
    assert row["paired_n"] == 3 and row["delta_f1"] == pytest.approx(-0.10)
    assert (row["delta_ci_low"], row["delta_ci_high"]) == pytest.approx(
        tuple(reference.confidence_interval()), rel=1e-5
    )
    assert row["paired_p"] == pytest.approx(reference.pvalue, rel=1e-5) and row["holm_p"] == pytest.approx(
        row["paired_p"]
    )
    assert row["verdict"] == "loss larger than the margin"
    assert row["f1_welch_p"] != pytest.approx(row["paired_p"])  # the unpaired column stays, and differs
    baseline = summary.loc["baseline"]
    assert np.isnan(baseline["paired_p"]) and np.isnan(baseline["verdict"])  # blank cells for the reference
    # The display table of the report's front page: one row per non-baseline case.
    result = pd.read_csv(summary_files["result"])
    assert (
        list(result["case"]) == ["small"] and result.iloc[0]["verdict (margin 0.005)"] == "loss larger than the margin"
    )
    assert list(result.columns) == [
        "case",
        "test_images",
        "bytes saved",
        "ΔF1 [95% CI]",
        "Holm p",
        "verdict (margin 0.005)",
        "seeds for margin",
        "seeds paired",
        "decided at",
    ]
    assert result.iloc[0]["decided at"] == "3 seeds"  # a fixed design decides at its seeds (no looks to name)


def test_per_class_delta_is_paired_by_seed(summary_files):
    deltas = pd.read_csv(summary_files["per_class_delta"]).set_index(["case", "class"])
    assert list(deltas.index) == [("small", 0), ("small", 1)]
    row = deltas.loc[("small", 0)]
    assert row["delta_f1"] == pytest.approx(-0.10) and row["paired_n"] == 3
    assert row["delta_ci_high"] == pytest.approx(-0.10 + 4.302652729911275 * 0.02 / math.sqrt(3), rel=1e-5)
    # class 1: no difference at all -> p 1, interval [0, 0]; Holm over the two classes
    flat = deltas.loc[("small", 1)]
    assert flat["delta_f1"] == 0 and flat["paired_p"] == 1.0 and flat["delta_ci_low"] == 0
    assert row["holm_p"] == pytest.approx(min(1.0, 2 * row["paired_p"]), rel=1e-5)


def test_unpaired_seeds_are_left_out_of_the_pairing(tmp_path):
    from poolup.aggregate import summarize

    runs = pd.DataFrame(
        {
            "case": ["baseline"] * 3 + ["small"] * 2,
            "seed": [0, 1, 2, 0, 2],
            "macro_f1": [0.90, 0.92, 0.94, 0.88, 0.93],
            **{s: 0.0 for s in ("accuracy", "macro_precision", "macro_recall")},
            "train_seconds": 1.0,
        }
    )
    storage = same_storage(("baseline", "small"))
    row = summarize(runs, storage, "baseline", ["baseline", "small"], ANALYSIS).set_index("case").loc["small"]
    assert row["paired_n"] == 2 and row["delta_f1"] == pytest.approx(((0.88 - 0.90) + (0.93 - 0.94)) / 2)


def test_statistics_helpers():
    assert all(math.isnan(v) for v in mean_sd_ci(np.array([0.5]))[1:])
    assert welch_p(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 1.0
    assert math.isnan(welch_p(np.array([1.0]), np.array([1.0, 2.0])))


def test_manifest_records_every_input_and_output(summary_files):
    from poolup.provenance import file_sha256

    manifest = json.loads(summary_files["manifest"].read_text())
    assert len(manifest["inputs"]) == 6 + 6 + 2
    assert set(manifest["outputs"]) >= {"result.csv", "per_class_delta.csv"}
    assert manifest["outputs"]["summary.csv"] == file_sha256(summary_files["summary"])
    assert "../baseline/seed0/test_metrics.json" in manifest["inputs"]


def test_methods_table_puts_each_case_in_its_geometry_and_method():
    def case(name, window, stride, method, f1, sd, p):
        return {
            "case": name,
            "window": window,
            "stride": stride,
            "method": method,
            "stored_height": (28 - window) // stride + 1,
            "stored_width": (28 - window) // stride + 1,
            "byte_ratio_to_baseline": 1.0 if window == 1 else 0.4,
            "macro_f1_mean": f1,
            "macro_f1_sd": sd,
            "f1_diff_to_baseline": f1 - 0.97,
            "f1_welch_p": p,
            "seeds": 3,
        }

    summary = pd.DataFrame(
        [
            case("baseline", 1, 1, "linear", 0.97, 0.01, float("nan")),
            case("w2s2", 2, 2, "linear", 0.96, 0.02, 0.2),
            case("w2s2-cubic", 2, 2, "cubic", 0.965, 0.01, 0.5),
            case("w3s2-nearest", 3, 2, "nearest", 0.95, 0.03, 0.01),
        ]
    )
    lines = methods_markdown(summary, "baseline").splitlines()
    assert lines[0].startswith("baseline: test macro F1 0.9700 ± 0.0100 over 3 seeds")
    assert lines[2] == "| pooling | stored | bytes vs baseline | nearest | linear | cubic |"
    assert (
        lines[4] == "| 2x2/2 | 14x14 | 0.40 |  | 0.9600 ± 0.0200 (-0.0100, p 0.2) | 0.9650 ± 0.0100 (-0.0050, p 0.5) |"
    )
    assert lines[5] == "| 3x3/2 | 13x13 | 0.40 | 0.9500 ± 0.0300 (-0.0200, p 0.01) |  |  |"
    assert len(lines) == 6


def test_datasets_table_carries_the_paired_result(summary_files, tmp_path):
    from poolup.aggregate import compare_datasets

    outputs = {"table": tmp_path / "d.csv", "table_md": tmp_path / "d.md", "manifest": tmp_path / "m.json"}
    compare_datasets(
        summaries=[summary_files["summary"], summary_files["summary"]],
        datasets=["one", "two"],
        **outputs,
        baseline="baseline",
    )
    lines = outputs["table_md"].read_text().splitlines()
    assert lines[0].endswith("| paired ΔF1 [CI] | Holm p | verdict | seeds |")
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    small = [line for line in lines if line.startswith("| two | small |")]
    assert len(small) == 1 and f"| -0.1000 [{-0.1 - half:+.4f}, {-0.1 + half:+.4f}] |" in small[0]
    assert small[0].endswith("| loss larger than the margin | 3 |")
    assert [line for line in lines if line.startswith("| one | baseline |")][0].endswith("|  |  |  | 3 |")


def test_methods_table_has_a_paired_table_with_the_verdicts(summary_files):
    text = summary_files["methods_md"].read_text()
    paired_part = text.split("Paired by seed")[1].splitlines()
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    assert paired_part[2] == "| pooling | stored | bytes vs baseline | linear |"
    p = float(pd.read_csv(summary_files["summary"]).set_index("case").loc["small", "holm_p"])
    assert paired_part[4] == (
        f"| 2x2/2 | 14x14 | 0.25 | -0.1000 [{-0.1 - half:+.4f}, {-0.1 + half:+.4f}] (Holm p {p:.2g}),"
        " loss larger than the margin |"
    )


def test_history_of_early_stopped_seeds_is_averaged_over_the_seeds_that_reached_each_step(tmp_path):
    """With early stopping, seeds run different numbers of epochs: a step's mean is over the seeds that reached it."""
    from poolup.aggregate import average_history
    from poolup.errors import PoolupError
    from poolup.loop import HISTORY_METRICS

    def history(path, epochs, offset):
        rows = [
            {"epoch": e, "step": 10 * e, "progress": float(e), "images_seen": 320 * e}
            | {metric: offset + e for metric in HISTORY_METRICS}
            for e in range(1, epochs + 1)
        ]
        pd.DataFrame(rows).to_csv(path, index=False)
        return path

    files = [history(tmp_path / "a.csv", 3, 0.0), history(tmp_path / "b.csv", 5, 1.0)]
    frame = average_history({"w2s2": files})
    assert frame["step"].tolist() == [10, 20, 30, 40, 50] and frame["seeds"].tolist() == [2, 2, 2, 1, 1]
    metric = HISTORY_METRICS[0]
    np.testing.assert_allclose(frame[f"{metric}_mean"], [1.5, 2.5, 3.5, 5.0, 6.0])
    np.testing.assert_allclose(frame[f"{metric}_sd"][:3], [math.sqrt(0.5)] * 3)
    assert frame[f"{metric}_sd"][3:].isna().all()  # one seed: no spread
    # Runs that disagree on the steps they share are from different configs: refused.
    history(tmp_path / "c.csv", 2, 0.0)
    pd.read_csv(tmp_path / "c.csv").assign(step=[7, 14]).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(PoolupError, match="different steps"):
        average_history({"w2s2": [files[1], tmp_path / "c.csv"]})


# --- inputs made for another case or run ------------------------------------------------


def test_another_cases_storage_record_is_named_as_such(tmp_path):
    inputs = aggregation_inputs(tmp_path)
    shutil.copy(tmp_path / "baseline/storage.json", tmp_path / "small/storage.json")
    with pytest.raises(PoolupError) as info:
        aggregate(**inputs, baseline="baseline", analysis=ANALYSIS)
    assert str(info.value) == (
        f"{tmp_path / 'small/storage.json'}: made for case 'baseline', expected case 'small'; a file made for another "
        "one (or from one) is in its place; delete it and rerun snakemake: its store job remakes it"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("baseline/seed0", "baseline/seed1", "made for seed 0, expected seed 1"),
        ("baseline/seed2", "small/seed2", "made for case 'baseline', expected case 'small'"),
    ],
)
def test_a_run_record_of_another_run_is_named_never_counted(tmp_path, source, target, message):
    inputs = aggregation_inputs(tmp_path)
    shutil.copy(tmp_path / source / "test_metrics.json", tmp_path / target / "test_metrics.json")
    with pytest.raises(PoolupError) as info:
        aggregate(**inputs, baseline="baseline", analysis=ANALYSIS)
    assert str(info.value).startswith(f"{tmp_path / target / 'test_metrics.json'}: {message}; a file made for")
    assert str(info.value).endswith("delete it and rerun snakemake: its train job remakes it")


def test_non_square_images_are_shown_with_their_real_shape(tmp_path):
    inputs = aggregation_inputs(tmp_path, small_shape=(10, 18))
    aggregate(**inputs, baseline="baseline", analysis=ANALYSIS)
    row = pd.read_csv(inputs["summary"]).set_index("case").loc["small"]
    assert (row["stored_height"], row["stored_width"]) == (10, 18)
    text = inputs["summary_md"].read_text()
    assert "| small | stored | 10x18 |" in text and "10x10" not in text and "18x18" not in text
    assert "| 2x2/2 | 10x18 |" in inputs["methods_md"].read_text()


def test_a_folder_data_sets_class_names_label_the_per_class_tables_and_figures(tmp_path):
    """Runs on a folder data set record its class folders' names: per_class.csv, per_class_delta.csv and
    summary.md name the classes by them, and so do the figures' ticks; numbered classes keep their numbers."""
    from pathlib import Path

    from poolup.aggregate import class_names, per_class_delta_table, per_class_table
    from poolup.plots import per_class_figure
    from poolup.summary_tables import per_class_markdown

    records = [json.loads(Path(path).read_text()) for path in aggregation_inputs(tmp_path)["metrics"]]
    assert class_names(records) == ["0", "1"]
    named = [{**record, "class_names": ["ant", "bee"]} for record in records]
    table = per_class_table(named, ["baseline", "small"])
    assert set(zip(table["class"], table["class_name"])) == {(0, "ant"), (1, "bee")}
    deltas = per_class_delta_table(named, ["baseline", "small"], "baseline", 0.95)
    assert list(deltas["class_name"]) == ["ant", "bee"]
    assert "| case | class ant | class bee |" in per_class_markdown(deltas, 0.95)
    figure = per_class_figure(table, "f1", {})
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == ["ant", "bee"]
