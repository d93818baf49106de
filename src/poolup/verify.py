"""``poolup verify``: check every recorded checksum and every link of a results tree.

Every artifact records its own content digest (``content_sha256``: of an HDF5
file's datasets and attributes, of a JSON record's content) and the digests
of what it is linked to: every other key ending in ``_sha256`` (an HDF5
attribute or a top-level key of a JSON record), such as ``source_sha256``
(the content digest of the artifact it was made from) or ``stored_sha256``
(in ``storage.json``, the file it describes). Links are followed by digest,
never by path: one pass recomputes the content digest of every HDF5 artifact
and JSON record in the tree and indexes them, then every recorded link is
looked up in that index. The linked file must sit beside the artifact or in
a folder above it (a run's input is its case's, a case's input its data
set's): a link that no file of the tree holds is a finding (its input was
replaced, changed or deleted), and so is one held only elsewhere (another
case's file swapped or moved in). Folder and file names play no part: verify
keeps no copy of the workflow's layout for the links. The files a record names relative to itself (``outputs``
of a training run's ``test_metrics.json``: file sha256, or content digest
for ``.h5``; ``inputs`` and ``outputs`` of an aggregation's
``manifest.json``: file sha256) are followed by those names, as recorded.

A link may also name its file (``source_file`` beside ``source_sha256``,
relative to the artifact): an input that no file holds and that is missing
under that name was deleted, and is reported once, with the command that
remakes exactly it; one present under that name with other content was
replaced. Files made for one case (``case``) belong together: an artifact
and the file it was made from, the artifacts of one folder, and a run
folder's files and its seed (``seed<N>``, ``seed``); one case's artifact
found identical in a sibling case's folder was copied there.

It also reports what no digest covers but a run must not leave behind: files
left by interrupted writes (``.tmp-*``), half-finished jobs (a run folder
without its record, or with it but without the history it names, a figure
without its sibling), finished runs whose model or predictions were deleted
after them (one line for all: ``training.keep`` leaves them out), summary
files that no manifest records, a codec table that its inputs no longer give,
figures that do not decode, symbolic links, HDF5 soft and external links
inside an artifact, and record paths that point outside the tree. Every file,
however damaged, gives a finding line, never an exception.
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

from poolup.errors import PoolupError
from poolup.h5files import H5_ERRORS, h5_links
from poolup.provenance import content_sha256, decode_attr, file_sha256, json_content_sha256
from poolup.records import TMP_PREFIX, read_json
from poolup.runs import OPTIONAL_RUN_FILES, RUN_FILE_NAMES, RUN_FOLDER, kept_run_files

# The record a training job writes last: it names the job's other outputs
# (``outputs``), so a run folder without it is a half-finished job, and one with
# it lacking what it names lost files after the run.
RUN_RECORD = RUN_FILE_NAMES["metrics"]
# The files a run keeps only where training.keep asks for them: the analysis does not read them.
OPTIONAL_FILES = frozenset(RUN_FILE_NAMES[name] for name in OPTIONAL_RUN_FILES)
# The record of an aggregation: every file it read and wrote, with digests.
MANIFEST = "manifest.json"
# A stage that writes more tables beside an aggregation's keeps its own manifest, named <stage>.manifest.json.
STAGE_MANIFEST_SUFFIX = ".manifest.json"
# Each figure is written as a PNG (report) and a PDF (print).
FIGURE_SUFFIXES = (".png", ".pdf")
# An artifact's own digest; every other key ending in LINK_SUFFIX is a link.
CONTENT_KEY = "content_sha256"
LINK_SUFFIX = "_sha256"
# A link may name its file too, relative to the artifact's folder (source_file beside source_sha256).
NAME_SUFFIX = "_file"
# The case an artifact was made for (an artifact and what it was made from record the same one), and
# the seed a run's files were made for (their run folder's).
CASE_KEY, SEED_KEY = "case", "seed"
OWNER_KEYS = (CASE_KEY, SEED_KEY)
SHA256 = re.compile(r"[0-9a-f]{64}")
# Files in a summary folder that the aggregation's manifest does not list:
# the codec table has its own rule (checked by recomputing it from its inputs).
CODEC_TABLE = "storage_codecs.csv"
# Folders of per-job logs and benchmarks: free text, not artifacts.
LOG_FOLDERS = frozenset({"logs", "benchmarks"})


def _is_link(key: Any) -> bool:
    """Whether a recorded key is a link: ends in ``_sha256`` and is not the artifact's own ``content_sha256``."""
    return isinstance(key, str) and key.endswith(LINK_SUFFIX) and key != CONTENT_KEY


