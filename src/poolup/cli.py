"""Command line: ``poolup inspect FILE`` and ``poolup verify results/`` (also ``python -m poolup ...``).

Exit status, for both commands: 0 every checksum and link holds; 1 a problem
was found (a finding line says which); 2 an argument is unusable (a missing
path, a folder where a file is meant, a file that is not an artifact at all,
a bad option); 141 the reader of the output stopped early (``| head``), as
for any program that SIGPIPE ends.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import h5py

from poolup.errors import PoolupError
from poolup.h5files import H5_ERRORS, h5_links, open_h5
from poolup.provenance import content_sha256, decode_attr, file_sha256, json_content_sha256
from poolup.recipe import PAYLOADS, Recipe
from poolup.records import read_json

OK, PROBLEM, UNUSABLE = 0, 1, 2
# What `poolup --help` says: plain text (the module docstring is reST, for the API docs).
DESCRIPTION = """\
Inspect and verify poolup's artifacts: poolup inspect FILE shows an HDF5 or
JSON artifact and checks its checksum; poolup verify results/ checks every
recorded checksum and link under a results folder (also: python -m poolup).

Exit status, for both commands: 0 every checksum and link holds; 1 a problem
was found (a finding line says which); 2 an argument is unusable (a missing
path, a folder where a file is meant, a file that is not an artifact at all,
a bad option)."""
# 128 + SIGPIPE: what a shell reports for a program whose reader went away.
PIPE_CLOSED = 141
# Files a run writes that are no artifacts of their own: the record that lists them holds their digest.
LISTED_FILES = (".csv", ".md", ".png", ".pdf", ".tsv", ".log", ".html")


def describe_h5(path: str | Path) -> tuple[list[str], bool]:
    """Lines describing an HDF5 artifact, and whether its checksum holds.

    Lists every HDF5 dataset (shape, dtype, filter, chunking, bytes on disk and
    in memory), every file attribute, and compares the recorded
    ``content_sha256`` (datasets and attributes) with one recomputed.

    Raises
    ------
    PoolupError
        If the path is missing, a folder, or not an HDF5 file at all.
    """
    path = Path(path)
    with open_h5(path, verify=False) as file:
        lines = [f"{path}  ({path.stat().st_size:,} bytes on disk)"]
        try:
            arrays: list[tuple[str, h5py.Dataset]] = []
            file.visititems(lambda name, obj: arrays.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
            lines.append("HDF5 datasets:")
            for name, array in sorted(arrays, key=lambda item: item[0]):
                stored = array.id.get_storage_size()
                logical = array.size * array.dtype.itemsize
                filters = array.compression or "none"
                if array.compression_opts is not None:
                    filters += f" level {array.compression_opts}"
                lines.append(
                    f"  /{name}: shape {array.shape}, {array.dtype}, filter {filters}"
                    f"{', shuffle' if array.shuffle else ''}, chunks {array.chunks},"
                    f" {stored:,} bytes stored / {logical:,} in memory"
                )
            lines.append("attributes:")
            for key in sorted(file.attrs):
                lines.append(f"  {key}: {decode_attr(file.attrs[key])}")
            attrs = {key: decode_attr(file.attrs[key]) for key in file.attrs}
            if "window" in attrs and attrs.get("stage") in ("pool", "store"):
                with contextlib.suppress(PoolupError):
                    recipe = Recipe.from_attrs(attrs)
                    lines.append(
                        f"recipe: {recipe.describe()} (family {recipe.family}); images stored as "
                        f"{', '.join(PAYLOADS[recipe.layout])}, read back with poolup.recipe.read_back(file)"
                    )
            links = list(h5_links(file))
            if links:
                lines.append("links (a poolup artifact holds none: the checksum does not cover what they read):")
                lines.extend(f"  {where}: {what}" for where, what in links)
            recorded = decode_attr(file.attrs.get("content_sha256", ""))
            if not recorded:
                lines.append("checksum: none recorded")
                return lines, False
            actual = content_sha256(file)
        except H5_ERRORS as exc:
            lines.append(f"checksum: cannot be computed, the file is corrupt ({type(exc).__name__}: {str(exc)[:100]})")
            return lines, False
        ok = actual == recorded
        lines.append(f"checksum: {'OK' if ok else 'MISMATCH'} (recorded {recorded}, computed {actual})")
        return lines, ok and not links


def describe_keras(path: str | Path) -> tuple[list[str], bool]:
    """Lines describing a saved Keras model (``model.keras``), and whether its checksum holds.

    Lists the archive's members, the model (class, name, layers, input
    shape) and the Keras version that saved it, checks every member's CRC,
    and compares the file's sha256 with the one its run's record
    (``test_metrics.json`` beside it) lists. Nothing is loaded: no code of
    the archive runs.

    Raises
    ------
    PoolupError
        If the path is missing, a folder, or not a zip archive at all.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "file not found"
        raise PoolupError(f"{path}: {what}; check the path or rerun the train stage")
    if not zipfile.is_zipfile(path):
        raise PoolupError(f"{path}: not a Keras archive (not a zip file); delete it and rerun the train stage")
    lines = [f"{path}  ({path.stat().st_size:,} bytes on disk)", "Keras archive members:"]
    ok = True
    try:
        with zipfile.ZipFile(path) as archive:
            lines += [f"  {info.filename}: {info.file_size:,} bytes" for info in archive.infolist()]
            damaged = archive.testzip()
            metadata = _archive_json(archive, "metadata.json")
            config = _archive_json(archive, "config.json")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        lines.append(f"archive: cannot be read ({type(exc).__name__}: {str(exc)[:100]})")
        return lines, False
    if damaged is not None:
        lines.append(f"archive: member {damaged} is damaged (bad CRC)")
        ok = False
    layers = config.get("config", {}).get("layers", []) if isinstance(config.get("config"), dict) else []
    shape = next((layer.get("config", {}).get("batch_shape") for layer in layers if isinstance(layer, dict)), None)
    lines.append(
        f"model: {config.get('class_name', '?')} {config.get('config', {}).get('name', '?')!r}, {len(layers)} layers, "
        f"input {shape}; saved by Keras {metadata.get('keras_version', '?')} at {metadata.get('date_saved', '?')}"
    )
    from poolup.verify import RUN_RECORD  # the run's record, which lists the model's sha256

    digest = file_sha256(path)
    record_path = path.parent / RUN_RECORD
    try:
        outputs = read_json(record_path, verify=False).get("outputs", {}) if record_path.is_file() else {}
    except PoolupError:
        outputs = {}
    recorded = outputs.get(path.name) if isinstance(outputs, dict) else None
    if not recorded:
        lines.append(f"checksum: none recorded (no {RUN_RECORD} beside it lists {path.name}); sha256 {digest}")
        return lines, False
    lines.append(
        f"checksum: {'OK' if recorded == digest else 'MISMATCH'} (recorded in {RUN_RECORD} {recorded}, "
        f"computed {digest})"
    )
    return lines, ok and recorded == digest


