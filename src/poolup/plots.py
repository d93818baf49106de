"""The figures (``rules/plots.smk``): the paper's and the trade-off figures, each as PNG (report) and PDF (print).

One function per figure rule, named after it, taking the rule's inputs, outputs and params by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, on a workstation or a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from poolup import sequential, stats  # noqa: E402
from poolup.aggregate import shape_text  # noqa: E402
from poolup.errors import PoolupError  # noqa: E402
from poolup.h5files import open_h5  # noqa: E402
from poolup.interpolation import method_order  # noqa: E402
from poolup.provenance import decode_attr  # noqa: E402
from poolup.recipe import Recipe, read_back  # noqa: E402
from poolup.records import read_json, write_figure  # noqa: E402

PathLike = str | os.PathLike[str]
METRIC_TITLES = {
    "loss": "Objective (categorical cross-entropy)",
    "precision": "Macro precision",
    "recall": "Macro recall",
    "f1": "Macro F1 score",
    "accuracy": "Accuracy",
}


def case_colours(cases: Sequence[str]) -> dict[str, Any]:
    """The same colour for a case in every figure: tab10 in the order of the summary files."""
    palette = plt.get_cmap("tab10").colors
    return {case: palette[i % len(palette)] for i, case in enumerate(cases)}


def case_order(cases: Iterable[str]) -> list[str]:
    """The cases in the order a summary file lists them (the aggregation's order, the config's).

    Figures take their order from the files they draw, not from the ``labels``
    mapping: the rules pass ``labels`` sorted by name, so that reordering cases in
    a config file changes no parameter and reruns nothing.
    """
    return list(dict.fromkeys(cases))


def _label(labels: Mapping[str, str], case: str) -> str:
    return labels.get(case, case)


def _save(figure: plt.Figure, png: PathLike, pdf: PathLike, dpi: int) -> None:
    write_figure(figure, png, pdf, dpi)
    plt.close(figure)


def example_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """The first image of each class 0, 1, ... (then the next ones), ``count`` in all."""
    firsts = [int(np.flatnonzero(labels == label)[0]) for label in np.unique(labels)]
    taken = set(firsts)
    rest = (i for i in range(labels.shape[0]) if i not in taken)
    chosen = firsts[:count] + list(islice(rest, max(0, count - len(firsts))))
    return np.array(chosen)


def _gray(axis: plt.Axes, image: np.ndarray, frame: tuple[int, int] | None = None) -> None:
    """Draw a grey (h, w) or colour (h, w, c) image of 0-255 values at its true size in a ``frame`` (h, w)."""
    image = np.squeeze(image)
    if image.ndim == 3:  # colour: imshow wants uint8 (or 0-1 floats) for RGB
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    height, width = image.shape[:2]
    frame_height, frame_width = frame or (height, width)
    axis.imshow(image, cmap="gray", vmin=0, vmax=255, extent=(0, width, height, 0), interpolation="nearest")
    axis.set_xlim(0, frame_width)
    axis.set_ylim(frame_height, 0)
    axis.set_xticks([])
    axis.set_yticks([])


def plot_examples(raw: PathLike, png: PathLike, pdf: PathLike, examples: int, dpi: int) -> None:
    """Fig. 1: example digits as stored in the raw data set."""
    with open_h5(raw) as file:
        labels = file["labels"][()]
        chosen = example_indices(labels, examples)
        images = file["images"][np.sort(chosen)]
        order = np.argsort(np.argsort(chosen))
    figure, axes = plt.subplots(1, len(chosen), figsize=(1.4 * len(chosen), 1.8), squeeze=False)
    for axis, image_index, index in zip(axes[0], order, chosen):
        _gray(axis, images[image_index])
        axis.set_title(f"label {labels[index]}", fontsize=9)
    height, width = images.shape[1:3]
    figure.suptitle(f"Example digits ({height} x {width}, {images.dtype})", fontsize=11)
    _save(figure, png, pdf, dpi)


def plot_preprocessing(
    raw: PathLike,
    pooled: PathLike,
    label: str,
    png: PathLike,
    pdf: PathLike,
    examples: int,
    dpi: int,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
) -> None:
    """Figs. 2-5: the same digits original, stored (pooled, drawn at its true size), and up-sampled
    (with ``method`` on ``grid``, as training sees them).

    With ``case``, ``pooled`` must be that case's (:func:`poolup.provenance.check_made_for`): a figure
    never shows another case's pixels under its label.
    """
    from poolup.preprocess import way_back

    with open_h5(raw) as r, open_h5(pooled) as s:
        back = way_back(s, pooled, method, grid, case)
        chosen = np.sort(example_indices(r["labels"][()], examples))
        frame = tuple(r["images"].shape[1:3])
        # The stored images as the recipe reads them back (decoded, de-quantised), at their stored size.
        stored = np.stack([read_back(s, index, index + 1)[0] for index in chosen])
        recipe = Recipe.from_attrs({key: decode_attr(value) for key, value in s.attrs.items()})
        upsampled = back.interpolate(stored)
        rows = [
            ("original", r["images"][chosen]),
            (f"stored {stored.shape[1]}x{stored.shape[2]}", stored),
            (f"up-sampled to {upsampled.shape[1]}x{upsampled.shape[2]}", upsampled),
        ]
    figure, axes = plt.subplots(3, len(chosen), figsize=(1.4 * len(chosen), 4.6), squeeze=False)
    for row, (name, images) in enumerate(rows):
        for column, image in enumerate(images):
            _gray(axes[row, column], np.clip(image, 0, 255), frame=frame)
        axes[row, 0].set_ylabel(name, fontsize=9)
    figure.suptitle(label if recipe.layout == "images" else f"{label} ({recipe.describe()})", fontsize=11)
    _save(figure, png, pdf, dpi)


# A curve with at most this many points is drawn with a marker at each point: a
# single point (one per epoch, when an epoch has fewer batches than
# training.history_every) is then a visible dot, not an invisible line.
MARKED_POINTS = 30


def _band(axis: plt.Axes, x: np.ndarray, mean: np.ndarray, sd: np.ndarray, colour: Any, label: str) -> None:
    marker = "o" if len(x) <= MARKED_POINTS else None
    axis.plot(x, mean, color=colour, label=label, linewidth=1.6, marker=marker, markersize=5)
    if np.isfinite(sd).any():
        if len(x) > 1:
            axis.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.18, linewidth=0)
        else:
            axis.errorbar(x, mean, yerr=sd, color=colour, alpha=0.5, capsize=3, linewidth=1)


def only_epoch_points(frame: pd.DataFrame) -> int | None:
    """Batches per epoch when the curves hold only the epoch-end points (else None).

    That happens when an epoch has fewer batches than ``training.history_every``:
    each run then records one learning-curve point per epoch.
    """
    if frame.empty:
        return None
    points = frame.groupby("case").size()
    epochs = frame.groupby("case")["epoch"].nunique()
    if not (points == epochs).all():
        return None
    return int(frame.loc[frame["epoch"] == frame["epoch"].min(), "step"].max())


def curves_figure(frame: pd.DataFrame, metric: str, labels: Mapping[str, str]) -> plt.Figure:
    """Figs. 6-9: a metric over training progress, every case, mean and a band of one SD over seeds.

    ``frame`` is ``summary/history.csv``. Where it holds only one point per epoch
    (an epoch has fewer batches than ``training.history_every``), each point is
    drawn as a dot and the figure says why there is no curve.
    """
    cases = case_order(frame["case"])
    colours = case_colours(cases)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True, layout="constrained")
    for axis, side, title in (
        (axes[0], "train", "on the training batches of each interval"),
        (axes[1], "val", "on a fixed held-out sample"),
    ):
        for case in cases:
            rows = frame[frame["case"] == case]
            _band(
                axis,
                rows["progress"].to_numpy(),
                rows[f"{side}_{metric}_mean"].to_numpy(),
                rows[f"{side}_{metric}_sd"].to_numpy(),
                colours[case],
                _label(labels, case),
            )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("training progress (epochs)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(METRIC_TITLES[metric])
    axes[1].legend(fontsize=8, loc="best")
    batches = only_epoch_points(frame)
    if batches is not None:
        figure.text(
            0.5,
            0.01,
            f"One point per epoch: an epoch has {batches} batches, fewer than training.history_every;"
            f" set training.history_every below {batches} to draw a curve.",
            ha="center",
            va="bottom",
            fontsize=8,
            color="dimgrey",
        )
        figure.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    figure.suptitle(f"{METRIC_TITLES[metric]} as learning progresses (mean ± 1 SD over seeds)", fontsize=11)
    return figure


def plot_curves(
    mean_history: PathLike, metric: str, labels: Mapping[str, str], png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """Figs. 6-9 (:func:`curves_figure`) from ``summary/history.csv``."""
    _save(curves_figure(pd.read_csv(mean_history), metric, labels), png, pdf, dpi)


def per_class_figure(frame: pd.DataFrame, metric: str, labels: Mapping[str, str]) -> plt.Figure:
    """Figs. 10-12: per-class test precision, recall or F1 for every case (mean ± SD over seeds).

    ``frame`` is ``summary/per_class.csv``. The legend sits below the axes, where
    it covers no bar.
    """
    frame = frame[frame["metric"] == metric]
    cases = case_order(frame["case"])
    colours = case_colours(cases)
    classes = sorted(frame["class"].unique())
    width = 0.8 / len(cases)
    figure, axis = plt.subplots(figsize=(11, 4.8), layout="constrained")
    for i, case in enumerate(cases):
        rows = frame[frame["case"] == case].set_index("class").reindex(classes)
        sd = rows["sd"].fillna(0).to_numpy()
        axis.bar(
            np.arange(len(classes)) + (i - (len(cases) - 1) / 2) * width,
            rows["mean"],
            width,
            yerr=sd,
            color=colours[case],
            label=_label(labels, case),
            capsize=1.5,
            error_kw={"linewidth": 0.8},
        )
    low = float((frame["mean"] - frame["sd"].fillna(0)).min())
    axis.set_ylim(max(0.0, low - 0.02), 1.0)
    axis.set_xticks(range(len(classes)), [str(c) for c in classes])
    axis.set_xlabel("digit class")
    axis.set_ylabel(f"test {metric}")
    axis.grid(axis="y", alpha=0.3)
    figure.legend(*axis.get_legend_handles_labels(), fontsize=8, ncol=min(5, len(cases)), loc="outside lower center")
    axis.set_title(f"Test {metric} per class (mean ± 1 SD over seeds)", fontsize=11)
    return figure


def plot_per_class(
    per_class: PathLike, metric: str, labels: Mapping[str, str], png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """Figs. 10-12 (:func:`per_class_figure`) from ``summary/per_class.csv``."""
    _save(per_class_figure(pd.read_csv(per_class), metric, labels), png, pdf, dpi)


CODEC_MARKERS = {"hdf5-gzip": "o", "hdf5-lzf": "s", "hdf5-zstd": "^", "hdf5-blosc-zstd": "v", "png": "D", "webp": "P"}


def _ci_errors(rows: pd.DataFrame) -> np.ndarray | None:
    """Error bars from the mean F1 down and up to its 95% CI, cut at 0 and 1 (an F1 cannot leave them).

    None without an interval (one seed). With two seeds the t-interval is wide
    enough to pass 1; the bar then ends at 1.
    """
    low = rows["macro_f1_ci_low"].clip(lower=0.0)
    high = rows["macro_f1_ci_high"].clip(upper=1.0)
    errors = np.vstack([rows["macro_f1_mean"] - low, high - rows["macro_f1_mean"]])
    return None if np.isnan(errors).all() else errors


def tradeoff_figure(summary: pd.DataFrame, codec_table: pd.DataFrame, labels: Mapping[str, str]) -> plt.Figure:
    """Beyond the paper: test macro F1 against bytes on disk, as stored and under every codec.

    ``summary`` is ``summary/summary.csv``, ``codec_table`` ``summary/storage_codecs.csv``.
    The legends sit outside the axes, where they hide no case; the F1 axis stays in [0, 1].
    """
    frame = summary.set_index("case")
    table = codec_table
    if "skipped" in table:
        table = table[table["skipped"].isna()]
    cases = case_order(summary["case"])
    colours = case_colours(cases)
    figure, (axis, by_codec) = plt.subplots(1, 2, figsize=(13, 5.6), sharey=True, layout="constrained")
    for case in cases:
        row = frame.loc[case]
        axis.errorbar(
            row["bytes_per_image"],
            row["macro_f1_mean"],
            yerr=_ci_errors(frame.loc[[case]]),
            fmt="o",
            color=colours[case],
            capsize=4,
            markersize=7,
            label=f"{_label(labels, case)} ({row['pixel_ratio']:.0%} of pixels)",
        )
    axis.set_xlabel("bytes on disk per image (stored, after the HDF5 filter)")
    axis.set_ylabel("test macro F1")
    axis.grid(alpha=0.3)
    axis.set_title("What is lost against what is saved (mean, 95% CI over seeds)", fontsize=11)
    for row in table.itertuples():
        if row.case in frame.index:
            by_codec.scatter(
                row.ratio_to_raw,
                frame.loc[row.case, "macro_f1_mean"],
                color=colours[row.case],
                marker=CODEC_MARKERS.get(row.codec, "o"),
                s=45,
            )
    by_codec.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    codec_handles = [
        by_codec.scatter([], [], color="grey", marker=marker, label=codec)
        for codec, marker in CODEC_MARKERS.items()
        if codec in set(table["codec"])
    ]
    by_codec.set_xlabel("bytes vs the raw images under the same codec (left of 1 saves disk)")
    by_codec.grid(alpha=0.3)
    by_codec.set_title("The same cases under real codecs", fontsize=11)
    low, high = axis.get_ylim()
    axis.set_ylim(max(low, 0.0), min(high, 1.0))
    figure.legend(*axis.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncol=min(3, len(cases)))
    if codec_handles:
        figure.legend(
            handles=codec_handles,
            fontsize=8,
            loc="outside right upper",
            title="codec (colour: case)",
            title_fontsize=8,
        )
    return figure


def plot_tradeoff(
    summary: PathLike, codec_table: PathLike, labels: Mapping[str, str], png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """The trade-off figure (:func:`tradeoff_figure`) from the summary and the codec table."""
    _save(tradeoff_figure(pd.read_csv(summary), pd.read_csv(codec_table), labels), png, pdf, dpi)


# One colour per interpolation method (figure of methods), apart from the case colours.
METHOD_COLOURS = {
    "nearest": "tab:orange",
    "area": "tab:purple",
    "linear": "tab:blue",
    "cubic": "tab:green",
    "lanczos": "tab:red",
}


def plot_methods(summary: PathLike, baseline: str, png: PathLike, pdf: PathLike, dpi: int) -> None:
    """Beyond the paper: test macro F1 of each pooling geometry under each interpolation method."""
    frame = pd.read_csv(summary)
    if "method" not in frame:
        raise PoolupError(f"{summary}: no method column (written by an older poolup); rerun the aggregate stage")
    if baseline not in set(frame["case"]):
        raise PoolupError(f"{summary}: no baseline case {baseline!r}")
    reference = frame[frame["case"] == baseline].iloc[0]
    others = frame[frame["case"] != baseline]
    geometries = list(dict.fromkeys(zip(others["window"], others["stride"])))
    methods = method_order(others["method"])
    figure, axis = plt.subplots(figsize=(max(6.0, 1.8 * len(geometries) + 2), 4.6))
    if not np.isnan(reference["macro_f1_ci_low"]):
        axis.axhspan(reference["macro_f1_ci_low"], reference["macro_f1_ci_high"], color="grey", alpha=0.15)
    axis.axhline(reference["macro_f1_mean"], color="grey", linewidth=1, label=f"{baseline} (mean, 95% CI)")
    width = 0.7 / max(len(methods), 1)
    for m, method in enumerate(methods):
        rows = others[others["method"] == method]
        x = (
            np.array([geometries.index((w, s)) for w, s in zip(rows["window"], rows["stride"])])
            + (m - (len(methods) - 1) / 2) * width
        )
        axis.errorbar(
            x,
            rows["macro_f1_mean"],
            yerr=_ci_errors(rows),
            fmt="o",
            capsize=4,
            color=METHOD_COLOURS.get(method),
            label=method,
            markersize=7,
        )
    ratios = others.drop_duplicates(["window", "stride"]).set_index(["window", "stride"])
    axis.set_xticks(range(len(geometries)))
    axis.set_xticklabels(
        [
            f"{w}x{w}/{s}\n{shape_text(ratios.loc[(w, s), 'stored_height'], ratios.loc[(w, s), 'stored_width'])},"
            f" {ratios.loc[(w, s), 'byte_ratio_to_baseline']:.2f}x bytes"
            for w, s in geometries
        ],
        fontsize=9,
    )
    axis.set_xlabel("pooling window/stride, stored size, bytes on disk vs the baseline")
    axis.set_ylabel("test macro F1")
    axis.grid(alpha=0.3, axis="y")
    # Below the axes: with five methods, a legend inside covers error bars.
    axis.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=len(methods) + 1,
        title="interpolation back to full size",
        title_fontsize=8,
    )
    axis.set_title("Interpolation method by pooling case (mean, 95% CI over seeds)", fontsize=11)
    _save(figure, png, pdf, dpi)


def plot_confusion(
    confusion: PathLike, baseline: str, labels: Mapping[str, str], png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """Beyond the paper: each case's confusion matrix minus the baseline's (percentage points of each true class)."""
    record = read_json(confusion)
    matrices = {case: np.asarray(m) * 100 for case, m in record["row_normalised_mean"].items()}
    if baseline not in matrices:
        raise PoolupError(f"{confusion}: no baseline case {baseline!r}")
    others = [case for case in case_order(record.get("cases", matrices)) if case != baseline and case in matrices]
    if not others:
        others = [baseline]
    diffs = [matrices[case] - matrices[baseline] for case in others]
    limit = max(0.5, float(max(np.abs(d).max() for d in diffs)))
    figure, axes = plt.subplots(1, len(others), figsize=(3.6 * len(others) + 0.8, 3.9), squeeze=False)
    image = None
    for axis, case, diff in zip(axes[0], others, diffs):
        image = axis.imshow(diff, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(_label(labels, case), fontsize=9)
        axis.set_xlabel("predicted class")
        axis.set_xticks(range(diff.shape[0]))
        axis.set_yticks(range(diff.shape[0]))
        axis.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("true class")
    figure.colorbar(
        image, ax=axes[0].tolist(), shrink=0.85, label=f"percentage points vs {labels.get(baseline, baseline)}"
    )
    figure.suptitle("Confusion matrix minus the baseline's (share of each true class, mean over seeds)", fontsize=11)
    _save(figure, png, pdf, dpi)


VERDICT_COLOURS = {stats.SMALLER: "tab:green", stats.LARGER: "tab:red", stats.UNDECIDED: "tab:grey"}


def _row_labels(rows: pd.DataFrame, labels: Mapping[str, str]) -> list[str]:
    """Case labels, with the interpolation method where several methods are run."""
    several = "method" in rows and rows["method"].nunique() > 1
    return [labels.get(r.case, r.case) + (f" ({r.method})" if several else "") for r in rows.itertuples()]


def forest_figure(
    summary: pd.DataFrame,
    baseline: str,
    labels: Mapping[str, str],
    margin: float,
    confidence: float,
    looks: Sequence[int] | None = None,
) -> plt.Figure:
    """Paired ΔF1 of each case against the baseline: t and bootstrap intervals, the margin, the verdict.

    One row per non-baseline case, top to bottom in config order. The dot and
    its capped bar: mean ΔF1 and its t-interval at ``confidence``; the thick
    pale bar: the interval that decides the verdict (``1 - 2 alpha``, in a
    sequential design ``looks`` ``1 - 2 alpha / K``: summary.csv's ``look_alpha``);
    the thin bar below: the BCa bootstrap interval. Right-hand labels: verdict,
    Holm p, and in a sequential design the look that decided it and its seeds.
    """
    rows = summary[summary["case"] != baseline].reset_index(drop=True)
    if rows.empty:
        raise PoolupError(f"no case besides the baseline {baseline!r} to compare; add a case to the config")
    y = np.arange(len(rows))[::-1].astype(float)
    figure, axis = plt.subplots(figsize=(10, 1.8 + 0.55 * len(rows)), layout="constrained")
    spent = float(rows["look_alpha"].iloc[0]) if "look_alpha" in rows else 1 - confidence
    level, verdict_level = f"{confidence:.0%}", f"{100 * (1 - 2 * spent):.3g}%"
    axis.hlines(
        y,
        rows["margin_ci_low"],
        rows["margin_ci_high"],
        colors="tab:blue",
        alpha=0.25,
        linewidth=9,
        label=f"{verdict_level} t-interval (decides the verdict)",
    )
    for row, position in zip(rows.itertuples(), y):
        errors = (
            None
            if np.isnan(row.delta_ci_low)
            else [[row.delta_f1 - row.delta_ci_low], [row.delta_ci_high - row.delta_f1]]
        )
        axis.errorbar(
            row.delta_f1,
            position,
            xerr=errors,
            fmt="o",
            color=VERDICT_COLOURS.get(row.verdict, "black"),
            ecolor="black",
            capsize=4,
            markersize=7,
            zorder=3,
        )
    axis.errorbar([], [], xerr=[], fmt="o", color="black", capsize=4, label=f"mean ΔF1, {level} t-interval")
    axis.hlines(
        y - 0.28,
        rows["delta_boot_low"],
        rows["delta_boot_high"],
        colors="dimgrey",
        linewidth=1.2,
        label=f"{level} bootstrap interval (BCa)",
    )
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.axvline(-margin, color="tab:red", linewidth=0.8, linestyle="--")
    ends = rows[["margin_ci_low", "delta_ci_low", "delta_boot_low", "delta_f1"]].to_numpy(float)
    left = min(float(np.nanmin(ends)), -margin) if np.isfinite(ends).any() else -margin
    highs = rows[["margin_ci_high", "delta_ci_high", "delta_boot_high", "delta_f1"]].to_numpy(float)
    right = max(float(np.nanmax(highs)), margin / 2) if np.isfinite(highs).any() else margin / 2
    pad = 0.08 * (right - left)
    axis.set_xlim(left - pad, right + pad)
    axis.axvspan(
        left - pad, -margin, color="tab:red", alpha=0.08, linewidth=0, label=f"loss larger than the margin ({margin:g})"
    )
    axis.set_ylim(-0.8, len(rows) - 0.4)
    axis.set_yticks(y, _row_labels(rows, labels))
    _verdict_axis(axis, rows, y, looks)
    axis.set_xlabel(f"ΔF1 = test macro F1 of the case - {labels.get(baseline, baseline)}, paired by seed")
    axis.grid(alpha=0.3, axis="x")
    figure.legend(*axis.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncol=2)
    axis.set_title(_forest_title(rows, looks), fontsize=11)
    return figure


def _verdict_axis(axis: plt.Axes, rows: pd.DataFrame, y: np.ndarray, looks: Sequence[int] | None) -> None:
    """The right-hand labels: each case's verdict, Holm p, and in a sequential design the look that decided it."""

    def decided(r: Any) -> str:
        when = "decided at" if r.verdict != stats.UNDECIDED else "after"
        return f"\n{when} {sequential.look_text(r.looks_used, r.paired_n, looks)}" if looks else ""

    verdicts = axis.twinx()
    verdicts.set_ylim(axis.get_ylim())
    verdicts.set_yticks(y, [f"{r.verdict}, Holm p {_p(r.holm_p)}{decided(r)}" for r in rows.itertuples()], fontsize=8)


def _p(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2g}"


def _forest_title(rows: pd.DataFrame, looks: Sequence[int] | None) -> str:
    """The seeds paired (each count there is), and the looks of a sequential design."""
    seeds = ", ".join(map(str, sorted({int(n) for n in rows["paired_n"]})))
    design = f"; sequential design, looks at {', '.join(map(str, looks))} seeds" if looks else ""
    return f"Quality lost against the baseline (seeds paired: {seeds}{design})"


def plot_forest(
    summary: PathLike,
    baseline: str,
    labels: Mapping[str, str],
    analysis: Mapping[str, Any],
    png: PathLike,
    pdf: PathLike,
    dpi: int,
) -> None:
    """Forest plot of the paired ΔF1 (:func:`forest_figure`) from ``summary.csv``."""
    frame = pd.read_csv(summary)
    if "delta_f1" not in frame:
        raise PoolupError(f"{summary}: no paired columns (written by an older poolup); rerun the aggregate stage")
    looks = sequential.configured_looks(analysis)
    _save(forest_figure(frame, baseline, labels, analysis["margin"], analysis["confidence"], looks), png, pdf, dpi)


def per_class_delta_figure(deltas: pd.DataFrame, labels: Mapping[str, str], confidence: float) -> plt.Figure:
    """Heatmap of the paired ΔF1 per case (rows) and class (columns).

    Colour: mean ΔF1 (red: a loss). Each cell: the mean and ± the half-width
    of its t-interval at ``confidence``; a black frame marks the cells whose
    interval excludes 0 (a difference the seeds can tell from noise).
    """
    if deltas.empty:
        raise PoolupError("no per-class differences to draw: the run has no case besides the baseline")
    cases = case_order(deltas["case"])
    classes = sorted(deltas["class"].unique())
    table = deltas.set_index(["case", "class"])
    index = pd.MultiIndex.from_product([cases, classes])
    mean = table["delta_f1"].reindex(index).to_numpy(float).reshape(len(cases), len(classes))
    low = table["delta_ci_low"].reindex(index).to_numpy(float).reshape(mean.shape)
    high = table["delta_ci_high"].reindex(index).to_numpy(float).reshape(mean.shape)
    limit = max(1e-3, float(np.nanmax(np.abs(mean))) if np.isfinite(mean).any() else 0.0)
    figure, axis = plt.subplots(figsize=(1.0 + 0.85 * len(classes), 1.4 + 0.6 * len(cases)))
    image = axis.imshow(mean, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(cases)):
        for j in range(len(classes)):
            half = (high[i, j] - low[i, j]) / 2
            text = f"{mean[i, j]:+.3f}" + ("" if np.isnan(half) else f"\n±{half:.3f}")
            axis.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(mean[i, j]) > 0.6 * limit else "black",
            )
            if low[i, j] > 0 or high[i, j] < 0:
                axis.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    axis.set_xticks(range(len(classes)), [str(c) for c in classes])
    axis.set_yticks(range(len(cases)), [labels.get(case, case) for case in cases])
    axis.set_xlabel(
        f"class (cell: mean ΔF1 ± half-width of its {confidence:.0%} t-interval; framed: the interval excludes 0)"
    )
    figure.colorbar(image, ax=axis, label="ΔF1 vs baseline (paired by seed)")
    axis.set_title("Per-class F1 lost against the baseline", fontsize=11)
    return figure


