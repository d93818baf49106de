"""Aggregation over seeds (``rules/aggregate.smk``): run tables, per-case summaries, averaged learning curves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poolup import sequential
from poolup import stats as paired
from poolup.errors import PoolupError
from poolup.eval_images import TEST_IMAGES, design_kind, kinds_of, of_kind, test_scores
from poolup.loop import HISTORY_METRICS
from poolup.provenance import check_made_for
from poolup.records import read_case_records, read_json, write_csv, write_json, write_manifest, write_text
from poolup.runs import seed_of
from poolup.summary_tables import datasets_markdown, interval_text, methods_markdown, result_table, summary_markdown

PathLike = str | os.PathLike[str]
# The method column of a case whose method is not given: interpolation.method's default.
DEFAULT_METHOD = "linear"
SCORES: tuple[str, ...] = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
# What to do about a record that is not its folder's (check_made_for's fix).
_REDO_RUN = "delete it and rerun snakemake: its train job remakes it"
_REDO_STORE = "delete it and rerun snakemake: its store job remakes it"
RUN_COLUMNS: tuple[str, ...] = (
    "case",
    "seed",
    "test_images",
    *SCORES,
    "n_train",
    "n_test",
    "train_seconds",
    "monitor_seconds",
    "total_seconds",
    "images_per_second",
    "threads",
    "device",
)


def collect_runs(metrics_files: Sequence[PathLike]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per case x seed from ``test_metrics.json`` files, and the parsed files.

    Each file must be its run's: the case and seed it records are those of its
    folders, ``{case}/seed{n}/`` (:func:`poolup.provenance.check_made_for`), so a
    record copied from another run is named, never counted twice.
    """
    records = [read_run_record(path) for path in metrics_files]
    if not records:
        raise PoolupError("no test_metrics.json to aggregate; run the train stage first")
    wanted = set(RUN_COLUMNS) - {"test_images"}
    missing = [str(path) for path, record in zip(metrics_files, records) if not wanted <= set(record)]
    if missing:
        raise PoolupError(f"{missing[0]}: not a complete test_metrics.json; delete it and rerun its train job")
    rows = [
        {
            **{column: record[column] for column in wanted},
            "test_images": kind,
            **{s: test_scores(record, kind)[s] for s in SCORES},
        }
        for kind in kinds_of(records)
        for record in records
    ]
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return runs.sort_values(["test_images", "case", "seed"], key=_case_key(runs)).reset_index(drop=True), records


def read_run_record(path: PathLike) -> dict[str, Any]:
    """A run's ``test_metrics.json``, checked, and made for the case and seed of its folders ``{case}/seed{n}/``."""
    record = read_json(path)
    check_made_for(path, record, {"case": Path(path).parent.parent.name, "seed": seed_of(path)}, fix=_REDO_RUN)
    return record


def read_storage_record(path: PathLike) -> dict[str, Any]:
    """A case's ``storage.json``, checked, and made for the case of its folder (above the case's run folders)."""
    return read_case_records([path], in_case_folders=True, fix=_REDO_STORE)[0]


def _case_key(frame: pd.DataFrame):
    order = {case: i for i, case in enumerate(dict.fromkeys(frame["case"]))}
    kinds = {kind: i for i, kind in enumerate(TEST_IMAGES)}
    return lambda column: (
        column.map(order) if column.name == "case" else column.map(kinds) if column.name == "test_images" else column
    )


def mean_sd_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample SD (ddof=1) and the two-sided t confidence interval of the mean.

    With a single value the SD and interval are NaN: one seed says nothing
    about the spread.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(values.std(ddof=1))
    from scipy import stats  # here, not at the top: figure jobs import this module too

    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * sd / np.sqrt(values.size))
    return mean, sd, mean - half, mean + half


