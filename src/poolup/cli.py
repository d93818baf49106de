"""Command line: ``poolup inspect FILE`` and ``poolup verify results/`` (also ``python -m poolup ...``).

Exit status, for both commands: 0 every checksum and link holds; 1 a problem
was found (a finding line says which); 2 an argument is unusable (a missing
path, a folder where a file is meant, a file that is not an artifact at all,
a bad option).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py

from poolup.artifacts import (
    H5_ERRORS,
    content_sha256,
    decode_attr,
    json_content_sha256,
    open_h5,
    read_json,
)
from poolup.errors import PoolupError
from poolup.recipe import PAYLOADS, Recipe

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
        return lines, ok


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
        describe = describe_json if Path(path).suffix.lower() == ".json" else describe_h5
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

    problems, status = 0, OK
    for root in args.roots:
        try:
            for line in verify_tree(root):
                print(line)
                problems += 1
        except PoolupError as exc:
            print(f"poolup: error: {exc}", file=sys.stderr)
            status = UNUSABLE
    print(
        f"{problems} problem{'s' if problems != 1 else ''} found"
        if problems
        else ("OK: every checksum and link holds" if status == OK else "nothing verified")
    )
    return max(status, PROBLEM if problems else OK)


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
        "files", nargs="+", help="HDF5 files (raw.h5, stored.h5, upsampled.h5, predictions.h5) or JSON records"
    )
    inspect.set_defaults(run=_inspect)
    verify = commands.add_parser("verify", help="check every recorded checksum and link under a results folder")
    verify.add_argument("roots", nargs="+", help="results folders (e.g. results/)")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 0 all holds, 1 a problem found, 2 an unusable argument."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on a bad option, 0 on --help/--version
        return int(exc.code or 0)
    try:
        return args.run(args)
    except PoolupError as exc:
        print(f"poolup: error: {exc}", file=sys.stderr)
        return UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
