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


def verify_tree(root: str | os.PathLike[str], tally: dict[str, int] | None = None) -> Iterator[str]:
    """Yield one line per problem found under ``root`` (a ``results/`` folder); ``tally["files"]``: how many
    files it checked (logs and benchmarks aside), once the walk is done.

    One pass over the tree checks every file on its own (:func:`check_file`)
    and indexes what each records (:class:`Tree`); then the checks across files
    run on that index: the links between files (:func:`check_links`) and the
    files that belong together (:func:`check_run_groups`).

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
    tree = Tree(root)
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(subfolders):
            if name.startswith(TMP_PREFIX) or (here / name).is_symlink():
                yield from check_odd_entry(here / name)
        subfolders[:] = sorted(n for n in subfolders if not n.startswith(TMP_PREFIX) and not (here / n).is_symlink())
        in_logs = bool(LOG_FOLDERS & set(here.relative_to(root).parts))
        for name in sorted(names):
            path = here / name
            if name.startswith(TMP_PREFIX) or path.is_symlink() or not path.is_file():
                yield from check_odd_entry(path)
            elif not in_logs:
                tree.files.append(path)
                yield from guarded(tree, path, lambda p: check_file(tree, p))
    if not any(path.suffix.lower() in WRITTEN_SUFFIXES for path in tree.files):
        raise PoolupError(f"{root}: holds no file a poolup stage writes; give the results/ folder of a run")
    yield from guarded(tree, root, lambda _: check_links(tree))
    yield from guarded(tree, root, lambda _: check_run_groups(tree))
    if tally is not None:
        tally["files"] = tally.get("files", 0) + len(tree.files)


class Tree:
    """What one pass over a results tree found: every file, and what each artifact holds and records."""

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

    def index(self, path: Path, recorded: Any, actual: str, links: dict[str, Any], others: dict[str, Any]) -> None:
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

    def inside(self, record_path: Path, name: Any) -> tuple[Path | None, str | None]:
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


def check_odd_entry(path: Path) -> Iterator[str]:
    """A temporary file or folder, a symbolic link, or something that is not a regular file."""
    if path.name.startswith(TMP_PREFIX):
        yield f"{path}: a temporary file left by an interrupted job; delete it"
    elif path.is_symlink():
        yield (
            f"{path}: a symbolic link (to {os.readlink(path)}); a results tree holds only regular files, replace "
            "it by the file or delete it"
        )
    else:
        yield f"{path}: not a regular file; delete it"


def guarded(tree: Tree, path: Path, check: Callable[[Path], Iterator[str]]) -> Iterator[str]:
    """Run one check; any exception a damaged file provokes becomes a finding."""
    try:
        yield from check(path)
    except PoolupError as exc:
        yield str(exc)
    except Exception as exc:  # noqa: BLE001 - a hostile file may provoke any library error: report, never crash
        cause = f"{type(exc).__name__}: {str(exc)[:120]}"
        if path == tree.root:  # a check across files: a part of a tree given alone lacks what it compares
            yield (
                f"{path}: its tables cannot be checked against the files they are made from ({cause}); give "
                "`poolup verify` the whole results/ folder of the run"
            )
        else:
            yield f"{path}: cannot be checked ({cause}); delete it and rerun the stage that makes it"


# --- one file -----------------------------------------------------------


def check_file(tree: Tree, path: Path) -> Iterator[str]:
    """One file on its own, by its kind (suffix); HDF5 artifacts and JSON records are indexed in ``tree``."""
    suffix = path.suffix.lower()
    if suffix == ".h5":
        yield from check_h5_file(tree, path)
    elif suffix == ".json":
        yield from check_json_record(tree, path)
    elif suffix == ".png":
        yield from check_png(path)
    elif suffix == ".pdf":
        yield from check_pdf(path)
    elif suffix in (".csv", ".md"):
        yield from check_text(path, parse_csv=suffix == ".csv")
    elif suffix == ".keras" and not zipfile.is_zipfile(path):
        yield f"{path}: not a Keras archive (not a zip file); delete it and rerun the train stage"


def check_h5_file(tree: Tree, path: Path) -> Iterator[str]:
    """An HDF5 artifact: readable, holding no HDF5 link, and holding the content digest it records."""
    try:
        recorded, actual, links, others, h5links = _h5_digests(path)
    except H5_ERRORS:
        yield f"{path}: not a readable HDF5 file (truncated or corrupt); delete it and rerun the stage that makes it"
        return
    tree.index(path, recorded, actual, links, others)
    for where, what in h5links:
        yield (
            f"{path}: {where} is {what}; a poolup artifact holds its data itself (its digest does not cover what a "
            "link reads, least of all another file), delete it and rerun the stage that makes it"
        )
    if not recorded:
        yield f"{path}: no content_sha256 recorded"
    elif recorded != actual:
        yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"


def check_json_record(tree: Tree, path: Path) -> Iterator[str]:
    """A JSON record: strict JSON, an object, and holding the content digest it records."""
    record = read_json(path, verify=False)
    tree.records[path] = record
    recorded, actual = record.get(CONTENT_KEY), json_content_sha256(record)
    others = {key: value for key, value in record.items() if key in OWNER_KEYS or _is_name(key)}
    tree.index(path, recorded, actual, {key: value for key, value in record.items() if _is_link(key)}, others)
    if not isinstance(recorded, str) or not recorded:
        yield f"{path}: no content_sha256 recorded"
    elif recorded != actual:
        yield f"{path}: content does not match its recorded sha256 (changed or corrupt)"


def check_png(path: Path) -> Iterator[str]:
    """A PNG figure that decodes, every chunk's CRC included."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                yield f"{path}: not a PNG image ({image.format}); rerun the workflow to redraw it"
                return
            image.load()  # decodes every chunk and checks their CRCs
    except Exception:  # noqa: BLE001 - Pillow raises many types for damaged images
        yield f"{path}: not a readable PNG image (truncated or corrupt); delete it and rerun the workflow"