def welch_p(values: np.ndarray, reference: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); NaN if undefined."""
    values, reference = np.asarray(values, float), np.asarray(reference, float)
    if values.size < 2 or reference.size < 2:
        return float("nan")
    if np.all(values == values[0]) and np.all(reference == reference[0]):
        return 1.0 if values[0] == reference[0] else 0.0
    from scipy import stats  # here, not at the top: figure jobs import this module too

    return float(stats.ttest_ind(values, reference, equal_var=False).pvalue)


def summarize(
    runs: pd.DataFrame,
    storage: dict[str, dict[str, Any]],
    baseline: str,
    cases: Sequence[str],
    analysis: Mapping[str, Any],
    methods: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per case: score statistics over seeds, storage figures, and the comparison with the baseline.

    Parameters
    ----------
    runs : DataFrame
        From :func:`collect_runs`.
    storage : dict
        Case name to its ``storage.json`` record.
    baseline : str
        The reference case.
    cases : sequence of str
        Cases in display order.
    analysis : mapping
        Config section ``analysis``: ``margin``, ``confidence``,
        ``bootstrap_resamples``, ``power`` (see :mod:`poolup.stats`).
    methods : mapping, optional
        Case name to its interpolation method (the ``method`` column); ``DEFAULT_METHOD`` when absent.

    Every non-baseline case is compared with the baseline twice: unpaired
    (``f1_diff_to_baseline``, ``f1_welch_p``, as the paper) and paired by seed
    (:data:`poolup.stats.PAIRED_COLUMNS`, from :func:`poolup.stats.compare_paired`), with
    Holm's adjustment of the paired p-values across the cases (``holm_p``). One block of rows
    per kind of test images the runs hold (``test_images``: ``stored``, then ``raw``), each
    computed within its kind.
    """
    kinds = list(dict.fromkeys(runs["test_images"])) if "test_images" in runs.columns else [TEST_IMAGES[0]]
    tables = [_summarize_kind(of_kind(runs, kind), kind, storage, baseline, cases, analysis, methods) for kind in kinds]
    return pd.concat(tables, ignore_index=True)


def _summarize_kind(
    runs: pd.DataFrame,
    test_images: str,
    storage: dict[str, dict[str, Any]],
    baseline: str,
    cases: Sequence[str],
    analysis: Mapping[str, Any],
    methods: Mapping[str, str] | None,
) -> pd.DataFrame:
    """:func:`summarize` on one kind of test images: every statistic, Holm's adjustment included, within it."""
    methods = methods or {}
    judged = test_images == design_kind(analysis)  # the kind whose verdicts the looks decided
    if baseline not in set(runs["case"]):
        raise PoolupError(f"baseline case {baseline!r} has no runs; it must be among the cases trained")
    reference_f1 = runs.loc[runs["case"] == baseline, "macro_f1"].to_numpy()
    reference_bytes = storage[baseline]["stored_bytes"]
    rows = []
    for case in cases:
        group = runs[runs["case"] == case]
        row: dict[str, Any] = {"case": case, "test_images": test_images, "seeds": len(group)}
        for score in SCORES:
            mean, sd, low, high = mean_sd_ci(group[score].to_numpy())
            row.update({f"{score}_mean": mean, f"{score}_sd": sd, f"{score}_ci_low": low, f"{score}_ci_high": high})
        record = storage[case]
        row.update(
            {
                "window": record["window"],
                "stride": record["stride"],
                "method": methods.get(case, DEFAULT_METHOD),
                "stored_height": record["stored_shape"][0],
                "stored_width": record["stored_shape"][1],
                "stored_pixels": record["stored_pixels"],
                "pixel_ratio": record["pixel_ratio"],
                "stored_bytes": record["stored_bytes"],
                "bytes_per_image": record["bytes_per_image"],
                "byte_ratio_to_baseline": record["stored_bytes"] / reference_bytes,
                "f1_diff_to_baseline": row["macro_f1_mean"] - float(reference_f1.mean()),
                "f1_welch_p": float("nan") if case == baseline else welch_p(group["macro_f1"].to_numpy(), reference_f1),
                "train_seconds_mean": float(group["train_seconds"].mean()),
            }
        )
        row.update(_paired_row(runs, case, baseline, analysis, judged))
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary.insert(summary.columns.get_loc("paired_p") + 1, "holm_p", paired.holm(summary["paired_p"]))
    # Against a fixed design that trains every case to the last look (a fixed design saves none).
    looks = sequential.configured_looks(analysis)
    summary["seeds_saved"] = (looks[-1] - summary["seeds"]) if looks else 0
    return summary


