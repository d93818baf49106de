"""Command line: ``poolup inspect FILE.h5`` and ``poolup verify results/`` (also ``python -m poolup ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py

from poolup.artifacts import content_sha256, decode_attr, open_h5
from poolup.errors import PoolupError


def describe_h5(path: str | Path) -> tuple[list[str], bool]:
    """Lines describing an HDF5 artifact, and whether its checksum holds.

    Lists every dataset (shape, dtype, filter, chunking, bytes on disk and
    in memory), every file attribute, and compares the recorded
    ``content_sha256`` with one recomputed from the data.
    """
    path = Path(path)
    lines = [f"{path}  ({path.stat().st_size:,} bytes on disk)"]
    with open_h5(path) as file:
        datasets: list[tuple[str, h5py.Dataset]] = []
        file.visititems(lambda name, obj: datasets.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
        lines.append("datasets:")
        for name, dataset in sorted(datasets):
            stored = dataset.id.get_storage_size()
            logical = dataset.size * dataset.dtype.itemsize
            filters = dataset.compression or "none"
            if dataset.compression_opts is not None:
                filters += f" level {dataset.compression_opts}"
            lines.append(
                f"  /{name}: shape {dataset.shape}, {dataset.dtype}, filter {filters}"
                f"{', shuffle' if dataset.shuffle else ''}, chunks {dataset.chunks},"
                f" {stored:,} bytes stored / {logical:,} in memory"
            )
        lines.append("attributes:")
        for key in sorted(file.attrs):
            lines.append(f"  {key}: {decode_attr(file.attrs[key])}")
        recorded = decode_attr(file.attrs.get("content_sha256", ""))
        if not recorded:
            lines.append("checksum: none recorded")
            return lines, False
        actual = content_sha256(file)
        ok = actual == recorded
        lines.append(f"checksum: {'OK' if ok else 'MISMATCH'} (recorded {recorded}, computed {actual})")
        return lines, ok


def _inspect(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        lines, ok = describe_h5(path)
        print("\n".join(lines))
        status |= 0 if ok else 1
    return status


def _verify(args: argparse.Namespace) -> int:
    from poolup.verify import verify_tree

    problems = 0
    for root in args.roots:
        for line in verify_tree(root):
            print(line)
            problems += 1
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "OK: every checksum and link holds")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poolup", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="show an HDF5 artifact's datasets and attributes and check its checksum")
    inspect.add_argument("files", nargs="+", help="HDF5 files (raw.h5, stored.h5, upsampled.h5, predictions.h5)")
    inspect.set_defaults(run=_inspect)
    verify = commands.add_parser("verify", help="check every recorded checksum and link under a results folder")
    verify.add_argument("roots", nargs="+", help="results folders (e.g. results/)")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 on a checksum or link problem, 2 on a bad file)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PoolupError as exc:
        print(f"poolup: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
