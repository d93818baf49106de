"""``poolup verify``: check every recorded checksum and every link of a results tree.

The chain: ``raw.h5`` <- ``{case}/stored.h5`` (and ``storage.json``) <-
``{case}/upsampled.h5`` <- ``{case}/seed{n}/`` (``predictions.h5``,
``test_metrics.json``, which also records its ``model.keras`` and
``history.csv``) <- ``summary/manifest.json`` (every input and output of the
aggregation). Each artifact records its own content digest and the digest of
what it was made from; this module recomputes them and compares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import h5py

from poolup.artifacts import content_sha256, decode_attr, file_sha256, json_content_sha256


def _h5_digests(path: Path) -> tuple[str, str, str]:
    """(recorded content digest, recomputed content digest, recorded source digest)."""
    with h5py.File(path, "r") as file:
        recorded = str(decode_attr(file.attrs.get("content_sha256", "")))
        source = str(decode_attr(file.attrs.get("source_sha256", "")))
        return recorded, content_sha256(file), source


def verify_tree(root: str | os.PathLike[str]) -> Iterator[str]:
    """Yield one line per problem found under ``root`` (a ``results/`` folder).

    Checks that every HDF5 and JSON artifact's recorded ``content_sha256``
    matches its data, and that every recorded upstream digest matches the
    upstream artifact that is there now.
    """
    root = Path(root)
    if not root.is_dir():
        yield f"{root}: not a folder"
        return
    content: dict[Path, str] = {}
    sources: dict[Path, str] = {}
    for path in sorted(root.rglob("*.h5")):
        if path.name.startswith(".tmp-"):
            yield f"{path}: a temporary file left by an interrupted job; delete it"
            continue
        try:
            recorded, actual, source = _h5_digests(path)
        except OSError:
            yield f"{path}: not a readable HDF5 file"
            continue
        if not recorded:
            yield f"{path}: no content_sha256 recorded"
        elif recorded != actual:
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"
        content[path], sources[path] = actual, source
    json_records: dict[Path, dict] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            yield f"{path}: not valid JSON"
            continue
        json_records[path] = record
        if "content_sha256" not in record:
            yield f"{path}: no content_sha256 recorded"
        elif record["content_sha256"] != json_content_sha256(record):
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"
    yield from _check_links(content, sources, json_records)


def _link(child: Path, recorded: str, parent: Path, content: dict[Path, str]) -> Iterator[str]:
    if parent not in content:
        yield f"{child}: made from {parent}, which is missing"
    elif recorded != content[parent]:
        yield f"{child}: made from a different {parent.name} than the one at {parent} (recorded {recorded[:12]}, found {content[parent][:12]})"


def _check_links(content: dict[Path, str], sources: dict[Path, str], records: dict[Path, dict]) -> Iterator[str]:
    for path, source in sources.items():
        parent = {"stored.h5": path.parent.parent / "raw.h5", "upsampled.h5": path.parent / "stored.h5",
                  "predictions.h5": path.parent.parent / "upsampled.h5"}.get(path.name)
        if parent is not None:
            yield from _link(path, source, parent, content)
    for path, record in records.items():
        if path.name == "storage.json":
            yield from _link(path, record.get("stored_sha256", ""), path.parent / "stored.h5", content)
            yield from _link(path, record.get("source_sha256", ""), path.parent.parent / "raw.h5", content)
        elif path.name == "storage_codecs.json":
            yield from _link(path, record.get("source_sha256", ""), path.parent / "stored.h5", content)
        elif path.name == "test_metrics.json":
            yield from _link(path, record.get("source_sha256", ""), path.parent.parent / "upsampled.h5", content)
            for name, digest in record.get("outputs", {}).items():
                sibling = path.parent / name
                actual = content.get(sibling) if sibling.suffix == ".h5" else (file_sha256(sibling) if sibling.is_file() else None)
                if actual is None:
                    yield f"{path}: its {name} is missing"
                elif actual != digest:
                    yield f"{path}: {name} is not the file this run wrote (changed or replaced)"
        elif path.name == "manifest.json":
            for name, digest in {**record.get("inputs", {}), **record.get("outputs", {})}.items():
                target = path.parent / name
                if not target.is_file():
                    yield f"{path}: {name} is missing"
                elif file_sha256(target) != digest:
                    yield f"{path}: {name} changed since the aggregation"
