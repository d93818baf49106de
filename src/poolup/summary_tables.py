"""The aggregation's tables as display text (``summary.md``, ``result.csv``, ``methods.md``,
``datasets.md``): what the summary computed (:mod:`poolup.aggregate`), worded for a reader."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from poolup import sequential
from poolup import stats as paired
from poolup.eval_images import TEST_IMAGES, design_kind, of_kind
from poolup.interpolation import method_order


def shape_text(height: int, width: int) -> str:
    """An image's size as the tables show it: height x width (``14x14``, ``10x18``)."""
    return f"{int(height)}x{int(width)}"


def summary_markdown(
    summary: pd.DataFrame,
    baseline: str,
    analysis: Mapping[str, Any],
    deltas: pd.DataFrame | None = None,
    by_look: pd.DataFrame | None = None,
) -> str:
    """The result for the README and the report: the unpaired table (as the paper), the paired
    comparison with its verdict (:func:`paired_table`), in a sequential design the verdict's
    interval at each look (``by_look``: :func:`look_table`), and the per-class ΔF1 (``deltas``)."""
    lines = [
        *cannot_decide(of_kind(summary, design_kind(analysis)), baseline, analysis),
        *_kinds_side_by_side(summary, baseline, analysis),
    ]
    lines += [
        f"| case | test images | stored | pixels | bytes/image | bytes vs {baseline} | test macro F1 (mean ± SD) | "
        f"{analysis['confidence']:.0%} CI | ΔF1 vs {baseline} | Welch p | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples():
        side = shape_text(row.stored_height, row.stored_width)
        ci = "" if np.isnan(row.macro_f1_ci_low) else f"[{row.macro_f1_ci_low:.4f}, {row.macro_f1_ci_high:.4f}]"
        lines.append(
            f"| {row.case} | {row.test_images} | {side} | {row.pixel_ratio:.0%} | {row.bytes_per_image:.1f} | "
            f"{row.byte_ratio_to_baseline:.2f} |"
            f" {_f1_text(row.macro_f1_mean, row.macro_f1_sd)} | {ci} | {row.f1_diff_to_baseline:+.4f} |"
            f" {_p_text(row.f1_welch_p, '.3g')} | {row.seeds} |"
        )
    alpha = 1 - analysis["confidence"]
    looks = sequential.configured_looks(analysis)
    verdict_level = 1 - 2 * sequential.look_alpha(alpha, len(looks) if looks else 1)
    lines += [
        "",
        f"Paired by seed against {baseline} (ΔF1 = case - {baseline}, seed by seed; paired t-test, Holm across"
        f" the cases; verdict from the {100 * verdict_level:.3g}% t-interval against -{analysis['margin']:g};"
        f" power {analysis['power']:g} at alpha {alpha:.2g}).",
        sequential.design_text(of_kind(summary, design_kind(analysis)), looks, alpha),
        "",
        *_markdown_table(paired_table(summary, baseline, analysis)),
    ]
    if by_look is not None and not by_look.empty:
        lines += [
            "",
            f"The verdict's {100 * verdict_level:.3g}% t-interval of ΔF1 at each look, on the seeds the case had"
            " there (the look that decided a verdict names it; blank: not trained to that look).",
            "",
            *_markdown_table(by_look),
        ]
    if deltas is not None and not deltas.empty:
        lines += ["", *per_class_markdown(deltas, analysis["confidence"])]
    return "\n".join(lines) + "\n"


def cannot_decide(summary: pd.DataFrame, baseline: str, analysis: Mapping[str, Any]) -> list[str]:
    """One line where the run is too small to decide: the cases left undecided whose interval is wider than
    twice the margin, with the seeds that would decide them (the power function's ``seeds_for_margin``);
    none where every case is decided or its interval is narrow enough that more seeds of the design would do."""
    others = summary[summary["case"] != baseline]
    open_cases = others[(others["verdict"] == paired.UNDECIDED) & (others["seeds_for_margin"] > others["paired_n"])]
    wide = open_cases[(open_cases["margin_ci_high"] - open_cases["margin_ci_low"]) > 2 * analysis["margin"]]
    if wide.empty:
        return []
    needed = int(np.nanmax(wide["seeds_for_margin"]))
    width = float(np.nanmax(wide["margin_ci_high"] - wide["margin_ci_low"]))
    return [
        f"This run cannot decide {len(wide)} of {len(others)} cases ({', '.join(wide['case'])}): their intervals"
        f" (up to {width:.3f} wide) are wider than the margin ({analysis['margin']:g}) allows; about {needed} seeds"
        f" per case (seeds: {needed}), or more images per seed, would decide them (column 'seeds for margin').",
        "",
    ]


def _kinds_side_by_side(summary: pd.DataFrame, baseline: str, analysis: Mapping[str, Any]) -> list[str]:
    """Each case's paired ΔF1 and verdict on stored and on raw test images, side by side (none without raw)."""
    if "raw" not in set(summary["test_images"]):
        return []
    level = f"{analysis['confidence']:.0%}"
    stored, raw = (of_kind(summary, kind).set_index("case") for kind in TEST_IMAGES)
    lines = [
        f"What the storage costs when the model meets its test images as stored (the paper's protocol) and raw (as"
        f" a model trained on the stored images is deployed); ΔF1 vs {baseline} [{level} CI], verdict against"
        f" -{analysis['margin']:g} (analysis.test_images: {design_kind(analysis)} decides a sequential design).",
        "",
        f"| case | bytes saved | stored: ΔF1 [{level} CI] | stored: verdict | raw: ΔF1 [{level} CI] | raw: verdict |",
        "|---|---|---|---|---|---|",
    ]
    for case in stored.index:
        if case == baseline:
            continue
        cells = [
            f"{row.delta_f1:+.4f} {interval_text(row.delta_ci_low, row.delta_ci_high)} | {row.verdict}"
            for row in (stored.loc[case], raw.loc[case])
        ]
        lines.append(f"| {case} | {1 - stored.loc[case, 'byte_ratio_to_baseline']:.0%} | {' | '.join(cells)} |")
    return [*lines, ""]


def _number(value: float, spec: str) -> str:
    """A number, or "n/a" where it is undefined (fewer than two paired seeds)."""
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def interval_text(low: float, high: float) -> str:
    return "n/a" if np.isnan(low) else f"[{low:+.4f}, {high:+.4f}]"


def paired_table(summary: pd.DataFrame, baseline: str, analysis: Mapping[str, Any]) -> pd.DataFrame:
    """The paired comparison, one row per non-baseline case, as display text (``summary.md``).

    Columns are described in the README, section "Statistics";
    :func:`result_table` is its short form.
    """
    level = f"{analysis['confidence']:.0%}"
    looks = sequential.configured_looks(analysis)
    rows = []
    for row in summary[summary["case"] != baseline].itertuples():
        rows.append(
            {
                "case": row.case,
                "test_images": row.test_images,
                "stored": shape_text(row.stored_height, row.stored_width),
                "bytes saved": f"{1 - row.byte_ratio_to_baseline:.0%}",
                "test macro F1": _f1_text(row.macro_f1_mean, row.macro_f1_sd),
                f"ΔF1 [{level} CI]": f"{row.delta_f1:+.4f} {interval_text(row.delta_ci_low, row.delta_ci_high)}",
                f"bootstrap {level} CI": interval_text(row.delta_boot_low, row.delta_boot_high),
                "paired p": _number(row.paired_p, ".3g"),
                "Holm p": _number(row.holm_p, ".3g"),
                f"verdict (margin {analysis['margin']:g})": row.verdict,
                "detectable ΔF1": _number(row.mde, ".4f"),
                "seeds for margin": _number(row.seeds_for_margin, ".0f"),
                "seeds paired": _number(row.paired_n, ".0f"),
                "decided at": sequential.decided_text(row.verdict, row.looks_used, row.paired_n, looks),
                **({"seeds saved": _number(row.seeds_saved, ".0f")} if looks else {}),
            }
        )
    return pd.DataFrame(rows)


def result_table(summary: pd.DataFrame, baseline: str, analysis: Mapping[str, Any]) -> pd.DataFrame:
    """The answer in a few columns (``result.csv``, the report's front page, which is narrow): bytes saved,
    ΔF1 with its t-interval, Holm p, the verdict, seeds paired, seeds the margin needs, and the look that
    decided the verdict (and, in a sequential design, the seeds it saved)."""
    table = paired_table(summary, baseline, analysis)
    keep = [
        c
        for c in table.columns
        if c
        in (
            "case",
            "test_images",
            "bytes saved",
            "Holm p",
            "seeds paired",
            "seeds for margin",
            "decided at",
            "seeds saved",
        )
        or c.startswith(("ΔF1", "verdict"))
    ]
    return table[keep]


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, values)) + " |" for values in frame.itertuples(index=False)]
    return lines


