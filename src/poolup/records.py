"""Writing files atomically, and the records: JSON records (read back checked), CSV and Markdown tables,
manifests, models and figures.

Every file is written to a temporary name in the same folder and renamed
into place only when complete, so a killed job never leaves a file that looks
finished (:func:`atomic_path`); a write the disk or the folder refuses is one
line naming the file and the fix (:func:`write_refusal`). A JSON record carries
its ``content_sha256`` (:func:`poolup.provenance.json_content_sha256`), which
:func:`read_json` checks. CSV, Markdown, model and figure files carry no digest
of their own: the record that lists them does (a run's ``test_metrics.json``,
an aggregation's ``manifest.json``).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from poolup.errors import PoolupError
from poolup.provenance import (
    MADE_FOR_FIX,
    check_made_for,
    check_provenance,
    file_sha256,
    json_content_sha256,
    json_default,
)

# Prefix of every temporary file (``poolup verify`` reports leftovers).
TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name is unpredictable and created exclusively (``mkstemp``:
    ``O_CREAT | O_EXCL``), so a file or symlink planted at a guessed name is
    never followed or overwritten. On any exception the temporary file is
    removed and ``path`` is untouched. A write that the disk or the folder
    refuses (full disk, quota, read-only or unwritable folder, file size
    limit), wherever in the writing it happens, becomes one line naming
    ``path`` and the cause (:func:`write_refusal`).
    """
    final = Path(path)
    tmp: Path | None = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same folder (so the rename is atomic) and same suffix (Keras checks it).
        handle, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=f"-{final.name}", dir=final.parent)
        os.close(handle)
        tmp = Path(name)
        # mkstemp creates mode 0600; give the artifact the usual umask-based mode.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        yield tmp
        os.replace(tmp, final)
    except BaseException as exc:
        refusal = write_refusal(exc)
        if refusal is None:
            raise
        raise PoolupError(
            f"{final}: cannot be written ({refusal}); nothing was written, {_REFUSAL_FIX[refusal]} and rerun"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


# The causes of a refused write, as os.strerror words them, and what to do about each.
_REFUSALS = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "write the results to a writable file system",
    errno.EACCES: "make the folder writable for you",
    errno.EPERM: "make the folder writable for you",
    errno.EFBIG: "raise the file size limit (ulimit -f)",
}


_REFUSAL_FIX = {os.strerror(code): fix for code, fix in _REFUSALS.items()}


# HDF5 reports the C library's errno inside its message ("... errno = 28, error message = ...").
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def write_refusal(exc: BaseException) -> str | None:
    """The cause (``os.strerror`` text) if ``exc`` is, or was raised while handling, a write the system refused.

    Libraries wrap a refused write differently: Python raises ``OSError``
    with its errno, h5py an ``OSError`` or ``RuntimeError`` whose message
    holds HDF5's ``errno = 28``, and Matplotlib's PDF writer an
    ``AttributeError`` while it cleans up after the ``OSError``. All are
    found by following the exception chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, RuntimeError)):  # h5py raises either for a failed HDF5 write
            code = getattr(current, "errno", None)
            if code is None:
                found = _HDF5_ERRNO.search(str(current))
                code = int(found.group(1)) if found else None
            if code in _REFUSALS:
                return os.strerror(code)
        current = current.__cause__ or current.__context__
    return None


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that an interrupted write of ``path`` left beside it.

    Only safe while no other process writes ``path`` (Snakemake's lock on the
    working directory guarantees that for a job's outputs). Returns what was
    deleted.
    """
    final = Path(path)
    if not final.parent.is_dir():
        return []
    removed = []
    for stale in final.parent.glob(f"{glob_escape(TMP_PREFIX)}*-{glob_escape(final.name)}"):
        if stale.is_file() or stale.is_symlink():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters made literal."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def _non_finite_key(value: Any, key: str = "") -> str | None:
    """The dotted key of the first NaN or infinity in ``value``, else None."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return key or "(top level)"
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
        return key or "(top level)"
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for name, item in items:
        found = _non_finite_key(item, f"{key}.{name}" if key else str(name))
        if found:
            return found
    return None


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> str:
    """Write ``data`` as strict, indented JSON, atomically, with its ``content_sha256``; return that digest.

    Raises
    ------
    PoolupError
        If a value is NaN or infinite (strict JSON has no such number); the
        message names the key, and nothing is written.
    """
    bad = _non_finite_key(data)
    if bad is not None:
        raise PoolupError(
            f"{path}: key '{bad}' is NaN or infinite, which strict JSON cannot hold; nothing was written (a result "
            "that is not a number points at the settings that made it)"
        )
    # A round trip first, so the digest is of exactly what a reader will parse.
    record = json.loads(json.dumps(dict(data), default=json_default, allow_nan=False))
    record["content_sha256"] = json_content_sha256(record)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return record["content_sha256"]


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file (Markdown) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(path: str | os.PathLike[str], frame: Any, float_format: str | None = "%.6g") -> None:
    """Write a pandas table as CSV atomically; floats to 6 significant digits unless ``float_format`` says otherwise."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format)


