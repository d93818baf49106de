"""What two runs of the workflow must have in common: every artifact, less what varies by nature.

Used by the determinism tests, and by hand to show that a change of code left
the outputs of an unchanged config as they were::

    python tests/run_identity.py WORKDIR_BEFORE WORKDIR_AFTER

prints each artifact that differs (exit 1) or how many are identical (exit 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import pandas as pd

from poolup.runs import reproducible

# Columns of wall-clock timings in the tables.
TIMING_TABLES = ("runs.csv", "summary.csv", "datasets.csv", "storage_codecs.csv")


def _timing(column: str) -> bool:
    return "seconds" in column or column == "images_per_second" or column.endswith("_us_per_image")


def run_outputs(workdir: Path) -> dict[str, object]:
    """Every artifact's identity under ``workdir/results``, less what legitimately varies between runs.

    Varies, and why: wall-clock timings (``*_seconds``, ``images_per_second``
    in ``test_metrics.json`` and ``runs.csv``/``summary.csv``/``datasets.csv``; encode and
    decode times in ``storage_codecs.*``); ``model.keras``
    archives (Keras stamps the save date; the test predictions they make are
    compared instead, in ``predictions.h5``);
    logs and benchmark files; ``manifest.json`` (digests of tables with timings: the
    files it lists are compared themselves). PDF figures are compared: they carry no creation date.
    """
    identity: dict[str, object] = {}
    for path in sorted((Path(workdir) / "results").rglob("*")):
        name = str(path.relative_to(workdir))
        if "logs" in path.parts or "benchmarks" in path.parts or not path.is_file():
            continue
        if path.suffix == ".h5":
            with h5py.File(path) as file:
                identity[name] = file.attrs["content_sha256"]
        elif path.name == "test_metrics.json":
            identity[name] = reproducible(json.loads(path.read_text()))
        elif path.name == "storage_codecs.json":
            record = json.loads(path.read_text())
            codecs = [{k: v for k, v in entry.items() if not _timing(k)} for entry in record["codecs"]]
            identity[name] = {"case": record["case"], "source_sha256": record["source_sha256"], "codecs": codecs}
        elif path.name in TIMING_TABLES:
            frame = pd.read_csv(path)
            identity[name] = frame.drop(columns=[c for c in frame.columns if _timing(c)]).to_csv()
        elif path.suffix in (".csv", ".png", ".pdf", ".md") or path.name in ("storage.json", "confusion.json"):
            identity[name] = path.read_bytes()
    return identity


def differences(first: Path, second: Path) -> list[str]:
    """The artifacts that differ between two runs, or exist in only one of them."""
    a, b = run_outputs(first), run_outputs(second)
    return sorted(set(a) ^ set(b)) + [name for name in sorted(set(a) & set(b)) if a[name] != b[name]]


if __name__ == "__main__":
    before, after = map(Path, sys.argv[1:3])
    found = differences(before, after)
    for name in found:
        print(f"differs: {name}")
    print(f"{len(run_outputs(before))} artifacts compared, {len(found)} differ")
    sys.exit(1 if found else 0)