def plot_per_class_delta(
    per_class_delta: PathLike, labels: Mapping[str, str], confidence: float, png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """Heatmap of the per-class paired ΔF1 (:func:`per_class_delta_figure`) from ``per_class_delta.csv``."""
    frame = pd.read_csv(per_class_delta)
    _save(per_class_delta_figure(frame, labels, confidence), png, pdf, dpi)


# One colour per recipe family in the frontier figure (the same in every run).
FAMILY_COLOURS = {
    "baseline": "black",
    "pool": "tab:blue",
    "quantize": "tab:orange",
    "pool+quantize": "tab:purple",
    "codec": "tab:green",
    "pool+codec": "tab:olive",
}


def frontier_figure(table: pd.DataFrame, margin: float) -> plt.Figure:
    """Paired ΔF1 against the byte ratio (log axis) of every recipe, coloured by family.

    Dots and capped bars: mean ΔF1 and its 95 % t-interval; the shaded band
    below ``-margin``: a loss larger than the margin; the step line joins the
    recipes on the front (no other recipe stores fewer or equal bytes with a
    better ΔF1); each point is labelled with its case name.
    """
    if table.empty:
        raise PoolupError("the frontier table has no rows; rerun the frontier stage")
    figure, axis = plt.subplots(figsize=(10, 6.5), layout="constrained")
    front = table[table["on_front"]].sort_values("byte_ratio")
    axis.step(
        front["byte_ratio"], front["delta_f1"], where="post", color="grey", linewidth=1.2, zorder=1, label="front"
    )
    for family, rows in table.groupby("family", sort=False):
        low = (rows["delta_f1"] - rows["delta_ci_low"]).fillna(0).to_numpy()
        high = (rows["delta_ci_high"] - rows["delta_f1"]).fillna(0).to_numpy()
        axis.errorbar(
            rows["byte_ratio"],
            rows["delta_f1"],
            yerr=[low, high],
            fmt="o",
            color=FAMILY_COLOURS.get(family, "tab:brown"),
            capsize=3,
            markersize=6,
            zorder=3,
            label=family,
        )
    for row in table.itertuples():
        axis.annotate(row.case, (row.byte_ratio, row.delta_f1), xytext=(4, 4), textcoords="offset points", fontsize=7)
    axis.set_xscale("log")
    lows = table["delta_ci_low"].fillna(table["delta_f1"]).to_numpy(float)
    bottom = min(float(np.nanmin(lows)), -margin) * 1.15
    top = max(float(np.nanmax(table["delta_ci_high"].fillna(0))), margin / 3) * 1.3
    axis.set_ylim(bottom, top)
    axis.axhspan(bottom, -margin, color="tab:red", alpha=0.08, linewidth=0, label=f"loss larger than {margin:g}")
    axis.axhline(-margin, color="tab:red", linewidth=0.8, linestyle="--")
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xlabel("bytes stored, as a fraction of the baseline's (log scale)")
    axis.set_ylabel("ΔF1 against the baseline (paired by seed, 95 % CI)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8, loc="lower right")
    seeds = sorted({int(n) for n in table["seeds"]})
    axis.set_title(f"Bytes stored against quality lost, per recipe (seeds per case: {', '.join(map(str, seeds))})")
    return figure


def plot_frontier(table: PathLike, margin: float, png: PathLike, pdf: PathLike, dpi: int) -> None:
    """The frontier figure (:func:`frontier_figure`) from ``frontier.csv``."""
    frame = pd.read_csv(table)
    frame["on_front"] = frame["on_front"].astype(bool)
    _save(frontier_figure(frame, margin), png, pdf, dpi)
