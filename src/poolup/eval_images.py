"""Which test images a run's scores are of: as stored (the recipe's images, the paper's protocol) or raw
(the same test images as ``raw.h5`` holds them: a model trained on stored images, deployed on raw ones).

Every run is evaluated on both (``poolup.training``); the tables hold one block of rows per kind
(column ``test_images``), and ``analysis.test_images`` names the kind that a sequential design judges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from poolup.errors import PoolupError

# The kinds, in the order the tables list them.
TEST_IMAGES: tuple[str, ...] = ("stored", "raw")
# Where a run's record (test_metrics.json) holds its metrics on raw test images.
RAW_TEST_KEY = "raw_test"


def test_scores(record: Mapping[str, Any], test_images: str) -> Mapping[str, Any]:
    """The test metrics of a run's record on its ``stored`` or ``raw`` test images (a one-line error for a
    record without raw ones: trained before they were evaluated)."""
    if test_images == "stored":
        return record
    if test_images != "raw":
        raise PoolupError(f"analysis.test_images {test_images!r} is unknown; use one of {', '.join(TEST_IMAGES)}")
    if RAW_TEST_KEY not in record:
        raise PoolupError(
            f"run {record.get('case')}/seed{record.get('seed')}: no metrics on raw test images (trained without "
            "raw.h5, by an older poolup); delete its test_metrics.json and rerun snakemake to retrain it"
        )
    return record[RAW_TEST_KEY]


def kinds_of(records: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The kinds of test images the runs were evaluated on: ``stored`` always, ``raw`` where every run has them
    (runs given raw.h5; a mix of both is a one-line error naming a run to retrain)."""
    with_raw = [RAW_TEST_KEY in record for record in records]
    if any(with_raw) and not all(with_raw):
        test_scores(records[with_raw.index(False)], "raw")  # names that run and how to retrain it
    return TEST_IMAGES if all(with_raw) else TEST_IMAGES[:1]


def design_kind(analysis: Mapping[str, Any], table: pd.DataFrame | None = None) -> str:
    """The test images that a sequential design's looks judge, and the answer names (``analysis.test_images``);
    a one-line error where ``table`` has no rows of that kind."""
    kind = analysis.get("test_images", TEST_IMAGES[0])
    if table is not None and "test_images" in table.columns and kind not in set(table["test_images"]):
        raise PoolupError(
            f"analysis.test_images is {kind!r} but the runs have no metrics on {kind} test images (trained before "
            "poolup evaluated them); rerun snakemake to retrain them, or set analysis.test_images: stored"
        )
    return kind


def of_kind(frame: pd.DataFrame, test_images: str) -> pd.DataFrame:
    """The rows of a runs or summary table on one kind of test images (all rows of a table without the column)."""
    if "test_images" not in frame.columns:
        return frame
    return frame[frame["test_images"] == test_images].reset_index(drop=True)
