"""What the summary figures draw, checked on the figure objects (no image comparison)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from poolup.plots import curves_figure, per_class_figure, tradeoff_figure

CASES = ["baseline", "w2s2", "w3s2"]
LABELS = {"w3s2": "Case 4", "baseline": "Baseline", "w2s2": "Case 2"}  # sorted by name, as the rules pass them
METRICS = ("loss", "accuracy", "precision", "recall", "f1")


def history(points_per_epoch: int, epochs: int = 1, batches: int = 75) -> pd.DataFrame:
    """A summary/history.csv: ``points_per_epoch`` learning-curve points per epoch of ``batches`` batches."""
    rows = []
    for case in ["w3s2", "baseline", "w2s2"]:  # the aggregation's order, not the labels'
        for epoch in range(1, epochs + 1):
            for point in range(1, points_per_epoch + 1):
                step = (epoch - 1) * batches + round(point * batches / points_per_epoch)
                row = {"case": case, "epoch": epoch, "step": step, "progress": step / batches}
                for side in ("train", "val"):
                    for metric in METRICS:
                        row[f"{side}_{metric}_mean"] = 0.5 + 0.01 * point
                        row[f"{side}_{metric}_sd"] = 0.01
                rows.append(row)
    return pd.DataFrame(rows)


def drawn_lines(figure) -> list[Line2D]:
    """The cases' curves (error-bar parts have no label of their own)."""
    return [line for axis in figure.axes for line in axis.get_lines() if not line.get_label().startswith("_")]


def notes(figure) -> list[str]:
    return [text.get_text() for text in figure.texts if "history_every" in text.get_text()]


def test_one_point_per_epoch_is_drawn_as_dots_and_the_figure_says_why():
    """75 batches per epoch, history_every 100: one point per run, which a line alone does not show."""
    figure = curves_figure(history(points_per_epoch=1), "f1", LABELS)
    lines = drawn_lines(figure)
    assert len(lines) == 2 * len(CASES)
    assert all(line.get_marker() == "o" and len(line.get_xdata()) == 1 for line in lines)
    assert len(notes(figure)) == 1 and "an epoch has 75 batches" in notes(figure)[0]


def test_a_real_curve_gets_no_note():
    figure = curves_figure(history(points_per_epoch=40), "loss", LABELS)
    assert all(len(line.get_xdata()) == 40 for line in drawn_lines(figure))
    assert not notes(figure)


def test_figures_list_the_cases_in_the_order_of_the_summary_files():
    """The labels mapping comes sorted by name; the legend follows the file (the aggregation's order)."""
    figure = curves_figure(history(points_per_epoch=3), "f1", LABELS)
    legend = figure.axes[1].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["Case 4", "Baseline", "Case 2"]


def summary_frame(seeds: int) -> pd.DataFrame:
    """A summary.csv of three cases; with 2 seeds the 95% t-interval of the F1 passes 1."""
    half = 12.7 * 0.02 if seeds == 2 else 0.004  # t(0.975, 1) * SD / sqrt(2) for 2 seeds
    means = {"baseline": 0.97, "w2s2": 0.965, "w3s2": 0.96}
    return pd.DataFrame(
        {
            "case": list(means),
            "macro_f1_mean": list(means.values()),
            "macro_f1_ci_low": [mean - half for mean in means.values()],
            "macro_f1_ci_high": [mean + half for mean in means.values()],
            "bytes_per_image": [164.0, 69.0, 81.0],
            "pixel_ratio": [1.0, 0.25, 13 * 13 / 784],
        }
    )


def codec_frame() -> pd.DataFrame:
    rows = []
    for case, ratio in (("baseline", 1.0), ("w2s2", 0.42), ("w3s2", 0.49)):
        for codec, factor in (("hdf5-gzip", 1.0), ("png", 1.4)):
            rows.append({"case": case, "codec": codec, "ratio_to_raw": ratio * factor})
    return pd.DataFrame(rows)


def inside(box, points: np.ndarray) -> np.ndarray:
    return (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)


def legend_boxes(figure):
    figure.canvas.draw()
    legends = list(figure.legends) + [axis.get_legend() for axis in figure.axes if axis.get_legend()]
    return [legend.get_window_extent() for legend in legends]


@pytest.mark.parametrize("seeds", [2, 10])
def test_tradeoff_keeps_f1_within_0_and_1_and_its_legends_hide_no_case(seeds):
    figure = tradeoff_figure(summary_frame(seeds), codec_frame(), LABELS)
    left, right = figure.axes[:2]
    low, high = left.get_ylim()
    assert 0.0 <= low < 0.96 and 0.97 < high <= 1.0
    boxes = legend_boxes(figure)
    assert boxes, "no legend"
    for axis in (left, right):
        for collection in axis.collections:  # every point drawn, error-bar caps aside
            offsets = collection.get_offsets()
            if len(offsets):
                points = axis.transData.transform(np.asarray(offsets, dtype=float))
                for box in boxes:
                    assert not inside(box, points).any(), "a legend covers a case"
        for line in axis.get_lines():
            points = axis.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
            for box in boxes:
                assert not inside(box, points).any(), "a legend covers a case"


def test_per_class_legend_covers_no_bar():
    rows = [
        {"case": case, "class": digit, "metric": "f1", "mean": 0.95 + 0.004 * digit - 0.01 * i, "sd": 0.01}
        for i, case in enumerate(CASES)
        for digit in range(10)
    ]
    figure = per_class_figure(pd.DataFrame(rows), "f1", LABELS)
    boxes = legend_boxes(figure)
    assert boxes
    axis = figure.axes[0]
    # Bars start at 0, below the axis' lower limit: only the part inside the axes is drawn.
    bars = [Bbox.intersection(patch.get_window_extent(), axis.get_window_extent()) for patch in axis.patches]
    assert len(bars) == 10 * len(CASES)
    for box in boxes:
        assert not any(bar is not None and box.overlaps(bar) for bar in bars), "the legend covers a bar"


def test_twenty_cases_have_twenty_colours_and_the_eleventh_another_marker():
    from poolup.plots import case_colours, case_markers

    cases = [f"case{i}" for i in range(20)]
    assert len(set(case_colours(cases).values())) == 20
    markers = case_markers(cases)
    assert markers["case0"] != markers["case10"] and markers["case0"] == markers["case9"]


def test_the_frontier_of_19_recipes_numbers_each_point_without_overlap_and_keys_the_labels():
    """The measured MNIST frontier (19 recipes, both kinds of test images): one number per recipe, no two
    overlapping, and each recipe's label (not its case id) in the key beside the plot."""
    import matplotlib.pyplot as plt
    from conftest import REPO

    from poolup.plots_paired import frontier_figure

    table = pd.read_csv(REPO / "docs/figures/frontier-mnist.csv")
    table["on_front"] = table["on_front"].astype(bool)
    figure = frontier_figure(table, 0.005)
    axis, key = figure.axes
    renderer = figure.canvas.get_renderer()
    numbers = [text for text in axis.texts if text.get_text().isdigit()]
    assert sorted(int(text.get_text()) for text in numbers) == list(range(1, 20))
    boxes = [text.get_window_extent(renderer) for text in numbers]
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    assert not overlapping
    listed = key.texts[0].get_text()
    assert all(label in listed for label in table["label"].unique())
    plt.close(figure)
