"""The figures of the paired comparison (``rules/plots.smk``): the forest plot, the per-class ΔF1 and the
rate-accuracy frontier, each as PNG (report) and PDF (print), on both kinds of test images where the runs
have them (stored and raw, :mod:`poolup.eval_images`).

One function per figure rule, named after it, taking the rule's inputs, outputs and params by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, on a workstation or a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from poolup import sequential, stats  # noqa: E402
from poolup.errors import PoolupError  # noqa: E402
from poolup.eval_images import TEST_IMAGES, of_kind  # noqa: E402
from poolup.plots import PathLike, case_order, place_labels, save_figure  # noqa: E402
from poolup.summary_tables import class_labels  # noqa: E402

VERDICT_COLOURS = {stats.SMALLER: "tab:green", stats.LARGER: "tab:red", stats.UNDECIDED: "tab:grey"}


def _row_labels(rows: pd.DataFrame, labels: Mapping[str, str]) -> list[str]:
    """Case labels, with the interpolation method where several methods are run, and the kind of test
    images where the rows hold both."""
    several = "method" in rows and rows["method"].nunique() > 1
    kinds = "test_images" in rows and rows["test_images"].nunique() > 1
    return [
        labels.get(r.case, r.case) + (f" ({r.method})" if several else "") + (f", {r.test_images}" if kinds else "")
        for r in rows.itertuples()
    ]


def forest_rows(summary: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The rows a forest plot draws, top to bottom: each non-baseline case in config order, on its stored then
    its raw test images (next to each other, so the cost of deploying on raw images reads at a glance)."""
    rows = summary[summary["case"] != baseline]
    order = {case: i for i, case in enumerate(dict.fromkeys(rows["case"]))}
    # Stable: within a case, the kinds keep the summary's order (stored, then raw).
    return rows.sort_values("case", key=lambda cases: cases.map(order), kind="stable").reset_index(drop=True)


def forest_figure(
    summary: pd.DataFrame,
    baseline: str,
    labels: Mapping[str, str],
    margin: float,
    confidence: float,
    looks: Sequence[int] | None = None,
) -> plt.Figure:
    """Paired ΔF1 of each case against the baseline: t and bootstrap intervals, the margin, the verdict.

    One row per non-baseline case (and kind of test images: :func:`forest_rows`). The dot and
    its capped bar: mean ΔF1 and its t-interval at ``confidence``; the thick
    pale bar: the interval that decides the verdict (``1 - 2 alpha``, in a
    sequential design ``looks`` ``1 - 2 alpha / K``: summary.csv's ``look_alpha``);
    the thin bar below: the BCa bootstrap interval. Right-hand labels: verdict,
    Holm p, and in a sequential design the look that decided it and its seeds.
    """
    rows = forest_rows(summary, baseline)
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
    figure = forest_figure(frame, baseline, labels, analysis["margin"], analysis["confidence"], looks)
    save_figure(figure, png, pdf, dpi)


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
    axis.set_xticks(range(len(classes)), class_labels(deltas, classes))
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
    save_figure(per_class_delta_figure(frame, labels, confidence), png, pdf, dpi)


# One colour per recipe family in the frontier figure (the same in every run).
FAMILY_COLOURS = {
    "baseline": "black",
    "pool": "tab:blue",
    "quantize": "tab:orange",
    "pool+quantize": "tab:purple",
    "codec": "tab:green",
    "pool+codec": "tab:olive",
}


# The frontier figure draws a recipe's raw-test point this factor to the right of its stored one (log axis).
RAW_OFFSET = 1.03


def _frontier_points(axis: plt.Axes, table: pd.DataFrame, hollow: bool) -> None:
    """One kind of test images: the front as a step line, each family's recipes with their 95 % t-intervals
    (filled: stored test images; hollow, dashed front: raw test images)."""
    if hollow:  # beside the stored point, so that the two intervals do not hide each other
        table = table.assign(byte_ratio=table["byte_ratio"] * RAW_OFFSET)
    front = table[table["on_front"]].sort_values("byte_ratio")
    kind = " (raw test images)" if hollow else ""
    axis.step(
        front["byte_ratio"],
        front["delta_f1"],
        where="post",
        color="grey",
        linewidth=1.2,
        linestyle="--" if hollow else "-",
        zorder=1,
        label=f"front{kind}",
    )
    for family, rows in table.groupby("family", sort=False):
        low = (rows["delta_f1"] - rows["delta_ci_low"]).fillna(0).to_numpy()
        high = (rows["delta_ci_high"] - rows["delta_f1"]).fillna(0).to_numpy()
        colour = FAMILY_COLOURS.get(family, "tab:brown")
        axis.errorbar(
            rows["byte_ratio"],
            rows["delta_f1"],
            yerr=[low, high],
            fmt="o",
            color=colour,
            markerfacecolor="white" if hollow else colour,
            alpha=0.7 if hollow else 1.0,
            capsize=3,
            markersize=6,
            zorder=3,
            label=f"{family}{kind}" if not hollow else None,
        )
    if hollow:
        axis.errorbar([], [], fmt="o", color="grey", markerfacecolor="white", label="raw test images (hollow)")


def frontier_figure(table: pd.DataFrame, margin: float) -> plt.Figure:
    """Paired ΔF1 against the byte ratio (log axis) of every recipe, coloured by family.

    Dots and capped bars: mean ΔF1 and its 95 % t-interval; the shaded band
    below ``-margin``: a loss larger than the margin; the step line joins the
    recipes on the front (no other recipe stores fewer or equal bytes with a
    better ΔF1); each point is labelled with its case name. Where the table holds
    both kinds of test images, the raw ones are hollow, joined to the stored ones
    by a dotted line, with their own (dashed) front.
    """
    if table.empty:
        raise PoolupError("the frontier table has no rows; rerun the frontier stage")
    figure, (axis, key) = plt.subplots(1, 2, figsize=(13, 6.5), width_ratios=(3, 1), layout="constrained")
    stored = of_kind(table, TEST_IMAGES[0])
    raw = of_kind(table, "raw") if "test_images" in table else table.iloc[:0]
    _frontier_points(axis, stored, hollow=False)
    if not raw.empty:
        _frontier_points(axis, raw, hollow=True)
        paired = stored.set_index("case")["delta_f1"].reindex(raw["case"]).to_numpy(float)
        for x, stored_delta, raw_delta in zip(raw["byte_ratio"], paired, raw["delta_f1"]):
            axis.plot([x, x * RAW_OFFSET], [stored_delta, raw_delta], color="grey", linewidth=0.6, linestyle=":")
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
    # Numbers at the points (placed so that none overlaps another), the recipes' labels in the key beside.
    numbered = stored.sort_values(["byte_ratio", "case"], kind="stable").reset_index(drop=True)
    place_labels(axis, numbered["byte_ratio"], numbered["delta_f1"], [str(i + 1) for i in numbered.index], fontsize=8)
    key.axis("off")
    lines = [f"{i + 1:>2}  {row.label}  ({row.byte_ratio:.0%})" for i, row in enumerate(numbered.itertuples())]
    key.text(0, 1, "recipes, cheapest first\n\n" + "\n".join(lines), va="top", fontsize=8, transform=key.transAxes)
    return figure


def plot_frontier(table: PathLike, margin: float, png: PathLike, pdf: PathLike, dpi: int) -> None:
    """The frontier figure (:func:`frontier_figure`) from ``frontier.csv``."""
    frame = pd.read_csv(table)
    frame["on_front"] = frame["on_front"].astype(bool)
    save_figure(frontier_figure(frame, margin), png, pdf, dpi)