def _by_seed(runs: pd.DataFrame, case: str, column: str) -> dict[int, float]:
    rows = runs[runs["case"] == case]
    return dict(zip(rows["seed"].astype(int), rows[column].astype(float)))


def _f1_differences(runs: pd.DataFrame, case: str, baseline: str) -> np.ndarray:
    """A case's test macro F1 minus the baseline's, seed by seed (:func:`poolup.stats.paired_differences`)."""
    return paired.paired_differences(_by_seed(runs, case, "macro_f1"), _by_seed(runs, baseline, "macro_f1"))[1]


def _paired_row(
    runs: pd.DataFrame, case: str, baseline: str, analysis: Mapping[str, Any], judged: bool = True
) -> dict[str, Any]:
    """The paired statistics of one case's macro F1 against the baseline's, and where the design decided its verdict.

    Blank for the baseline itself. In a sequential design (``analysis.sequential.looks``) the
    verdict and its interval (``margin_ci_*``) are the design's (:func:`poolup.sequential.case_outcome`);
    a fixed design is its one look, at ``alpha``. ``judged``: whether these are the scores the design
    judged (``analysis.test_images``); the other kind's verdict is the last look's its seeds reach.
    """
    if case == baseline:
        columns = (*paired.PAIRED_COLUMNS, *sequential.VERDICT_LOOK_COLUMNS)
        return {column: ("" if column == "verdict" else np.nan) for column in columns}
    differences = _f1_differences(runs, case, baseline)
    row = paired.compare_paired(
        differences, analysis["margin"], analysis["confidence"], analysis["bootstrap_resamples"], analysis["power"]
    )
    looks = sequential.configured_looks(analysis)
    if looks:
        alpha = 1 - analysis["confidence"]
        row.update(sequential.case_outcome(differences, looks, analysis["margin"], alpha, judged=judged))
    else:
        decided = row["verdict"] != paired.UNDECIDED
        row.update(look_alpha=1 - analysis["confidence"], looks_used=1, deciding_look=1.0 if decided else np.nan)
    return row