def check_pdf(path: Path) -> Iterator[str]:
    """A PDF figure, complete from its header to its end-of-file mark."""
    data = path.read_bytes()
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        yield f"{path}: not a complete PDF file (truncated or another format); delete it and rerun the workflow"


def check_text(path: Path, parse_csv: bool) -> Iterator[str]:
    """A table or Markdown file: UTF-8 text, and (``parse_csv``) rows of one length."""
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


# --- links between files ------------------------------------------------


def check_links(tree: Tree) -> Iterator[str]:
    """Look every recorded link up among the digests the tree holds; follow the names records list."""
    held: dict[str, list[Path]] = {}
    for path, digest in tree.content.items():
        held.setdefault(digest, []).append(path)
    deleted = deleted_inputs(tree, held)
    explained = {digest for digest, _ in deleted.values()}
    for path in sorted(tree.links):
        yield from guarded(tree, path, lambda p: check_links_of(tree, p, held, explained))
    for target, (_, made_from) in sorted(deleted.items()):
        yield deleted_input(tree, target, made_from)
    for path in sorted(tree.records):
        yield from guarded(tree, path, lambda p: check_named_files(tree, p, tree.records[p]))
    yield from check_copies(tree, held)


def check_copies(tree: Tree, held: dict[str, list[Path]]) -> Iterator[str]:
    """One case's artifact copied into a sibling folder: the same content, made for one case, twice.

    Two cases' folders never hold the same artifact (each records its own
    case); two folders side by side that do hold one are a copy, not a run.
    """
    for holders in held.values():
        cased = sorted(path for path in holders if path in tree.cases)
        for first, second in zip(cased, cased[1:]):
            if first.parent != second.parent and first.parent.parent == second.parent.parent:
                yield (
                    f"{second}: the same file as {first}, made for case {tree.cases[first]!r}: one case's file "
                    "was copied into another case's folder (or made there from such a copy); delete the one "
                    f"outside the folder of case {tree.cases[first]!r} and rerun snakemake"
                )


def _near(path: Path, holders: list[Path]) -> list[Path]:
    # An artifact's inputs sit beside it or in a folder above it (a run's above its
    # seed folder, a case's above its files): a holder elsewhere is another case's or
    # data set's file, so the input in reach was swapped or moved.
    return [holder for holder in holders if holder.parent == path.parent or holder.parent in path.parents]


def deleted_inputs(tree: Tree, held: dict[str, list[Path]]) -> dict[Path, tuple[str, list[Path]]]:
    """Inputs that no file holds and that the artifacts made from them name: {file: (digest, artifacts)}."""
    deleted: dict[Path, tuple[str, list[Path]]] = {}
    for path in sorted(tree.links):
        for key, digest in tree.links[path].items():
            name = tree.names.get(path, {}).get(_name_key(key))
            if not isinstance(digest, str) or held.get(digest) or not isinstance(name, str) or not name:
                continue
            target, problem = tree.inside(path, name)
            if problem is None and not os.path.lexists(target):
                target = Path(os.path.normpath(target))
                deleted.setdefault(target, (digest, []))[1].append(path)
    return deleted


