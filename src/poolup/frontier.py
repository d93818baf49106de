"""The rate-accuracy frontier (``rules/frontier.smk``): bytes each recipe stores against the F1 it costs.

Per case, :func:`fidelity` measures how close the images training sees are to
the originals (PSNR, SSIM); per data set, :func:`frontier` joins each case's
bytes (``storage.json``), its paired ΔF1 and verdict (``summary.csv``) and its
fidelity into one table, marks the recipes on the front, and states the answer
in sentences (``frontier.md``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from poolup import sequential
from poolup.errors import PoolupError
from poolup.eval_images import of_kind
from poolup.fidelity import psnr, squared_error, ssim_per_image
from poolup.h5files import open_h5
from poolup.provenance import relative_name
from poolup.recipe import Recipe
from poolup.records import read_case_records, write_csv, write_json, write_manifest, write_text

PathLike = str | os.PathLike[str]

# The budgets the answer names, as fractions of the baseline's bytes.
BUDGETS = (0.5, 0.25, 0.1)
SMALLER = "loss smaller than the margin"

COLUMNS = [
    "case",
    "label",
    "recipe",
    "family",
    "bytes_per_image",
    "byte_ratio",
    "file_bytes_per_image",
    "delta_f1",
    "delta_ci_low",
    "delta_ci_high",
    "holm_p",
    "verdict",
    "seeds",
    # Where a sequential design decided the verdict (poolup.sequential.DESIGN_COLUMNS; one look in a fixed design).
    "looks_used",
    "deciding_look",
    "seeds_saved",
    "on_front",
    "macro_f1_mean",
    "psnr_db",
    "ssim",
]


def fidelity(
    *,
    raw: PathLike,
    pooled: PathLike,
    fidelity: PathLike,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
    block: int = 8192,
) -> dict[str, Any]:
    """The ``fidelity`` rule: PSNR (dB, over all pixels) and mean SSIM of a case's images as training sees
    them (``pooled`` read back and interpolated with ``method`` on ``grid``, in memory) against the raw
    ones, written to ``fidelity.json``; PSNR is null for an exact copy. ``pooled`` must have been made
    for ``case`` (when given)."""
    from poolup.preprocess import reconstructed_blocks

    error, ssim_sum, n, values, back = 0.0, 0.0, 0, 0, None
    with open_h5(raw, stage="fetch") as r:
        reference = r["images"]
        for back, start, images in reconstructed_blocks(pooled, method, grid, case):
            if images.shape[1:] != reference.shape[1:] or back.labels.shape[0] != reference.shape[0]:
                raise PoolupError(
                    f"{pooled}: {back.labels.shape[0]} images of shape {list(images.shape[1:])} come back, "
                    f"{raw} holds {reference.shape[0]} of {list(reference.shape[1:])}; rerun the pool stage"
                )
            for offset in range(0, images.shape[0], block):
                x = reference[start + offset : start + offset + block]
                y = images[offset : offset + block]
                error += squared_error(x, y)
                ssim_sum += float(ssim_per_image(x, y).sum())
        n, values = int(reference.shape[0]), int(np.prod(reference.shape))
    if back is None:
        raise PoolupError(f"{pooled}: holds no images; rerun the pool stage")
    mse = error / values
    peak = psnr(mse)
    record = {
        "stage": "fidelity",
        "case": back.attrs["case"],
        "method": back.attrs["method"],
        "grid": back.attrs["grid"],
        "n_images": n,
        "mse": mse,
        "psnr_db": None if math.isinf(peak) else peak,
        "ssim": ssim_sum / n,
        "source_sha256": back.attrs["source_sha256"],
        "source_file": relative_name(pooled, fidelity),  # so `poolup verify` names the file a finding is about
    }
    write_json(fidelity, record)
    return record


# frontier.md's heading per kind of test images (the runs' scores on them, poolup.runs.TEST_IMAGES).
TEST_IMAGES_TITLES = {
    "stored": "test images as stored (the paper's protocol)",
    "raw": "raw test images (the model trained on stored images, deployed on raw ones)",
}


def on_front(byte_ratio: Sequence[float], delta_f1: Sequence[float]) -> list[bool]:
    """True where no other case stores fewer or equal bytes with a better (higher) ΔF1."""
    ratios, deltas = np.asarray(byte_ratio, float), np.asarray(delta_f1, float)
    return [
        not bool(np.any((ratios <= ratios[i]) & (deltas > deltas[i]) & (np.arange(len(ratios)) != i)))
        for i in range(len(ratios))
    ]


def frontier_table(
    summary: pd.DataFrame,
    storage: Mapping[str, Mapping[str, Any]],
    fidelities: Mapping[str, Mapping[str, Any]],
    baseline: str,
    labels: Mapping[str, str],
) -> pd.DataFrame:
    """One row per case (``COLUMNS``), cheapest first; the baseline has ΔF1 0 and verdict ``baseline``."""
    missing = [case for case in summary["case"] if case not in storage or case not in fidelities]
    if missing:
        raise PoolupError(f"no storage.json or fidelity.json for case(s) {', '.join(missing)}; rerun their jobs")
    rows = []
    for row in summary.itertuples():
        record, recipe = storage[row.case], Recipe.from_attrs(storage[row.case])
        is_baseline = row.case == baseline
        rows.append(
            {
                "case": row.case,
                "label": labels.get(row.case, row.case),
                "recipe": recipe.describe(),
                "family": recipe.family,
                "bytes_per_image": record["bytes_per_image"],
                "byte_ratio": row.byte_ratio_to_baseline,
                "file_bytes_per_image": record.get("file_bytes_per_image", np.nan),
                "delta_f1": 0.0 if is_baseline else row.delta_f1,
                "delta_ci_low": np.nan if is_baseline else row.delta_ci_low,
                "delta_ci_high": np.nan if is_baseline else row.delta_ci_high,
                "holm_p": np.nan if is_baseline else row.holm_p,
                "verdict": "baseline" if is_baseline else row.verdict,
                "seeds": row.seeds,
                # Blank for the baseline in the summary already (aggregate).
                "looks_used": row.looks_used,
                "deciding_look": row.deciding_look,
                "seeds_saved": row.seeds_saved,
                "macro_f1_mean": row.macro_f1_mean,
                "psnr_db": np.nan if fidelities[row.case]["psnr_db"] is None else fidelities[row.case]["psnr_db"],
                "ssim": fidelities[row.case]["ssim"],
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "on_front"])
    table.insert(COLUMNS.index("on_front"), "on_front", on_front(table["byte_ratio"], table["delta_f1"]))
    return table.sort_values(["byte_ratio", "case"], kind="stable").reset_index(drop=True)


def _name(row: Any) -> str:
    interval = f"[{row.delta_ci_low:+.4f}, {row.delta_ci_high:+.4f}]"
    return f"{row.label} ({row.byte_ratio:.0%} of the bytes, ΔF1 {row.delta_f1:+.4f} {interval})"


def answer(table: pd.DataFrame, margin: float, budgets: Sequence[float] = BUDGETS) -> list[str]:
    """The answer in sentences: the cheapest recipe shown to lose less than the margin, the least loss
    within each budget, and whether pooling is on the front."""
    others = table[table["verdict"] != "baseline"]
    shown = others[others["verdict"] == SMALLER]
    lines = []
    if shown.empty:
        lines.append(f"No recipe is shown to lose less than the margin ({margin:g} macro F1).")
    else:
        lines.append(
            f"Cheapest recipe shown to lose less than the margin ({margin:g} macro F1): {_name(shown.iloc[0])}."
        )
    for budget in budgets:
        within = others[others["byte_ratio"] <= budget]
        if within.empty:
            lines.append(f"Within {budget:.0%} of the baseline's bytes: no recipe.")
            continue
        best = within.loc[within["delta_f1"].idxmax()]
        lines.append(
            f"Within {budget:.0%} of the baseline's bytes, least loss: {_name(best)}; verdict: {best.verdict}."
        )
    pooling = table[table["on_front"] & table["family"].str.startswith("pool")]
    if pooling.empty:
        lines.append("No recipe that pools is on the front.")
    else:
        lines.append("On the front with pooling: " + "; ".join(_name(row) for row in pooling.itertuples()) + ".")
    return lines


def frontier_markdown(
    table: pd.DataFrame, margin: float, looks: Sequence[int] | None = None, test_images: str | None = None
) -> str:
    """``frontier.md`` below its title, for one kind of test images (``test_images``: its section's heading;
    None: no heading): the answer, then the table (cheapest first; * = on the front); ``looks``: those of a
    sequential design (``analysis.sequential.looks``), for the look that decided each verdict."""
    shown = pd.DataFrame(
        {
            "": ["*" if front else "" for front in table["on_front"]],
            "case": table["label"],
            "recipe": table["recipe"],
            "bytes/image": [f"{v:.1f}" for v in table["bytes_per_image"]],
            "x baseline": [f"{v:.3f}" for v in table["byte_ratio"]],
            "ΔF1 [95% CI]": [
                "0 (reference)" if math.isnan(low) else f"{d:+.4f} [{low:+.4f}, {high:+.4f}]"
                for d, low, high in zip(table["delta_f1"], table["delta_ci_low"], table["delta_ci_high"])
            ],
            "Holm p": ["" if math.isnan(p) else f"{p:.3g}" for p in table["holm_p"]],
            "verdict": table["verdict"],
            "seeds": table["seeds"],
            "decided at": [
                "" if verdict == "baseline" else sequential.decided_text(verdict, used, seeds, looks)
                for verdict, used, seeds in zip(table["verdict"], table["looks_used"], table["seeds"])
            ],
            "PSNR dB": ["inf" if math.isnan(v) else f"{v:.1f}" for v in table["psnr_db"]],
            "SSIM": [f"{v:.3f}" for v in table["ssim"]],
        }
    )
    lines = [f"## On {TEST_IMAGES_TITLES[test_images]}", ""] if test_images else []
    lines += [*[f"- {line}" for line in answer(table, margin)], ""]
    lines += ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(map(str, values)) + " |" for values in shown.itertuples(index=False)]
    lines += ["", "`*`: on the front (no other recipe stores fewer or equal bytes with a better ΔF1)."]
    return "\n".join(lines) + "\n"


def frontier(
    *,
    summary: PathLike,
    storage: Sequence[PathLike],
    fidelity: Sequence[PathLike],
    table: PathLike,
    table_md: PathLike,
    manifest: PathLike,
    baseline: str,
    labels: Mapping[str, str],
    margin: float,
    looks: Sequence[int] | None = None,
    in_case_folders: bool = False,
) -> pd.DataFrame:
    """The ``frontier`` rule: ``frontier.csv`` and ``frontier.md`` of one data set, and
    ``frontier.manifest.json`` (the sha256 of its inputs and outputs, which ``poolup verify`` checks).
    ``looks``: a sequential design's (None: a fixed design). ``in_case_folders``: each ``storage`` and
    ``fidelity`` record must have been made for the case whose folder holds it."""
    frame = pd.read_csv(summary)
    if "delta_f1" not in frame:
        raise PoolupError(f"{summary}: no paired columns (written by an older poolup); rerun the aggregate stage")
    records = {record["case"]: record for record in read_case_records(storage, in_case_folders)}
    fidelities = {record["case"]: record for record in read_case_records(fidelity, in_case_folders)}
    kinds = list(dict.fromkeys(frame["test_images"])) if "test_images" in frame else ["stored"]
    tables = {kind: frontier_table(of_kind(frame, kind), records, fidelities, baseline, labels) for kind in kinds}
    result = pd.concat([t.assign(test_images=kind) for kind, t in tables.items()], ignore_index=True)
    result.insert(1, "test_images", result.pop("test_images"))
    write_csv(table, result)
    sections = [frontier_markdown(t, margin, looks, kind if len(tables) > 1 else None) for kind, t in tables.items()]
    write_text(table_md, "# Rate-accuracy frontier\n\n" + "\n".join(sections))
    write_manifest(manifest, [summary, *storage, *fidelity], [table, table_md], stage="frontier")
    return result