def class_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each class's name, class 0 first: the class folders' names the runs record (a folder data set),
    else the class numbers."""
    recorded = next((record["class_names"] for record in records if record.get("class_names")), None)
    return list(recorded) if recorded else [str(label) for label in range(len(records[0]["f1"]))]


def per_class_table(records: Sequence[dict[str, Any]], cases: Sequence[str]) -> pd.DataFrame:
    """Per case and class: mean and SD over seeds of test precision, recall and F1."""
    names = class_names(records)
    rows = []
    for case in cases:
        group = [record for record in records if record["case"] == case]
        for metric in ("precision", "recall", "f1"):
            values = np.array([record[metric] for record in group], dtype=np.float64)
            for label in range(values.shape[1]):
                rows.append(
                    {
                        "case": case,
                        "class": label,
                        "class_name": names[label],
                        "metric": metric,
                        "mean": float(values[:, label].mean()),
                        "sd": float(values[:, label].std(ddof=1)) if len(group) > 1 else float("nan"),
                    }
                )
    return pd.DataFrame(rows)


def per_class_delta_table(
    records: Sequence[dict[str, Any]], cases: Sequence[str], baseline: str, confidence: float
) -> pd.DataFrame:
    """Per case and class: the paired ΔF1 to the baseline over the shared seeds, with its t-interval.

    ``paired_p`` is the paired t-test of each class; ``holm_p`` adjusts it
    across the classes of one case (which digits lose, without ten chances
    of a false alarm per case).
    """

    def by_seed(case: str) -> dict[int, np.ndarray]:
        return {int(r["seed"]): np.asarray(r["f1"], np.float64) for r in records if r["case"] == case}

    reference = by_seed(baseline)
    names = class_names(records)
    rows = []
    for case in cases:
        if case == baseline:
            continue
        _, differences = paired.paired_differences(by_seed(case), reference)
        block = []
        for label in range(differences.shape[1] if differences.ndim == 2 else 0):
            values = differences[:, label]
            low, high = paired.t_interval(values, confidence)
            block.append(
                {
                    "case": case,
                    "class": label,
                    "class_name": names[label],
                    "paired_n": int(values.size),
                    "delta_f1": float(values.mean()),
                    "delta_sd": float(values.std(ddof=1)) if values.size > 1 else np.nan,
                    "delta_ci_low": low,
                    "delta_ci_high": high,
                    "paired_p": paired.paired_p(values),
                }
            )
        for entry, adjusted in zip(block, paired.holm([entry["paired_p"] for entry in block])):
            entry["holm_p"] = adjusted
        rows.extend(block)
    columns = [
        "case",
        "class",
        "class_name",
        "paired_n",
        "delta_f1",
        "delta_sd",
        "delta_ci_low",
        "delta_ci_high",
        "paired_p",
        "holm_p",
    ]
    return pd.DataFrame(rows, columns=columns)


def mean_confusion(records: Sequence[dict[str, Any]], cases: Sequence[str]) -> dict[str, list[list[float]]]:
    """Per case: the row-normalised confusion matrix (share of each true class), averaged over seeds."""
    result = {}
    for case in cases:
        matrices = [
            np.asarray(record["confusion_matrix"], dtype=np.float64) for record in records if record["case"] == case
        ]
        normalised = [m / np.maximum(m.sum(axis=1, keepdims=True), 1) for m in matrices]
        result[case] = np.mean(normalised, axis=0).tolist()
    return result


def average_history(history_files: dict[str, Sequence[PathLike]]) -> pd.DataFrame:
    """Learning curves averaged over seeds: mean and SD of every metric per case and step.

    With early stopping, seeds stop after different epochs: each step is averaged over the
    seeds that reached it (column ``seeds``); the runs must agree on the steps they share.
    """
    frames = []
    for case, files in history_files.items():
        runs = [pd.read_csv(path) for path in files]
        longest = max(runs, key=len)
        if any(tuple(run["step"]) != tuple(longest["step"][: len(run)]) for run in runs):
            raise PoolupError(
                f"case {case}: the seeds' history.csv files have different steps; rerun its train jobs with one config"
            )
        stacked = pd.concat(runs, keys=range(len(runs)), names=["run", "row"])
        grouped = stacked.groupby(level="row")
        frame = longest[["epoch", "step", "progress", "images_seen"]].copy()
        frame.insert(len(frame.columns), "seeds", grouped.size().to_numpy())
        for metric in HISTORY_METRICS:
            frame[f"{metric}_mean"] = grouped[metric].mean().to_numpy()
            frame[f"{metric}_sd"] = grouped[metric].std(ddof=1).to_numpy()
        frame.insert(0, "case", case)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def look_table(runs: pd.DataFrame, baseline: str, cases: Sequence[str], analysis: Mapping[str, Any]) -> pd.DataFrame:
    """A sequential design's looks as display text (``summary.md``): one row per non-baseline case, one column per
    look, the verdict's interval there (:func:`poolup.sequential.look_intervals`). Empty in a fixed design."""
    looks = sequential.configured_looks(analysis)
    if not looks:
        return pd.DataFrame()
    rows = []
    for case in cases:
        if case == baseline:
            continue
        row = {"case": case}
        differences = _f1_differences(runs, case, baseline)
        judged = sequential.look_intervals(differences, looks, analysis["margin"], 1 - analysis["confidence"])
        for index, seeds in enumerate(looks):
            cell = ""
            if index < len(judged):
                look = judged[index]
                cell = interval_text(look["low"], look["high"])
                if look["verdict"] != paired.UNDECIDED:
                    cell += f" {look['verdict']}"
            row[f"look {index + 1} ({sequential.seeds_text(seeds)})"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(
    *,
    metrics: Sequence[PathLike],
    history: Sequence[PathLike],
    storage: Sequence[PathLike],
    runs: PathLike,
    summary: PathLike,
    summary_md: PathLike,
    result: PathLike,
    methods_md: PathLike,
    mean_history: PathLike,
    per_class: PathLike,
    per_class_delta: PathLike,
    confusion: PathLike,
    manifest: PathLike,
    baseline: str,
    analysis: Mapping[str, Any],
    methods: Mapping[str, str] | None = None,
    design: Sequence[PathLike] = (),
) -> pd.DataFrame:
    """Write every summary file from the per-run and per-case artifacts (the ``aggregate`` rule).

    Inputs: ``metrics`` (each run's ``test_metrics.json``), ``history`` (each
    run's ``history.csv``, in the same order) and ``storage`` (each case's
    ``storage.json``). Outputs: ``runs``, ``summary`` (CSV) and ``summary_md``,
    ``result`` (the paired result as display text), ``methods_md``,
    ``mean_history`` (learning curves averaged over seeds), ``per_class``,
    ``per_class_delta``, ``confusion`` and ``manifest`` (every input and output
    with its sha256). ``analysis`` is the config section of that name;
    ``methods`` maps each case to its interpolation method. ``design``: in a
    sequential design, the record of its last look (the runs are the seeds it
    trained; the verdicts recomputed here must be the record's). Returns the summary table.
    """
    run_table, records = collect_runs(metrics)
    cases = list(dict.fromkeys(run_table["case"]))
    storage_records = {record["case"]: record for record in map(read_storage_record, storage)}
    missing = [case for case in cases if case not in storage_records]
    if missing:
        raise PoolupError(
            f"case {missing[0]} has runs but no storage.json among the aggregation's inputs; pass every case's "
            "storage.json (the aggregate rule lists them)"
        )
    if len(history) != len(metrics):
        raise PoolupError(f"{len(history)} history files for {len(metrics)} runs; every run needs both")
    by_case: dict[str, list[PathLike]] = {case: [] for case in cases}
    for metrics_path, history_path, record in zip(metrics, history, records):
        if Path(metrics_path).parent != Path(history_path).parent:
            raise PoolupError(f"{history_path}: not from the same run as {metrics_path}; pass them in the same order")
        by_case[record["case"]].append(history_path)
    table = summarize(run_table, storage_records, baseline, cases, analysis, methods)
    judged = design_kind(analysis, table)
    for path in design:
        sequential.check_record(path, of_kind(table, judged))
    deltas = per_class_delta_table(records, cases, baseline, analysis["confidence"])
    write_csv(runs, run_table)
    write_csv(summary, table)
    write_text(
        summary_md,
        summary_markdown(
            table, baseline, analysis, deltas, look_table(of_kind(run_table, judged), baseline, cases, analysis)
        ),
    )
    write_csv(result, result_table(table, baseline, analysis), float_format=None)
    write_text(methods_md, methods_markdown(table, baseline))
    write_csv(mean_history, average_history(by_case))
    write_csv(per_class, per_class_table(records, cases))
    write_csv(per_class_delta, deltas)
    # JSON keys are written sorted: "cases" keeps the order of the tables, for the figure.
    write_json(confusion, {"cases": cases, "row_normalised_mean": mean_confusion(records, cases)})
    write_manifest(
        manifest,
        [*metrics, *history, *storage, *design],
        [runs, summary, summary_md, result, methods_md, mean_history, per_class, per_class_delta, confusion],
        stage="aggregate",
    )
    return table


def compare_datasets(
    *,
    summaries: Sequence[PathLike],
    datasets: Sequence[str],
    table: PathLike,
    table_md: PathLike,
    manifest: PathLike,
    baseline: str,
) -> pd.DataFrame:
    """One table of every data set's per-case summary, to compare data sets (the ``compare_datasets`` rule).

    Parameters
    ----------
    summaries : sequence of path-like
        Each data set's ``summary.csv``, in the order of ``datasets``.
    datasets : sequence of str
        The data sets' names, in the order to list them.
    table, table_md, manifest : path-like
        The combined table as CSV and as Markdown, and the manifest of inputs and outputs.
    baseline : str
        The baseline case (column titles).

    Returns
    -------
    pandas.DataFrame
        The per-case summaries with a leading ``dataset`` column.
    """
    if not summaries:
        raise PoolupError("no data sets to compare; list at least one under config key 'datasets'")
    if len(summaries) != len(datasets):
        raise PoolupError(f"{len(summaries)} summary files for {len(datasets)} data sets; pass one per data set")
    frames = []
    for name, path in zip(datasets, summaries):
        frame = pd.read_csv(path)
        frame.insert(0, "dataset", name)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    write_csv(table, combined)
    write_text(table_md, datasets_markdown(combined, baseline))
    write_manifest(manifest, list(summaries), [table, table_md], stage="aggregate")
    return combined