def deleted_input(tree: Tree, target: Path, made_from: list[Path]) -> str:
    """The finding for a deleted input: what was made from it, and the command that remakes exactly it."""
    workdir = tree.root.parent
    shown = ", ".join(map(str, made_from[:2])) + (f" and {len(made_from) - 2} more" if len(made_from) > 2 else "")
    return (
        f"{target}: missing (deleted), though {shown} {'was' if len(made_from) == 1 else 'were'} made from it; "
        f"`snakemake --cores 1 {os.path.relpath(target, workdir)}` in {workdir} (with the run's --configfile "
        "options) remakes exactly it"
    )


def check_links_of(tree: Tree, path: Path, held: dict[str, list[Path]], explained: set[str]) -> Iterator[str]:
    """Each link one artifact records: a sha256 digest, held by a file beside it or in a folder above it."""
    for key, digest in sorted(tree.links[path].items()):
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            shown = repr(digest)
            yield (
                f"{path}: {key} is {shown[:40] + '...' if len(shown) > 40 else shown}, not a sha256 digest; "
                "delete it and rerun the stage that makes it"
            )
            continue
        holders = held.get(digest, [])
        near = _near(path, holders)
        if near:
            yield from check_same_case(tree, path, near[0])
            continue
        if digest in explained:  # a deleted input, named once with the command that remakes it
            continue
        yield _broken_link(tree, path, key, digest, holders)


def _broken_link(tree: Tree, path: Path, key: str, digest: str, holders: list[Path]) -> str:
    """The finding for a link that no file within reach holds: swapped, changed, replaced or gone."""
    what = (
        f"made from content {digest[:12]} ({key})"
        if key == "source_sha256"
        else f"records {key[: -len(LINK_SUFFIX)]} content {digest[:12]} ({key})"
    )
    name = tree.names.get(path, {}).get(_name_key(key))
    claimant = tree.claimed.get(digest)
    if holders:
        return (
            f"{path}: {what}, which only {', '.join(map(str, sorted(holders)))} holds, not beside it or in a "
            "folder above it: an input was swapped or moved; rerun the workflow"
        )
    if claimant is not None:
        return (
            f"{path}: {what}, which {claimant} records but no longer holds (changed or corrupt since); "
            "rerun the workflow"
        )
    if isinstance(name, str) and name:
        return (
            f"{path}: {what}, but its {name} holds other content: that file was replaced since (another "
            "case's, or an older run's); rerun the workflow"
        )
    return (
        f"{path}: {what}, which no file in {tree.root} holds: its input was replaced, changed or "
        "deleted; rerun the workflow"
        if key == "source_sha256"
        else f"{path}: {what}, which no file in {tree.root} holds: that file was replaced, changed "
        "or deleted; rerun the workflow"
    )


def check_same_case(tree: Tree, path: Path, source: Path) -> Iterator[str]:
    """An artifact and the file it was made from record the same case (where both record one)."""
    made_for, source_case = tree.cases.get(path), tree.cases.get(source)
    if made_for and source_case and made_for != source_case:
        yield (
            f"{path}: records case {made_for!r} but was made from {source}, made for case {source_case!r}: a "
            "file of another case was copied in; delete the one that is not its folder's and rerun snakemake"
        )


def check_named_files(tree: Tree, path: Path, record: dict[str, Any]) -> Iterator[str]:
    """Follow the files a record names relative to itself, as it names them."""
    if "inputs" in record:  # an aggregation's manifest: what it read and what it wrote
        yield from check_manifest(tree, path, record)
    elif "outputs" in record:  # a job's record: the files it wrote beside it
        yield from check_outputs(tree, path, record["outputs"])


def check_outputs(tree: Tree, path: Path, outputs: Any) -> Iterator[str]:
    """The files a job's record lists beside it (``outputs``): present, and the ones that job wrote."""
    if not isinstance(outputs, dict):
        yield f"{path}: 'outputs' is a {type(outputs).__name__}, not a mapping of file names to digests"
        return
    for name, digest in outputs.items():
        sibling, problem = tree.inside(path, name)
        if problem:
            yield problem
            continue
        sibling = Path(os.path.normpath(sibling))
        actual = (
            tree.content.get(sibling)
            if sibling.suffix == ".h5"
            else (file_sha256(sibling) if _regular(sibling) else None)
        )
        if actual is None:
            if not (path.name == RUN_RECORD and name in OPTIONAL_FILES):  # else one line for all: check_run_groups
                yield f"{path}: its {name} is missing"
        elif actual != digest:
            yield f"{path}: {name} is not the file this run wrote (changed or replaced)"