def write_rows(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write records as CSV with these columns, atomically (Python's own float text, no rounding)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def write_manifest(
    path: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    stage: str,
) -> None:
    """Record the sha256 of every input and output of a stage, by path relative to the manifest."""
    folder = Path(path).parent.resolve()

    def relative(target: str | os.PathLike[str]) -> str:
        return os.path.relpath(Path(target).resolve(), folder)

    write_json(
        path,
        {
            "stage": stage,
            "inputs": {relative(p): file_sha256(p) for p in inputs},
            "outputs": {relative(p): file_sha256(p) for p in outputs},
        },
    )


def write_model(path: str | os.PathLike[str], model: Any) -> None:
    """Save a Keras model as ``.keras`` atomically (the temporary name keeps the suffix Keras checks)."""
    with atomic_path(path) as tmp:
        model.save(tmp)


# No creation date in the PDF: a rerun must give the same bytes (PNG has no date to begin with).
PDF_METADATA = {"CreationDate": None}


def write_figure(figure: Any, png: str | os.PathLike[str], pdf: str | os.PathLike[str], dpi: int) -> None:
    """Save a Matplotlib figure as PNG (at ``dpi``) and PDF (no date: the same bytes on a rerun), atomically.

    Both are written before either is renamed into place, so a write that fails
    (a full disk) leaves neither, not a PNG without its PDF.
    """
    with atomic_path(png) as png_tmp, atomic_path(pdf) as pdf_tmp:
        figure.savefig(png_tmp, format="png", bbox_inches="tight", dpi=dpi)
        figure.savefig(pdf_tmp, format="pdf", bbox_inches="tight", metadata=PDF_METADATA)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def read_json(
    path: str | os.PathLike[str],
    *,
    verify: bool = True,
    stage: str | tuple[str, ...] | None = None,
    source_sha256: str | None = None,
) -> dict[str, Any]:
    """Read a JSON artifact: strict JSON, an object, and its ``content_sha256`` holds.

    Parameters
    ----------
    path : path-like
        The record.
    verify : bool
        Check the recorded ``content_sha256`` (False only for display).
    stage : str or tuple of str, optional
        The record's ``stage`` must be (one of) this.
    source_sha256 : str, optional
        The record's ``source_sha256`` must be this digest (the upstream link).

    Raises
    ------
    PoolupError
        One line naming the file and the fix: missing, not strict JSON, not an
        object, no or wrong ``content_sha256``, or the wrong stage or upstream.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "file not found"
        raise PoolupError(f"{path}: {what}; run the workflow stage that makes it")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise PoolupError(f"{path}: not valid JSON ({detail}); delete it and rerun the stage that makes it") from None
    except OSError as exc:
        raise PoolupError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not isinstance(record, dict):
        raise PoolupError(
            f"{path}: holds a JSON {type(record).__name__}, not an object; delete it and rerun the stage that makes it"
        )
    if verify:
        recorded = record.get("content_sha256")
        if not isinstance(recorded, str) or not recorded:
            raise PoolupError(
                f"{path}: no content_sha256 recorded, so it was not written by poolup or was edited; delete it and "
                "rerun the stage that makes it"
            )
        if recorded != json_content_sha256(record):
            raise PoolupError(
                f"{path}: content does not match its recorded sha256 (changed or corrupt); delete it and rerun the "
                "stage that makes it"
            )
    check_provenance(path, record, stage, source_sha256)
    return record


def read_case_records(
    paths: Sequence[str | os.PathLike[str]], in_case_folders: bool = False, fix: str = MADE_FOR_FIX
) -> list[dict[str, Any]]:
    """Per-case JSON records (``storage.json``, ``fidelity.json``, ...), read and checked; ``in_case_folders``
    (a run's layout, ``{case}/<record>``): each must have been made for the case whose folder holds it
    (``fix`` as in :func:`poolup.provenance.check_made_for`)."""
    records = [read_json(path) for path in paths]
    if in_case_folders:
        for path, record in zip(paths, records, strict=True):
            check_made_for(path, record, {"case": Path(path).parent.name}, fix=fix)
    return records
