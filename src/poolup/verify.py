"""``poolup verify``: check every recorded checksum and every link of a results tree.

The chain: ``raw.h5`` <- ``{case}/pooled.h5`` <- ``{case}/stored.h5`` (and
``storage.json``), ``storage_codecs.json`` and
``{case}/upsampled.h5`` <- ``{case}/seed{n}/`` (``predictions.h5``,
``test_metrics.json``, which also records its ``model.keras`` and
``history.csv``) <- ``summary/manifest.json`` (every input and output of the
aggregation). Each artifact records its own content digest and the digest of
what it was made from; this module recomputes them and compares.

It also reports what no digest covers but a run must not leave behind: files
left by interrupted writes (``.tmp-*``), half-finished jobs (a run folder or a
figure without its siblings), summary files that no manifest records, figures
that do not decode, symbolic links, and record paths that point outside the
tree. Every file, however damaged, gives a finding line, never an exception.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import h5py

from poolup.artifacts import (
    H5_ERRORS,
    TMP_PREFIX,
    content_sha256,
    decode_attr,
    file_sha256,
    json_content_sha256,
    read_json,
)
from poolup.errors import PoolupError

# The files one training job writes together: any of them without the others
# is a half-finished job.
RUN_FILES = frozenset({"model.keras", "history.csv", "test_metrics.json", "predictions.h5"})
# The folder of one training run (``results/{dataset}/{case}/seed{seed}``).
RUN_FOLDER = re.compile(r"seed\d+")
# Each figure is written as a PNG (report) and a PDF (print).
FIGURE_SUFFIXES = (".png", ".pdf")
# The upstream artifact of each HDF5 artifact, relative to it.
H5_PARENTS: dict[str, str] = {
    "pooled.h5": "../raw.h5",
    "stored.h5": "pooled.h5",
    "upsampled.h5": "pooled.h5",
    "predictions.h5": "../upsampled.h5",
}
# Files in a summary folder that the aggregation's manifest does not list:
# the codec table has its own rule (checked by recomputing it from its inputs).
CODEC_TABLE = "storage_codecs.csv"
# Folders of per-job logs and benchmarks: free text, not artifacts.
LOG_FOLDERS = frozenset({"logs", "benchmarks"})


def _h5_digests(path: Path) -> tuple[str, str, str]:
    """(recorded content digest, recomputed content digest, recorded source digest)."""
    with h5py.File(path, "r") as file:
        recorded = decode_attr(file.attrs.get("content_sha256", ""))
        source = decode_attr(file.attrs.get("source_sha256", ""))
        return str(recorded or ""), content_sha256(file), str(source or "")


def verify_tree(root: str | os.PathLike[str]) -> Iterator[str]:
    """Yield one line per problem found under ``root`` (a ``results/`` folder).

    Raises
    ------
    PoolupError
        If ``root`` is not a folder (an unusable argument, exit status 2).
    """
    root = Path(root)
    if not root.is_dir():
        raise PoolupError(
            f"{root}: {'not a folder' if root.exists() else 'not found'}; give the results/ folder of a run"
        )
    checker = _TreeChecker(root)
    yield from checker.run()


class _TreeChecker:
    """One pass over a results tree, collecting digests, then the links between them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.content: dict[Path, str] = {}
        self.sources: dict[Path, str] = {}
        self.records: dict[Path, dict[str, Any]] = {}
        self.files: list[Path] = []

    def run(self) -> Iterator[str]:
        for folder, subfolders, names in os.walk(self.root, followlinks=False):
            here = Path(folder)
            for name in sorted(subfolders):
                if name.startswith(TMP_PREFIX) or (here / name).is_symlink():
                    yield from self._odd_entry(here / name)
            subfolders[:] = sorted(
                n for n in subfolders if not n.startswith(TMP_PREFIX) and not (here / n).is_symlink()
            )
            in_logs = bool(LOG_FOLDERS & set(here.relative_to(self.root).parts))
            for name in sorted(names):
                path = here / name
                if name.startswith(TMP_PREFIX) or path.is_symlink() or not path.is_file():
                    yield from self._odd_entry(path)
                elif not in_logs:
                    self.files.append(path)
                    yield from self._guarded(path, self._check_file)
        yield from self._guarded(self.root, lambda _: self._check_links())
        yield from self._guarded(self.root, lambda _: self._check_groups())

    def _odd_entry(self, path: Path) -> Iterator[str]:
        if path.name.startswith(TMP_PREFIX):
            yield f"{path}: a temporary file left by an interrupted job; delete it"
        elif path.is_symlink():
            yield (
                f"{path}: a symbolic link (to {os.readlink(path)}); a results tree holds only regular files, replace "
                "it by the file or delete it"
            )
        else:
            yield f"{path}: not a regular file; delete it"

    def _guarded(self, path: Path, check: Callable[[Path], Iterator[str]]) -> Iterator[str]:
        """Run one check; any exception a damaged file provokes becomes a finding."""
        try:
            yield from check(path)
        except PoolupError as exc:
            yield str(exc)
        except Exception as exc:  # noqa: BLE001 - a hostile file may provoke any library error: report, never crash
            yield (
                f"{path}: cannot be checked ({type(exc).__name__}: {str(exc)[:120]}); delete it and rerun the stage "
                "that makes it"
            )

    # --- one file -----------------------------------------------------------

    def _check_file(self, path: Path) -> Iterator[str]:
        suffix = path.suffix.lower()
        if suffix == ".h5":
            yield from self._check_h5(path)
        elif suffix == ".json":
            yield from self._check_json(path)
        elif suffix == ".png":
            yield from _check_png(path)
        elif suffix == ".pdf":
            yield from _check_pdf(path)
        elif suffix in (".csv", ".md"):
            yield from _check_text(path, parse_csv=suffix == ".csv")
        elif suffix == ".keras" and not zipfile.is_zipfile(path):
            yield f"{path}: not a Keras archive (not a zip file); delete it and rerun the train stage"

    def _check_h5(self, path: Path) -> Iterator[str]:
        try:
            recorded, actual, source = _h5_digests(path)
        except H5_ERRORS:
            yield (
                f"{path}: not a readable HDF5 file (truncated or corrupt); delete it and rerun the stage that makes it"
            )
            return
        if not recorded:
            yield f"{path}: no content_sha256 recorded"
        elif recorded != actual:
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"
        self.content[path], self.sources[path] = actual, source

    def _check_json(self, path: Path) -> Iterator[str]:
        record = read_json(path, verify=False)
        self.records[path] = record
        recorded = record.get("content_sha256")
        if not isinstance(recorded, str) or not recorded:
            yield f"{path}: no content_sha256 recorded"
        elif recorded != json_content_sha256(record):
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"

    # --- links between files ------------------------------------------------

    def _inside(self, record_path: Path, name: Any) -> tuple[Path | None, str | None]:
        """The file a record names (relative to the record's folder), if it stays inside the tree."""
        if not isinstance(name, str) or not name or "\0" in name:
            return (
                None,
                f"{record_path}: names {name!r}, not a relative path; delete it and rerun the stage that makes it",
            )
        if PurePosixPath(name).is_absolute() or Path(name).is_absolute():
            return (
                None,
                f"{record_path}: names the absolute path {name}; records name files relative to themselves, delete "
                "it and rerun",
            )
        target = record_path.parent / name
        try:
            resolved = target.resolve()
        except (OSError, RuntimeError):
            return None, f"{record_path}: names {name}, which cannot be resolved"
        if resolved != self.real_root and self.real_root not in resolved.parents:
            return None, f"{record_path}: names {name}, outside the results tree {self.root}; not read"
        return target, None

    def _link(self, child: Path, recorded: Any, parent: Path) -> Iterator[str]:
        parent = Path(os.path.normpath(parent))
        if parent not in self.content:
            yield f"{child}: made from {parent}, which is missing"
        elif recorded != self.content[parent]:
            found = self.content[parent][:12]
            yield (
                f"{child}: made from a different {parent.name} than the one at {parent} (recorded "
                f"{str(recorded)[:12]}, found {found})"
            )

    def _check_links(self) -> Iterator[str]:
        for path, source in self.sources.items():
            parent = H5_PARENTS.get(path.name)
            if parent is not None:
                yield from self._link(path, source, path.parent / parent)
        for path, record in self.records.items():
            if path.name == "storage.json":
                yield from self._link(path, record.get("stored_sha256", ""), path.parent / "stored.h5")
                yield from self._link(path, record.get("source_sha256", ""), path.parent.parent / "raw.h5")
            elif path.name == "storage_codecs.json":
                yield from self._link(path, record.get("source_sha256", ""), path.parent / "pooled.h5")
            elif path.name == "test_metrics.json":
                yield from self._link(path, record.get("source_sha256", ""), path.parent.parent / "upsampled.h5")
                yield from self._check_outputs(path, record.get("outputs", {}))
            elif path.name == "manifest.json":
                yield from self._check_manifest(path, record)

    def _check_outputs(self, path: Path, outputs: Any) -> Iterator[str]:
        if not isinstance(outputs, dict):
            yield f"{path}: 'outputs' is a {type(outputs).__name__}, not a mapping of file names to digests"
            return
        for name, digest in outputs.items():
            sibling, problem = self._inside(path, name)
            if problem:
                yield problem
                continue
            actual = (
                self.content.get(sibling)
                if sibling.suffix == ".h5"
                else (file_sha256(sibling) if _regular(sibling) else None)
            )
            if actual is None:
                yield f"{path}: its {name} is missing"
            elif actual != digest:
                yield f"{path}: {name} is not the file this run wrote (changed or replaced)"

    def _check_manifest(self, path: Path, record: dict[str, Any]) -> Iterator[str]:
        inputs, outputs = record.get("inputs", {}), record.get("outputs", {})
        if not isinstance(inputs, dict) or not isinstance(outputs, dict):
            yield f"{path}: 'inputs' and 'outputs' must be mappings of paths to digests"
            return
        for name, digest in {**inputs, **outputs}.items():
            target, problem = self._inside(path, name)
            if problem:
                yield problem
            elif not _regular(target):
                yield f"{path}: {name} is missing"
            elif file_sha256(target) != digest:
                yield f"{path}: {name} changed since the aggregation"

    # --- files that belong together -----------------------------------------

    def _check_groups(self) -> Iterator[str]:
        by_folder: dict[Path, set[str]] = {}
        for path in self.files:
            by_folder.setdefault(path.parent, set()).add(path.name)
        for folder, names in sorted(by_folder.items()):
            present = names & RUN_FILES
            if RUN_FOLDER.fullmatch(folder.name) and present != RUN_FILES:
                missing = ", ".join(sorted(RUN_FILES - present))
                yield (
                    f"{folder}: a half-finished training job (has {', '.join(sorted(present))}, lacks {missing}); "
                    "rerun the workflow to redo it"
                )
            if folder.name == "figures":
                for name in sorted(names):
                    stem, suffix = os.path.splitext(name)
                    for other in FIGURE_SUFFIXES:
                        if suffix in FIGURE_SUFFIXES and other != suffix and stem + other not in names:
                            yield (
                                f"{folder / name}: a half-finished figure (no {stem + other}); rerun the workflow to "
                                "redo it"
                            )
            if folder.name == "summary":
                yield from self._check_summary(folder, names)

    def _check_summary(self, folder: Path, names: set[str]) -> Iterator[str]:
        manifest = folder / "manifest.json"
        record = self.records.get(manifest)
        listed: set[Path] = set()
        if record is None:
            if names - {CODEC_TABLE}:
                yield f"{folder}: summary files without manifest.json (a half-finished aggregation); rerun the workflow"
        elif isinstance(record.get("outputs"), dict):
            listed = {Path(os.path.normpath(folder / name)) for name in record["outputs"] if isinstance(name, str)}
        for name in sorted(names - {"manifest.json", CODEC_TABLE}):
            if record is not None and folder / name not in listed:
                yield f"{folder / name}: not recorded in {manifest.name}, so no stage of this run wrote it; delete it"
        if CODEC_TABLE in names:
            yield from self._check_codec_table(folder / CODEC_TABLE)

    def _check_codec_table(self, table: Path) -> Iterator[str]:
        """Recompute the codec table from the cases' ``storage_codecs.json`` and compare bytes."""
        from poolup.codecs import codec_table

        inputs = sorted(
            p for p in self.records if p.name == "storage_codecs.json" and p.parent.parent == table.parent.parent
        )
        with tempfile.TemporaryDirectory(prefix="poolup-verify-") as scratch:
            expected = Path(scratch) / CODEC_TABLE
            codec_table(inputs, expected)
            if not _same_table(expected, table):
                yield (
                    f"{table}: does not match the storage_codecs.json files it is made from (changed, or a case was "
                    "added); rerun the workflow"
                )


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _same_table(expected: Path, found: Path) -> bool:
    """Same rows, whatever the case order (the rule lists cases in config order)."""

    def rows(path: Path) -> list[list[str]]:
        return sorted(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))

    return rows(expected) == rows(found)


def _check_png(path: Path) -> Iterator[str]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                yield f"{path}: not a PNG image ({image.format}); rerun the workflow to redraw it"
                return
            image.load()  # decodes every chunk and checks their CRCs
    except Exception:  # noqa: BLE001 - Pillow raises many types for damaged images
        yield f"{path}: not a readable PNG image (truncated or corrupt); delete it and rerun the workflow"


def _check_pdf(path: Path) -> Iterator[str]:
    data = path.read_bytes()
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        yield f"{path}: not a complete PDF file (truncated or another format); delete it and rerun the workflow"


def _check_text(path: Path, parse_csv: bool) -> Iterator[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        yield f"{path}: not UTF-8 text; delete it and rerun the stage that makes it"
        return
    if parse_csv:
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or any(len(row) != len(rows[0]) for row in rows if row):
            yield (
                f"{path}: not a well-formed CSV table (rows of different lengths); delete it and rerun the stage "
                "that makes it"
            )