def _is_name(key: Any) -> bool:
    """Whether a recorded key names a link's file: ``<link>_file`` beside ``<link>_sha256`` (``source_file``)."""
    return isinstance(key, str) and key.endswith(NAME_SUFFIX)


def _name_key(link_key: str) -> str:
    return link_key[: -len(LINK_SUFFIX)] + NAME_SUFFIX


def _h5_digests(path: Path) -> tuple[str, str, dict[str, Any], dict[str, Any], list[tuple[str, str]]]:
    """(recorded content digest, recomputed content digest, recorded links, other attributes, HDF5 links)."""
    with h5py.File(path, "r") as file:
        recorded = decode_attr(file.attrs.get(CONTENT_KEY, ""))
        links = {key: decode_attr(file.attrs[key]) for key in file.attrs if _is_link(key)}
        others = {key: decode_attr(file.attrs[key]) for key in file.attrs if key in OWNER_KEYS or _is_name(key)}
        return str(recorded or ""), content_sha256(file), links, others, list(h5_links(file))


# The kinds of file the stages write: a folder with none of them is not a results tree (a mistyped path).
WRITTEN_SUFFIXES = frozenset({".h5", ".json", ".csv", ".md", ".png", ".pdf", ".keras"})


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
    """One pass over a results tree, indexing content digests, then the links between them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        # Recomputed content digest of every readable HDF5 artifact and JSON record.
        self.content: dict[Path, str] = {}
        # The links each artifact records ({key: digest}), HDF5 attributes and JSON records alike.
        self.links: dict[Path, dict[str, Any]] = {}
        # Files that record a content digest they no longer hold: {recorded digest: file}.
        self.claimed: dict[str, Path] = {}
        self.records: dict[Path, dict[str, Any]] = {}
        self.files: list[Path] = []
        # The case each artifact records, and the files its links name ({name key: relative path}).
        self.cases: dict[Path, str] = {}
        self.seeds: dict[Path, int] = {}
        self.names: dict[Path, dict[str, Any]] = {}

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
        if not any(path.suffix.lower() in WRITTEN_SUFFIXES for path in self.files):
            raise PoolupError(f"{self.root}: holds no file a poolup stage writes; give the results/ folder of a run")
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
            cause = f"{type(exc).__name__}: {str(exc)[:120]}"
            if path == self.root:  # a check across files: a part of a tree given alone lacks what it compares
                yield (
                    f"{path}: its tables cannot be checked against the files they are made from ({cause}); give "
                    "`poolup verify` the whole results/ folder of the run"
                )
            else:
                yield f"{path}: cannot be checked ({cause}); delete it and rerun the stage that makes it"

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
            recorded, actual, links, others, h5links = _h5_digests(path)
        except H5_ERRORS:
            yield (
                f"{path}: not a readable HDF5 file (truncated or corrupt); delete it and rerun the stage that makes it"
            )
            return
        self._index(path, recorded, actual, links, others)
        for where, what in h5links:
            yield (
                f"{path}: {where} is {what}; a poolup artifact holds its data itself (its digest does not cover what a "
                "link reads, least of all another file), delete it and rerun the stage that makes it"
            )
        if not recorded:
            yield f"{path}: no content_sha256 recorded"
        elif recorded != actual:
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"

    def _check_json(self, path: Path) -> Iterator[str]:
        record = read_json(path, verify=False)
        self.records[path] = record
        recorded, actual = record.get(CONTENT_KEY), json_content_sha256(record)
        others = {key: value for key, value in record.items() if key in OWNER_KEYS or _is_name(key)}
        self._index(path, recorded, actual, {key: value for key, value in record.items() if _is_link(key)}, others)
        if not isinstance(recorded, str) or not recorded:
            yield f"{path}: no content_sha256 recorded"
        elif recorded != actual:
            yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"

    def _index(self, path: Path, recorded: Any, actual: str, links: dict[str, Any], others: dict[str, Any]) -> None:
        """Index a file by the digest of what it holds now, and keep the links, names and case it records."""
        self.content[path] = actual
        self.links[path] = links
        self.names[path] = {key: value for key, value in others.items() if _is_name(key)}
        if isinstance(others.get(CASE_KEY), str) and others[CASE_KEY]:
            self.cases[path] = others[CASE_KEY]
        if isinstance(others.get(SEED_KEY), int) and not isinstance(others[SEED_KEY], bool):
            self.seeds[path] = others[SEED_KEY]
        if isinstance(recorded, str) and recorded and recorded != actual:
            self.claimed.setdefault(recorded, path)

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

    def _check_links(self) -> Iterator[str]:
        """Look every recorded link up among the digests the tree holds; follow the names records list."""
        held: dict[str, list[Path]] = {}
        for path, digest in self.content.items():
            held.setdefault(digest, []).append(path)
        deleted = self._deleted_inputs(held)
        explained = {digest for digest, _ in deleted.values()}
        for path in sorted(self.links):
            yield from self._guarded(path, lambda p: self._check_recorded_links(p, held, explained))
        for target, (_, made_from) in sorted(deleted.items()):
            yield self._deleted_input(target, made_from)
        for path in sorted(self.records):
            yield from self._guarded(path, lambda p: self._check_named_files(p, self.records[p]))
        yield from self._check_copies(held)

    def _check_copies(self, held: dict[str, list[Path]]) -> Iterator[str]:
        """One case's artifact copied into a sibling folder: the same content, made for one case, twice.

        Two cases' folders never hold the same artifact (each records its own
        case); two folders side by side that do hold one are a copy, not a run.
        """
        for holders in held.values():
            cased = sorted(path for path in holders if path in self.cases)
            for first, second in zip(cased, cased[1:]):
                if first.parent != second.parent and first.parent.parent == second.parent.parent:
                    yield (
                        f"{second}: the same file as {first}, made for case {self.cases[first]!r}: one case's file "
                        "was copied into another case's folder (or made there from such a copy); delete the one "
                        f"outside the folder of case {self.cases[first]!r} and rerun snakemake"
                    )

    def _near(self, path: Path, holders: list[Path]) -> list[Path]:
        # An artifact's inputs sit beside it or in a folder above it (a run's above its
        # seed folder, a case's above its files): a holder elsewhere is another case's or
        # data set's file, so the input in reach was swapped or moved.
        return [holder for holder in holders if holder.parent == path.parent or holder.parent in path.parents]

    def _deleted_inputs(self, held: dict[str, list[Path]]) -> dict[Path, tuple[str, list[Path]]]:
        """Inputs that no file holds and that the artifacts made from them name: {file: (digest, artifacts)}."""
        deleted: dict[Path, tuple[str, list[Path]]] = {}
        for path in sorted(self.links):
            for key, digest in self.links[path].items():
                name = self.names.get(path, {}).get(_name_key(key))
                if not isinstance(digest, str) or held.get(digest) or not isinstance(name, str) or not name:
                    continue
                target, problem = self._inside(path, name)
                if problem is None and not os.path.lexists(target):
                    target = Path(os.path.normpath(target))
                    deleted.setdefault(target, (digest, []))[1].append(path)
        return deleted

    def _deleted_input(self, target: Path, made_from: list[Path]) -> str:
        """The finding for a deleted input: what was made from it, and the command that remakes exactly it."""
        workdir = self.root.parent
        shown = ", ".join(map(str, made_from[:2])) + (f" and {len(made_from) - 2} more" if len(made_from) > 2 else "")
        return (
            f"{target}: missing (deleted), though {shown} {'was' if len(made_from) == 1 else 'were'} made from it; "
            f"`snakemake --cores 1 {os.path.relpath(target, workdir)}` in {workdir} (with the run's --configfile "
            "options) remakes exactly it"
        )

    def _check_recorded_links(self, path: Path, held: dict[str, list[Path]], explained: set[str]) -> Iterator[str]:
        for key, digest in sorted(self.links[path].items()):
            if not isinstance(digest, str) or not SHA256.fullmatch(digest):
                shown = repr(digest)
                yield (
                    f"{path}: {key} is {shown[:40] + '...' if len(shown) > 40 else shown}, not a sha256 digest; "
                    "delete it and rerun the stage that makes it"
                )
                continue
            holders = held.get(digest, [])
            near = self._near(path, holders)
            if near:
                yield from self._check_same_case(path, near[0])
                continue
            if digest in explained:  # a deleted input, named once with the command that remakes it
                continue
            what = (
                f"made from content {digest[:12]} ({key})"
                if key == "source_sha256"
                else f"records {key[: -len(LINK_SUFFIX)]} content {digest[:12]} ({key})"
            )
            name = self.names.get(path, {}).get(_name_key(key))
            claimant = self.claimed.get(digest)
            if holders:
                yield (
                    f"{path}: {what}, which only {', '.join(map(str, sorted(holders)))} holds, not beside it or in a "
                    "folder above it: an input was swapped or moved; rerun the workflow"
                )
            elif claimant is not None:
                yield (
                    f"{path}: {what}, which {claimant} records but no longer holds (changed or corrupt since); "
                    "rerun the workflow"
                )
            elif isinstance(name, str) and name:
                yield (
                    f"{path}: {what}, but its {name} holds other content: that file was replaced since (another "
                    "case's, or an older run's); rerun the workflow"
                )
            else:
                yield (
                    f"{path}: {what}, which no file in {self.root} holds: its input was replaced, changed or "
                    "deleted; rerun the workflow"
                    if key == "source_sha256"
                    else f"{path}: {what}, which no file in {self.root} holds: that file was replaced, changed "
                    "or deleted; rerun the workflow"
                )

    def _check_same_case(self, path: Path, source: Path) -> Iterator[str]:
        """An artifact and the file it was made from record the same case (where both record one)."""
        made_for, source_case = self.cases.get(path), self.cases.get(source)
        if made_for and source_case and made_for != source_case:
            yield (
                f"{path}: records case {made_for!r} but was made from {source}, made for case {source_case!r}: a "
                "file of another case was copied in; delete the one that is not its folder's and rerun snakemake"
            )

    def _check_named_files(self, path: Path, record: dict[str, Any]) -> Iterator[str]:
        """Follow the files a record names relative to itself, as it names them."""
        if "inputs" in record:  # an aggregation's manifest: what it read and what it wrote
            yield from self._check_manifest(path, record)
        elif "outputs" in record:  # a job's record: the files it wrote beside it
            yield from self._check_outputs(path, record["outputs"])

    def _check_outputs(self, path: Path, outputs: Any) -> Iterator[str]:
        if not isinstance(outputs, dict):
            yield f"{path}: 'outputs' is a {type(outputs).__name__}, not a mapping of file names to digests"
            return
        for name, digest in outputs.items():
            sibling, problem = self._inside(path, name)
            if problem:
                yield problem
                continue
            sibling = Path(os.path.normpath(sibling))
            actual = (
                self.content.get(sibling)
                if sibling.suffix == ".h5"
                else (file_sha256(sibling) if _regular(sibling) else None)
            )
            if actual is None:
                if not (path.name == RUN_RECORD and name in OPTIONAL_FILES):  # else one line for all: _check_groups
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
        # What a finished run folder holds: its record and the files that record names; a folder
        # without a (readable) record is held to what the other runs' records name.
        recorded_anywhere = {RUN_RECORD}
        for path, record in self.records.items():
            if path.name == RUN_RECORD:
                recorded_anywhere |= _plain_names(record.get("outputs"))
        pruned: dict[Path, set[str]] = {}  # finished runs whose optional files were deleted after them
        for folder, names in sorted(by_folder.items()):
            yield from self._check_one_case(folder, names)
            record = self.records.get(folder / RUN_RECORD)
            if record is not None:
                expected = {RUN_RECORD} | _plain_names(record.get("outputs"))
            elif RUN_RECORD in names or RUN_FOLDER.fullmatch(folder.name):  # a run killed before its record
                expected = recorded_anywhere
            else:
                expected = set()
            lacking = expected - names
            if lacking and record is not None and lacking <= OPTIONAL_FILES:
                pruned[folder] = lacking  # the record is written last: the run finished
            elif lacking:
                yield (
                    f"{folder}: a half-finished training job (has {', '.join(sorted(names))}, lacks "
                    f"{', '.join(sorted(lacking))}); rerun the workflow to redo it"
                )
            # Every figure is a PNG and a PDF, wherever it sits.
            for name in sorted(names):
                stem, suffix = os.path.splitext(name)
                for other in FIGURE_SUFFIXES:
                    if suffix in FIGURE_SUFFIXES and other != suffix and stem + other not in names:
                        yield (
                            f"{folder / name}: a half-finished figure (no {stem + other}); rerun the workflow to "
                            "redo it"
                        )
            # Tables that no run's record lists belong to an aggregation, which lists them in its manifest.
            tables = {name for name in names if name.endswith((".csv", ".md"))} - recorded_anywhere
            if not expected and (MANIFEST in names or tables):
                yield from self._check_summary(folder, names)
        if pruned:
            yield self._pruned_runs(pruned)

    @staticmethod
    def _pruned_runs(pruned: dict[Path, set[str]]) -> str:
        """One line for every finished run whose model or predictions were deleted after it (say, a design kept
        or archived without them): the analysis does not read them."""
        folders = sorted(pruned)
        which = str(folders[0]) if len(folders) == 1 else f"{len(folders)} runs, {folders[0]} to {folders[-1]}"
        analysed = " and ".join(kept_run_files().values())
        return (
            f"{which}: {', '.join(sorted(set().union(*pruned.values())))} deleted after the run (its {RUN_RECORD} "
            f"lists what it wrote); the analysis reads only {analysed}: leave them out of training.keep to go on "
            "without them, or delete the run folder and rerun the workflow to train it again"
        )

    def _check_one_case(self, folder: Path, names: set[str]) -> Iterator[str]:
        """The artifacts in one folder are made for one case (where they record one), and a run folder's
        (``seed<N>``) for its seed."""
        by_case: dict[str, list[str]] = {}
        run = RUN_FOLDER.fullmatch(folder.name)
        for name in sorted(names):
            case = self.cases.get(folder / name)
            if case:
                by_case.setdefault(case, []).append(name)
            seed = self.seeds.get(folder / name)
            if run and seed is not None and seed != int(run.group(1)):
                yield (
                    f"{folder / name}: made for seed {seed}, but it is in the folder of seed {run.group(1)}: another "
                    "run's file was copied in; delete it and rerun snakemake"
                )
        if len(by_case) > 1:
            listed = "; ".join(f"case {case!r}: {', '.join(files)}" for case, files in sorted(by_case.items()))
            yield (
                f"{folder}: holds files made for different cases ({listed}): another case's file was copied in; delete "
                "the ones that are not this folder's and rerun snakemake"
            )

    def _check_summary(self, folder: Path, names: set[str]) -> Iterator[str]:
        manifests = {name for name in names if name == MANIFEST or name.endswith(STAGE_MANIFEST_SUFFIX)}
        record = self.records.get(folder / MANIFEST)
        listed: set[Path] = set()
        if record is None and names - manifests - {CODEC_TABLE}:
            yield f"{folder}: summary files without manifest.json (a half-finished aggregation); rerun the workflow"
        for name in manifests:
            outputs = (self.records.get(folder / name) or {}).get("outputs")
            if isinstance(outputs, dict):
                listed |= {Path(os.path.normpath(folder / out)) for out in outputs if isinstance(out, str)}
        for name in sorted(names - manifests - {CODEC_TABLE}):
            if record is not None and folder / name not in listed:
                yield (
                    f"{folder / name}: not recorded in {MANIFEST} (or a stage's manifest), so no stage of this run "
                    "wrote it; delete it"
                )
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


def _plain_names(outputs: Any) -> set[str]:
    """The file names (no folder) a record's ``outputs`` lists, if it is a mapping."""
    if not isinstance(outputs, dict):
        return set()
    return {name for name in outputs if isinstance(name, str) and name and "/" not in name and "\\" not in name}


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
