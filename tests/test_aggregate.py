"""Aggregation against hand computations on small per-seed files written here."""

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from poolup.aggregate import OUTPUT_NAMES, aggregate, mean_sd_ci, welch_p, methods_markdown

F1 = {"baseline": [0.90, 0.92, 0.94], "small": [0.80, 0.84, 0.82]}
STORED = {"baseline": 1000, "small": 250}


def write_run(folder, case, seed, f1):
    folder.mkdir(parents=True)
    confusion = [[8, 2], [1, 9]] if seed == 0 else [[10, 0], [0, 10]]
    record = {
        "case": case, "seed": seed, "accuracy": f1 + 0.01, "macro_precision": f1 + 0.02, "macro_recall": f1 - 0.01,
        "macro_f1": f1, "n_train": 80, "n_test": 20, "train_seconds": 2.0 + seed, "monitor_seconds": 0.1,
        "total_seconds": 3.0, "images_per_second": 40.0, "threads": 1, "device": "CPU",
        "precision": [f1, 1.0], "recall": [f1 - 0.1, 0.9], "f1": [f1 - 0.05, 0.95], "support": [10, 10],
        "confusion_matrix": confusion,
    }
    (folder / "test_metrics.json").write_text(json.dumps(record))
    with open(folder / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        metrics = [f"{s}_{m}" for s in ("train", "val") for m in ("loss", "accuracy", "precision", "recall", "f1")]
        writer.writerow(["epoch", "step", "progress", "images_seen", *metrics])
        for step in (1, 2):
            writer.writerow([1, step, step / 2, 32 * step, *[f1 * step + seed] * len(metrics)])
    return folder / "test_metrics.json", folder / "history.csv"


@pytest.fixture
def summary_files(tmp_path):
    metrics, history, storage = [], [], []
    for case, values in F1.items():
        for seed, f1 in enumerate(values):
            m, h = write_run(tmp_path / case / f"seed{seed}", case, seed, f1)
            metrics.append(m)
            history.append(h)
        record = {"case": case, "window": 1 if case == "baseline" else 2, "stride": 1 if case == "baseline" else 2,
                  "stored_shape": [28, 28] if case == "baseline" else [14, 14], "stored_pixels": 784 if case == "baseline" else 196,
                  "pixel_ratio": 1.0 if case == "baseline" else 0.25, "stored_bytes": STORED[case], "bytes_per_image": STORED[case] / 100}
        (tmp_path / case / "storage.json").write_text(json.dumps(record))
        storage.append(tmp_path / case / "storage.json")
    suffix = {"confusion": "json", "manifest": "json", "summary_md": "md", "methods_md": "md"}
    outputs = {name: tmp_path / "out" / f"{name}.{suffix.get(name, 'csv')}" for name in OUTPUT_NAMES}
    aggregate(metrics, history, storage, outputs, "baseline")
    return outputs


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
    row = per_class[(per_class["case"] == "small") & (per_class["class"] == 0) & (per_class["metric"] == "recall")].iloc[0]
    assert row["mean"] == pytest.approx(0.72) and row["sd"] == pytest.approx(0.02, rel=1e-5)


def test_history_mean_and_sd_over_seeds(summary_files):
    history = pd.read_csv(summary_files["history"])
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
    assert "| small | 14x14 | 25% | 2.5 | 0.25 | 0.8200 ± 0.0200 |" in text


def test_statistics_helpers():
    assert all(math.isnan(v) for v in mean_sd_ci(np.array([0.5]))[1:])
    assert welch_p(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 1.0
    assert math.isnan(welch_p(np.array([1.0]), np.array([1.0, 2.0])))


def test_manifest_records_every_input_and_output(summary_files):
    from poolup.artifacts import file_sha256

    manifest = json.loads(summary_files["manifest"].read_text())
    assert len(manifest["inputs"]) == 6 + 6 + 2
    assert manifest["outputs"]["summary.csv"] == file_sha256(summary_files["summary"])
    assert "../baseline/seed0/test_metrics.json" in manifest["inputs"]


def test_methods_table_puts_each_case_in_its_geometry_and_method():
    def case(name, window, stride, method, f1, sd, p):
        return {"case": name, "window": window, "stride": stride, "method": method, "stored_side": (28 - window) // stride + 1,
                "byte_ratio_to_baseline": 1.0 if window == 1 else 0.4, "macro_f1_mean": f1, "macro_f1_sd": sd,
                "f1_diff_to_baseline": f1 - 0.97, "f1_welch_p": p, "seeds": 3}

    summary = pd.DataFrame([
        case("baseline", 1, 1, "linear", 0.97, 0.01, float("nan")),
        case("w2s2", 2, 2, "linear", 0.96, 0.02, 0.2),
        case("w2s2-cubic", 2, 2, "cubic", 0.965, 0.01, 0.5),
        case("w3s2-nearest", 3, 2, "nearest", 0.95, 0.03, 0.01),
    ])
    lines = methods_markdown(summary, "baseline").splitlines()
    assert lines[0].startswith("baseline: test macro F1 0.9700 ± 0.0100 over 3 seeds")
    assert lines[2] == "| pooling | stored | bytes vs baseline | nearest | linear | cubic |"
    assert lines[4] == "| 2x2/2 | 14x14 | 0.40 |  | 0.9600 ± 0.0200 (-0.0100, p 0.2) | 0.9650 ± 0.0100 (-0.0050, p 0.5) |"
    assert lines[5] == "| 3x3/2 | 13x13 | 0.40 | 0.9500 ± 0.0300 (-0.0200, p 0.01) |  |  |"
    assert len(lines) == 6