def class_labels(frame: pd.DataFrame, classes: Sequence[int]) -> list[str]:
    """The tick labels of ``classes``: their names in a per-class table (``class_name``), else their numbers."""
    if "class_name" not in frame:
        return [str(label) for label in classes]
    names = frame.drop_duplicates("class").set_index("class")["class_name"].astype(str)
    return [names.get(label, str(label)) for label in classes]


def per_class_markdown(deltas: pd.DataFrame, confidence: float) -> list[str]:
    """Paired ΔF1 per case (rows) and class (columns); * marks an interval that excludes 0."""
    if deltas.empty:
        return []
    classes = sorted(deltas["class"].unique())
    lines = [
        "| case | " + " | ".join(f"class {c}" for c in class_labels(deltas, classes)) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for case, group in deltas.groupby("case", sort=False):
        cells = group.set_index("class").reindex(classes)
        lines.append(
            f"| {case} | "
            + " | ".join(
                f"{r.delta_f1:+.4f}" + ("*" if r.delta_ci_low > 0 or r.delta_ci_high < 0 else "")
                for r in cells.itertuples()
            )
            + " |"
        )
    return [
        f"Paired ΔF1 per class (mean over seeds; * where the {confidence:.0%} t-interval excludes 0;"
        " intervals in per_class_delta.csv):",
        "",
        *lines,
    ]


def _f1_text(mean: float, sd: float) -> str:
    """``mean ± SD`` of an F1 score (no SD from a single seed)."""
    return f"{mean:.4f}" if np.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


def _p_text(p: float, spec: str) -> str:
    """A p-value, or nothing where there is none (the baseline)."""
    return "" if np.isnan(p) else format(p, spec)


def methods_markdown(summary: pd.DataFrame, baseline: str) -> str:
    """Test macro F1 by pooling geometry (rows) and interpolation method (columns).

    Each cell: mean ± SD over seeds, then the difference to the baseline's mean
    F1 and the Welch p-value. Cases with the same window, stride and method
    share a cell (joined by "; "). When the summary has the paired columns, a
    second table gives each cell's paired ΔF1 with its t-interval, Holm p and verdict.
    """
    reference = summary[summary["case"] == baseline].iloc[0]
    others = summary[summary["case"] != baseline]
    lines = [
        f"{baseline}: test macro F1 {_f1_text(reference['macro_f1_mean'], reference['macro_f1_sd'])} over "
        f"{reference['seeds']} seeds;"
        " each cell: mean ± SD (ΔF1 vs baseline, Welch p)",
        "",
        *_geometry_table(
            others,
            lambda row: (
                f"{_f1_text(row.macro_f1_mean, row.macro_f1_sd)} ({row.f1_diff_to_baseline:+.4f}, p "
                f"{_p_text(row.f1_welch_p, '.2g')})"
            ),
        ),
    ]
    if "delta_f1" in others:
        lines += [
            "",
            "Paired by seed: each cell: ΔF1 vs baseline [t-interval] (Holm p), verdict against the margin",
            "",
            *_geometry_table(
                others,
                lambda row: (
                    f"{row.delta_f1:+.4f} {interval_text(row.delta_ci_low, row.delta_ci_high)} (Holm p "
                    f"{_number(row.holm_p, '.2g')}),"
                    f" {row.verdict}"
                ),
            ),
        ]
    return "\n".join(lines) + "\n"


def _geometry_table(others: pd.DataFrame, cell: Callable[[Any], str]) -> list[str]:
    """Rows: pooling window/stride; columns: interpolation methods; ``cell`` formats one case's row."""
    methods = method_order(others["method"])
    lines = [
        "| pooling | stored | bytes vs baseline | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for (window, stride), group in others.groupby(["window", "stride"], sort=False):
        cells = ["; ".join(cell(row) for row in group[group["method"] == method].itertuples()) for method in methods]
        first = group.iloc[0]
        lines.append(
            f"| {window}x{window}/{stride} | {shape_text(first['stored_height'], first['stored_width'])} |"
            f" {first['byte_ratio_to_baseline']:.2f} | " + " | ".join(cells) + " |"
        )
    return lines


def datasets_markdown(combined: pd.DataFrame, baseline: str) -> str:
    """The cross-data-set table: what each case costs and saves on each data set."""
    lines = [
        f"| data set | case | test images | stored | bytes vs {baseline} | test macro F1 (mean ± SD) |"
        f" ΔF1 vs {baseline} | Welch p | paired ΔF1 [CI] | Holm p | verdict | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in combined.itertuples():
        paired_text = (
            "" if row.case == baseline else f"{row.delta_f1:+.4f} {interval_text(row.delta_ci_low, row.delta_ci_high)}"
        )
        lines.append(
            f"| {row.dataset} | {row.case} | {getattr(row, 'test_images', 'stored')} |"
            f" {shape_text(row.stored_height, row.stored_width)} |"
            f" {row.byte_ratio_to_baseline:.2f} |"
            f" {_f1_text(row.macro_f1_mean, row.macro_f1_sd)} | {row.f1_diff_to_baseline:+.4f} |"
            f" {_p_text(row.f1_welch_p, '.3g')} | {paired_text} | {_p_text(row.holm_p, '.3g')} |"
            f" {row.verdict if isinstance(row.verdict, str) else ''} | {row.seeds} |"
        )
    return "\n".join(lines) + "\n"