def check_manifest(tree: Tree, path: Path, record: dict[str, Any]) -> Iterator[str]:
    """Every file an aggregation's manifest lists (``inputs``, ``outputs``): present and unchanged since."""
    inputs, outputs = record.get("inputs", {}), record.get("outputs", {})
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        yield f"{path}: 'inputs' and 'outputs' must be mappings of paths to digests"
        return
    for name, digest in {**inputs, **outputs}.items():
        target, problem = tree.inside(path, name)
        if problem:
            yield problem
        elif not _regular(target):
            yield f"{path}: {name} is missing"
        elif file_sha256(target) != digest:
            yield f"{path}: {name} changed since the aggregation"


# --- files that belong together -----------------------------------------


def check_run_groups(tree: Tree) -> Iterator[str]:
    """Each folder's files together: one case's (and a run folder's seed's), a finished run's files, each
    figure's PNG and PDF, and an aggregation's summary files (:func:`check_summary`)."""
    by_folder: dict[Path, set[str]] = {}
    for path in tree.files:
        by_folder.setdefault(path.parent, set()).add(path.name)
    # What a finished run folder holds: its record and the files that record names; a folder
    # without a (readable) record is held to what the other runs' records name.
    recorded_anywhere = {RUN_RECORD}
    for path, record in tree.records.items():
        if path.name == RUN_RECORD:
            recorded_anywhere |= _plain_names(record.get("outputs"))
    pruned: dict[Path, set[str]] = {}  # finished runs whose optional files were deleted after them
    for folder, names in sorted(by_folder.items()):
        yield from check_one_case(tree, folder, names)
        record = tree.records.get(folder / RUN_RECORD)
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
        yield from check_figure_pairs(folder, names)
        # Tables that no run's record lists belong to an aggregation, which lists them in its manifest.
        tables = {name for name in names if name.endswith((".csv", ".md"))} - recorded_anywhere
        if not expected and (MANIFEST in names or tables):
            yield from check_summary(tree, folder, names)
    if pruned:
        yield pruned_runs(pruned)


def check_figure_pairs(folder: Path, names: set[str]) -> Iterator[str]:
    """Every figure is a PNG and a PDF, wherever it sits."""
    for name in sorted(names):
        stem, suffix = os.path.splitext(name)
        for other in FIGURE_SUFFIXES:
            if suffix in FIGURE_SUFFIXES and other != suffix and stem + other not in names:
                yield f"{folder / name}: a half-finished figure (no {stem + other}); rerun the workflow to redo it"


def pruned_runs(pruned: dict[Path, set[str]]) -> str:
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


def check_one_case(tree: Tree, folder: Path, names: set[str]) -> Iterator[str]:
    """The artifacts in one folder are made for one case (where they record one), and a run folder's
    (``seed<N>``) for its seed."""
    by_case: dict[str, list[str]] = {}
    run = RUN_FOLDER.fullmatch(folder.name)
    for name in sorted(names):
        case = tree.cases.get(folder / name)
        if case:
            by_case.setdefault(case, []).append(name)
        seed = tree.seeds.get(folder / name)
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


def check_summary(tree: Tree, folder: Path, names: set[str]) -> Iterator[str]:
    """An aggregation's folder: its manifest, every file in it listed by a manifest, and the codec table."""
    manifests = {name for name in names if name == MANIFEST or name.endswith(STAGE_MANIFEST_SUFFIX)}
    record = tree.records.get(folder / MANIFEST)
    listed: set[Path] = set()
    if record is None and names - manifests - {CODEC_TABLE}:
        yield f"{folder}: summary files without manifest.json (a half-finished aggregation); rerun the workflow"
    for name in manifests:
        outputs = (tree.records.get(folder / name) or {}).get("outputs")
        if isinstance(outputs, dict):
            listed |= {Path(os.path.normpath(folder / out)) for out in outputs if isinstance(out, str)}
    for name in sorted(names - manifests - {CODEC_TABLE}):
        if record is not None and folder / name not in listed:
            yield (
                f"{folder / name}: not recorded in {MANIFEST} (or a stage's manifest), so no stage of this run "
                "wrote it; delete it"
            )
    if CODEC_TABLE in names:
        yield from check_codec_table(tree, folder / CODEC_TABLE)


def check_codec_table(tree: Tree, table: Path) -> Iterator[str]:
    """Recompute the codec table from the cases' ``storage_codecs.json`` and compare bytes."""
    from poolup.codecs import codec_table

    inputs = sorted(
        p for p in tree.records if p.name == "storage_codecs.json" and p.parent.parent == table.parent.parent
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