def _archive_json(archive: zipfile.ZipFile, name: str) -> dict:
    """A JSON member of a Keras archive as a mapping (empty if absent or not a JSON object)."""
    try:
        value = json.loads(archive.read(name))
    except (KeyError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def describe(path: str | Path) -> tuple[list[str], bool]:
    """Lines describing any artifact, by its kind (HDF5, JSON record, Keras model), and whether it holds.

    Raises
    ------
    PoolupError
        For a path that is no artifact: missing, a folder, a table or figure
        (their digest is in the record that lists them), or not a file of its kind.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return describe_json(path)
    if suffix == ".keras":
        return describe_keras(path)
    if suffix in LISTED_FILES and Path(path).is_file():
        raise PoolupError(
            f"{path}: a {suffix} file, not an artifact `poolup inspect` reads (HDF5 .h5, JSON records, Keras .keras); "
            "its digest is in the record that lists it: `poolup verify` on the results folder checks it"
        )
    return describe_h5(path)


def describe_json(path: str | Path) -> tuple[list[str], bool]:
    """Lines describing a JSON artifact (its top-level keys), and whether its checksum holds."""
    path = Path(path)
    record = read_json(path, verify=False)
    lines = [f"{path}  ({path.stat().st_size:,} bytes)", "keys:"]
    for key in sorted(record):
        text = repr(record[key])
        lines.append(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    recorded = record.get("content_sha256")
    if not isinstance(recorded, str) or not recorded:
        lines.append("checksum: none recorded")
        return lines, False
    actual = json_content_sha256(record)
    lines.append(f"checksum: {'OK' if actual == recorded else 'MISMATCH'} (recorded {recorded}, computed {actual})")
    return lines, actual == recorded


def _inspect(args: argparse.Namespace) -> int:
    status = OK
    for path in args.files:
        try:
            lines, ok = describe(path)
        except PoolupError as exc:
            print(f"poolup: error: {exc}", file=sys.stderr)
            status = UNUSABLE
            continue
        print("\n".join(lines))
        if not ok:
            status = max(status, PROBLEM)
    return status


def _verify(args: argparse.Namespace) -> int:
    from poolup.verify import verify_tree

    problems, status, tally = 0, OK, {"files": 0}
    for root in args.roots:
        try:
            for line in verify_tree(root, tally):
                print(line)
                problems += 1
        except PoolupError as exc:
            print(f"poolup: error: {exc}", file=sys.stderr)
            status = UNUSABLE
    checked = f"{tally['files']} file{'s' if tally['files'] != 1 else ''} checked"
    print(
        f"{problems} problem{'s' if problems != 1 else ''} found ({checked})"
        if problems
        else (f"OK: every checksum and link holds ({checked})" if status == OK else "nothing verified")
    )
    return max(status, PROBLEM if problems else OK)


def _show(args: argparse.Namespace) -> int:
    """Each data set's answer, ``summary/result.csv``, as an aligned table, with its "cannot decide" line, and
    a search's answer (``summary/search.md``'s first line) where the run had one."""
    import csv

    from poolup.hints import undecidable

    found = 0
    for root in map(Path, args.roots):
        if root.name in ("result.csv", "search.md"):
            summaries = [root.parent]
        else:
            summaries = sorted(
                {path.parent for name in ("result.csv", "search.md") for path in root.glob(f"*/summary/{name}")}
            )
        for summary in summaries:
            result, search = summary / "result.csv", summary / "search.md"
            print(f"{summary.parent.name} ({result if result.is_file() else search}):")
            if result.is_file():
                with open(result, newline="", encoding="utf-8") as handle:
                    rows = list(csv.reader(handle))
                widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
                print("".join(f"  {line}\n" for line in undecidable(result)), end="")
                if len(rows) > 1:  # a header alone: the baseline was the config's only case (a search's run)
                    for row in rows:
                        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
            if search.is_file():  # the search's answer: search.md's first line
                print(f"  search ({search}): {search.read_text(encoding='utf-8').splitlines()[0]}")
            found += 1
    if not found:
        raise PoolupError(
            f"no summary/result.csv or search.md under {', '.join(args.roots)}; give a run's results/ folder (after "
            "its aggregate or its search)"
        )
    return OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poolup")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from poolup import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poolup", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"poolup {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect", help="show an artifact's datasets (or keys) and attributes and check its checksum"
    )
    inspect.add_argument(
        "files",
        nargs="+",
        help="HDF5 files (raw.h5, stored.h5, upsampled.h5, predictions.h5), JSON records or Keras models (model.keras)",
    )
    inspect.set_defaults(run=_inspect)
    verify = commands.add_parser("verify", help="check every recorded checksum and link under a results folder")
    verify.add_argument("roots", nargs="+", help="results folders (e.g. results/)")
    verify.set_defaults(run=_verify)
    show = commands.add_parser("show", help="print each data set's answer (summary/result.csv) in the terminal")
    show.add_argument("roots", nargs="+", help="results folders (e.g. results/) or result.csv files")
    show.set_defaults(run=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 0 all holds, 1 a problem found, 2 an unusable argument."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on a bad option, 0 on --help/--version
        return int(exc.code or 0)
    try:
        status = args.run(args)
        sys.stdout.flush()
        return status
    except PoolupError as exc:
        print(f"poolup: error: {exc}", file=sys.stderr)
        return UNUSABLE
    except BrokenPipeError:
        _discard_output()
        return PIPE_CLOSED


def _discard_output() -> None:
    """Send what is left of standard output nowhere: its reader has gone (``| head``), and Python would
    otherwise fail again when it flushes the output at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
