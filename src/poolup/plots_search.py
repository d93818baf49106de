"""The search's figure (``rules/search.smk``): every candidate's bytes against its paired ΔF1.

Tested candidates are drawn at their ΔF1 with the verdict interval of their last look; the
candidates the search did not train are open marks on a strip below the axis, at their bytes, so
that the figure shows what the search skipped as well as what it judged.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, on a workstation or a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from poolup import stats  # noqa: E402
from poolup.errors import PoolupError  # noqa: E402
from poolup.plots import PathLike, save_figure  # noqa: E402

# One marker per family (colours cycle with them): families differ at a glance, in print too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def search_figure(table: pd.DataFrame, margin: float) -> plt.Figure:
    """ΔF1 against the byte ratio (log axis): tested candidates with intervals, untested ones on the strip below.

    Filled: "loss smaller than the margin"; open: any other verdict. The answer is starred and
    named; each tested candidate is labelled with its case name beside its point.
    """
    if table.empty:
        raise PoolupError("the search table has no rows; rerun the search")
    figure, (axis, strip) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=(6, 1), layout="constrained")
    tested = table[table["tested"]]
    families = list(dict.fromkeys(table["family"]))
    for index, family in enumerate(families):
        colour, marker = f"C{index % 10}", MARKERS[index % len(MARKERS)]
        rows = tested[tested["family"] == family]
        within = rows["verdict"] == stats.SMALLER
        for subset, face in ((rows[within], colour), (rows[~within], "white")):
            if subset.empty:
                continue
            axis.errorbar(
                subset["byte_ratio"],
                subset["delta_f1"],
                yerr=[subset["delta_f1"] - subset["delta_ci_low"], subset["delta_ci_high"] - subset["delta_f1"]],
                fmt=marker,
                color=colour,
                markerfacecolor=face,
                capsize=3,
                linewidth=1,
                label=None,
            )
        axis.plot([], [], marker, color=colour, label=f"{family} ({len(rows)} tested)")
        skipped = table[(table["family"] == family) & ~table["tested"]]
        strip.plot(skipped["byte_ratio"], np.full(len(skipped), index), marker, color=colour, fillstyle="none")
        for row in rows.itertuples():
            axis.annotate(
                row.case, (row.byte_ratio, row.delta_f1), xytext=(5, 3), textcoords="offset points", fontsize=7
            )
    answer = table[table["answer"]]
    for row in answer.itertuples():
        axis.plot(
            row.byte_ratio, row.delta_f1, "*", color="black", markersize=15, zorder=5, label=f"answer: {row.case}"
        )
    axis.set_xscale("log")
    lows = tested["delta_ci_low"].to_numpy(float) if not tested.empty else np.array([0.0])
    highs = tested["delta_ci_high"].to_numpy(float) if not tested.empty else np.array([0.0])
    bottom = min(float(np.nanmin(lows)), -margin) - margin / 2
    top = max(float(np.nanmax(highs)), margin / 2) + margin / 2
    axis.set_ylim(bottom, top)
    axis.axhspan(bottom, -margin, color="tab:red", alpha=0.08, linewidth=0, label=f"loss larger than {margin:g}")
    axis.axhline(-margin, color="tab:red", linewidth=0.8, linestyle="--")
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_ylabel("ΔF1 against the baseline\n(paired by seed, verdict interval)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(f"The search: {len(tested)} of {len(table)} candidates tested")
    strip.set_yticks(range(len(families)), families, fontsize=8)
    strip.set_ylim(-0.7, len(families) - 0.3)
    strip.set_ylabel("not tested", fontsize=8)
    strip.grid(alpha=0.3, axis="x", which="both")
    percent = FuncFormatter(lambda value, _: f"{value:.0%}")
    for ticks in (strip.xaxis.set_major_formatter, strip.xaxis.set_minor_formatter):
        ticks(percent)  # 20 %, not 2 x 10^-1 (the axes share x)
    strip.set_xlabel("bytes stored, as a share of the baseline's (log scale)")
    return figure


def plot_search(table: PathLike, margin: float, png: PathLike, pdf: PathLike, dpi: int) -> None:
    """The search figure (:func:`search_figure`) from ``search.csv``."""
    frame = pd.read_csv(table)
    for column in ("tested", "answer"):
        frame[column] = frame[column].astype(bool)
    save_figure(search_figure(frame, margin), png, pdf, dpi)
