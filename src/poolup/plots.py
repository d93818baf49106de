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

from poolup.errors import PoolupError  # noqa: E402
from poolup.eval_images import TEST_IMAGES, of_kind  # noqa: E402
from poolup.h5files import open_h5  # noqa: E402
from poolup.interpolation import method_order  # noqa: E402
from poolup.provenance import decode_attr  # noqa: E402
from poolup.recipe import Recipe, read_back  # noqa: E402
from poolup.records import read_json, write_figure  # noqa: E402
from poolup.summary_tables import class_labels, shape_text  # noqa: E402

PathLike = str | os.PathLike[str]
METRIC_TITLES = {
    "loss": "Objective (categorical cross-entropy)",
    "precision": "Macro precision",
    "recall": "Macro recall",
    "f1": "Macro F1 score",
    "accuracy": "Accuracy",
}


def case_colours(cases: Sequence[str]) -> dict[str, Any]:
    """The same colour for a case in every figure, in the order of the summary files: tab10's ten, then
    (from the 11th case) tab20's light shades, so that 20 cases have 20 colours (:func:`case_markers` tells
    a case from the one of the same hue)."""
    tab20 = plt.get_cmap("tab20").colors
    palette = tab20[0::2] + tab20[1::2]  # tab10's colours first, then their light shades
    return {case: palette[i % len(palette)] for i, case in enumerate(cases)}


# A marker per block of ten cases: the 11th case has the 1st one's hue (lighter) and another marker.
CASE_MARKERS = ("o", "s", "^", "D")


def case_markers(cases: Sequence[str]) -> dict[str, str]:
    """The marker of each case in the order of the summary files (:data:`CASE_MARKERS`, by blocks of ten)."""
    return {case: CASE_MARKERS[(i // 10) % len(CASE_MARKERS)] for i, case in enumerate(cases)}


def case_order(cases: Iterable[str]) -> list[str]:
    """The cases in the order a summary file lists them (the aggregation's order, the config's).

    Figures take their order from the files they draw, not from the ``labels``
    mapping: the rules pass ``labels`` sorted by name, so that reordering cases in
    a config file changes no parameter and reruns nothing.
    """
    return list(dict.fromkeys(cases))


def _label(labels: Mapping[str, str], case: str) -> str:
    return labels.get(case, case)


def save_figure(figure: plt.Figure, png: PathLike, pdf: PathLike, dpi: int) -> None:
    write_figure(figure, png, pdf, dpi)
    plt.close(figure)


# Where place_labels tries each label, in points from its point: beside, above, below, then further out.
LABEL_OFFSETS = [(5, 3), (5, -11), (-5, 9), (5, 13), (5, -21), (-5, -15), (5, 23), (5, -31), (5, 33), (5, -41)]


def place_labels(axis: plt.Axes, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], **style) -> None:
    """Label each point where its text overlaps no label placed before it (the first free offset of
    ``LABEL_OFFSETS``, else the last), so that labels of points close together stay readable."""
    renderer = axis.figure.canvas.get_renderer()
    placed: list[Any] = []
    for x, y, text in zip(xs, ys, texts):
        label = None
        for dx, dy in LABEL_OFFSETS:
            if label is not None:
                label.remove()
            label = axis.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", ha="left" if dx > 0 else "right", **style
            )
            box = label.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(other) for other in placed):
                break
        placed.append(label.get_window_extent(renderer))


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
    save_figure(figure, png, pdf, dpi)


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
    save_figure(figure, png, pdf, dpi)


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
    save_figure(curves_figure(pd.read_csv(mean_history), metric, labels), png, pdf, dpi)


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
    axis.set_xticks(range(len(classes)), class_labels(frame, classes))
    axis.set_xlabel("class")
    axis.set_ylabel(f"test {metric}")
    axis.grid(axis="y", alpha=0.3)
    figure.legend(*axis.get_legend_handles_labels(), fontsize=8, ncol=min(5, len(cases)), loc="outside lower center")
    axis.set_title(f"Test {metric} per class (mean ± 1 SD over seeds)", fontsize=11)
    return figure


def plot_per_class(
    per_class: PathLike, metric: str, labels: Mapping[str, str], png: PathLike, pdf: PathLike, dpi: int
) -> None:
    """Figs. 10-12 (:func:`per_class_figure`) from ``summary/per_class.csv``."""
    save_figure(per_class_figure(pd.read_csv(per_class), metric, labels), png, pdf, dpi)


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
    summary = of_kind(summary, TEST_IMAGES[0])  # the paper's protocol: test images stored as the training images
    frame = summary.set_index("case")
    table = codec_table
    if "skipped" in table:
        table = table[table["skipped"].isna()]
    cases = case_order(summary["case"])
    colours, markers = case_colours(cases), case_markers(cases)
    figure, (axis, by_codec) = plt.subplots(1, 2, figsize=(13, 5.6), sharey=True, layout="constrained")
    for case in cases:
        row = frame.loc[case]
        axis.errorbar(
            row["bytes_per_image"],
            row["macro_f1_mean"],
            yerr=_ci_errors(frame.loc[[case]]),
            fmt=markers[case],
            color=colours[case],
            capsize=4,
            markersize=7,
            label=f"{_label(labels, case)} ({row['pixel_ratio']:.0%} of pixels)",
        )
    axis.set_xscale("log")  # recipes span 10 to 500 bytes per image: a linear axis crams the cheap ones together
    axis.set_xlabel("bytes on disk per image (as stored; log scale)")
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
    save_figure(tradeoff_figure(pd.read_csv(summary), pd.read_csv(codec_table), labels), png, pdf, dpi)


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
    frame = of_kind(pd.read_csv(summary), TEST_IMAGES[0])
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
    save_figure(figure, png, pdf, dpi)


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
    save_figure(figure, png, pdf, dpi)
