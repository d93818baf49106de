"""Reading and writing the pipeline's artifacts: every writer, every digest.

Every file is written to a temporary name in the same folder and renamed
into place only when complete, so a killed job never leaves a file that looks
finished. Every HDF5 and JSON artifact carries ``content_sha256``: for HDF5, a digest of
its datasets (names, dtypes, shapes and bytes) and of every file attribute; for
JSON, of the canonical record. The readers here check it (and, on request, the
stage that wrote the file and its upstream digest) before returning anything,
so a tampered or mismatched input stops the stage that would use it. CSV,
Markdown, model and figure files carry no digest of their own: the record
that lists them does (a run's ``test_metrics.json``, an aggregation's
``manifest.json``).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import math
import os
import platform
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.storage import CHUNK_IMAGES, array_chunks, filter_options, image_chunks

# Rows hashed per step when digesting an HDF5 dataset, to keep memory bounded.
_HASH_ROWS = 16384
# HDF5 1.10 file format: superblock v3 and v2 object headers carry checksums of
# the file's metadata, so a flipped byte there is an error, not a wrong read.
LIBVER = ("v110", "latest")
# Prefix of every temporary file (``poolup verify`` reports leftovers).
TMP_PREFIX = ".tmp-"
# What a corrupt HDF5 file can raise from h5py, beyond OSError.
H5_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape an artifact's content."""
    import scipy
    import sklearn

    from poolup import __version__

    return {
        "poolup": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }


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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def json_content_sha256(record: Mapping[str, Any]) -> str:
    """sha256 of a record's canonical JSON, its own ``content_sha256`` key left out."""
    canonical = json.dumps(
        {k: v for k, v in record.items() if k != "content_sha256"},
        sort_keys=True,
        separators=(",", ":"),
        default=_json_default,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    record = json.loads(json.dumps(dict(data), default=_json_default, allow_nan=False))
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


def check_provenance(
    path: str | os.PathLike[str],
    attrs: Mapping[str, Any],
    stage: str | tuple[str, ...] | None = None,
    source_sha256: str | None = None,
) -> None:
    """Check that an artifact was written by ``stage`` and made from the input with digest ``source_sha256``."""
    if stage is not None:
        allowed = (stage,) if isinstance(stage, str) else tuple(stage)
        found = attrs.get("stage")
        if found not in allowed:
            raise PoolupError(
                f"{path}: written by stage {found!r}, expected {' or '.join(map(repr, allowed))}; the wrong file is "
                "in its place, rerun the stage that makes it"
            )
    if source_sha256 is not None and attrs.get("source_sha256") != source_sha256:
        recorded = str(attrs.get("source_sha256", ""))[:12] or "nothing"
        raise PoolupError(
            f"{path}: made from a different input (records {recorded}, expected {source_sha256[:12]}); rerun the "
            "stage that makes it"
        )


# What to do about a file made for another case or with other settings (the end of check_made_for's message).
MADE_FOR_FIX = "delete it and rerun snakemake to remake it (`poolup verify` on the results folder names every such one)"
# Keys that say whose file it is: a difference there means another case's or data set's file.
_OWNER_KEYS = ("dataset", "case", "seed")


def for_case(case: str | None) -> dict[str, Any]:
    """What a per-case stage expects its input to record: ``{"case": case}``, or nothing when called
    without a case (a library call outside a run's folders)."""
    return {} if case is None else {"case": case}


def read_case_records(
    paths: Sequence[str | os.PathLike[str]], in_case_folders: bool = False, fix: str = MADE_FOR_FIX
) -> list[dict[str, Any]]:
    """Per-case JSON records (``storage.json``, ``fidelity.json``, ...), read and checked; ``in_case_folders``
    (a run's layout, ``{case}/<record>``): each must have been made for the case whose folder holds it
    (``fix`` as in :func:`check_made_for`)."""
    records = [read_json(path) for path in paths]
    if in_case_folders:
        for path, record in zip(paths, records, strict=True):
            check_made_for(path, record, {"case": Path(path).parent.name}, fix=fix)
    return records


def check_made_for(
    path: str | os.PathLike[str],
    recorded: Mapping[str, Any],
    expected: Mapping[str, Any],
    fix: str = MADE_FOR_FIX,
) -> None:
    """Check that an artifact was made for the case, data set and recipe the stage reading it expects.

    Parameters
    ----------
    path : path-like
        The artifact, named in the message.
    recorded : mapping
        What it records: an HDF5 file's attributes (decoded or not) or a JSON record.
    expected : mapping
        What the reading stage expects, key by key: ``dataset``, ``case``, ``seed``,
        ``window``, ``stride``, ``method``, ``grid`` or any other recipe key the
        writer records. Numbers compare by value (2 == 2.0, never a bool), lists
        and tuples item by item, and None equals the empty text that HDF5 holds
        for it (:func:`encode_attr`).
    fix : str
        What to do about it, the end of the message.

    Raises
    ------
    PoolupError
        One line naming the file, each key that differs or is not recorded with
        the file's value and the expected one, whether the file is another case's
        (or data set's, or seed's) or stale (made with other settings), and ``fix``.
    """
    wrong = [key for key in expected if key not in recorded or not _same_value(recorded[key], expected[key])]
    if not wrong:
        return
    found = ", ".join(
        f"{key} {_shown(decode_attr(recorded[key]))}" if key in recorded else f"no {key}" for key in wrong
    )
    wanted = ", ".join(f"{key} {_shown(expected[key])}" for key in wrong)
    what = (
        "a file made for another one (or from one) is in its place"
        if any(key in _OWNER_KEYS for key in wrong)
        else "it is stale: made with other settings than the config's"
    )
    raise PoolupError(f"{path}: made for {found}, expected {wanted}; {what}; {fix}")


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(_plain(value), default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    """``value`` as plain Python: decoded HDF5 attributes, tuples as lists, None as the empty text HDF5 holds."""
    value = decode_attr(value)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _same_value(found: Any, wanted: Any) -> bool:
    found, wanted = _plain(found), _plain(wanted)
    if isinstance(found, list) and isinstance(wanted, list):
        return len(found) == len(wanted) and all(_same_value(a, b) for a, b in zip(found, wanted))
    if isinstance(found, dict) and isinstance(wanted, dict):
        return found.keys() == wanted.keys() and all(_same_value(found[k], wanted[k]) for k in found)
    numbers = (int, float)
    if isinstance(found, numbers) and isinstance(wanted, numbers):
        return isinstance(found, bool) == isinstance(wanted, bool) and found == wanted
    return type(found) is type(wanted) and found == wanted


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def array_digest(hasher: Any, name: str, array: h5py.Dataset | NDArray) -> None:
    """Feed one HDF5 dataset's (or array's) name, dtype, shape and bytes into ``hasher``."""
    hasher.update(f"{name}|{np.dtype(array.dtype).str}|{tuple(array.shape)}|".encode())
    if len(array.shape) == 0:
        hasher.update(np.ascontiguousarray(array[()]).tobytes())
        return
    for start in range(0, array.shape[0], _HASH_ROWS):
        hasher.update(np.ascontiguousarray(array[start : start + _HASH_ROWS]).tobytes())


def content_sha256(file: h5py.File) -> str:
    """Digest of every HDF5 dataset (sorted by name) and every file attribute of ``file``.

    Attributes count by name and decoded value (so a window, stride, shape or
    method edited in place changes the digest), except ``content_sha256``
    itself. Raises what h5py raises for a corrupt file (see ``H5_ERRORS``).
    """
    names: list[str] = []
    file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    hasher = hashlib.sha256()
    for name in sorted(names):
        array_digest(hasher, name, file[name])
    for key in sorted(file.attrs):
        if key != "content_sha256":
            value = json.dumps(
                decode_attr(file.attrs[key]), sort_keys=True, separators=(",", ":"), default=_json_default
            )
            hasher.update(f"@{key}|{value}|".encode())
    return hasher.hexdigest()


def h5_links(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every soft or external link in an HDF5 file: (its path, what it points to).

    A poolup artifact holds its data itself; a link reads another object, or
    another file, that the digest (over the objects the file holds) does not
    cover. Links are listed without being followed.
    """
    for name in group:
        where = f"{prefix}/{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            yield where, f"an external link to {link.filename}:{link.path}"
        elif isinstance(link, h5py.SoftLink):
            yield where, f"a soft link to {link.path}"
        else:
            member = group.get(name)
            if isinstance(member, h5py.Group):
                yield from h5_links(member, where)


def check_links(file: h5py.File, path: str | os.PathLike[str]) -> None:
    """Refuse an HDF5 artifact that holds a soft or external link (:func:`h5_links`)."""
    try:
        found = next(h5_links(file), None)
    except H5_ERRORS:
        raise PoolupError(
            f"{path}: the data cannot be read (truncated or corrupt); delete it and rerun the stage that makes it"
        ) from None
    if found is not None:
        raise PoolupError(
            f"{path}: {found[0]} is {found[1]}; a poolup artifact holds its data itself (the digest does not cover "
            "what a link reads), delete it and rerun the stage that makes it"
        )


def check_content(file: h5py.File, path: str | os.PathLike[str]) -> str:
    """The recorded ``content_sha256`` of an open artifact, after checking that it holds (and holds no link)."""
    check_links(file, path)
    try:
        recorded = decode_attr(file.attrs["content_sha256"]) if "content_sha256" in file.attrs else ""
        actual = content_sha256(file)
    except H5_ERRORS:
        raise PoolupError(
            f"{path}: the data cannot be read (truncated or corrupt); delete it and rerun the stage that makes it"
        ) from None
    if not isinstance(recorded, str) or not recorded:
        raise PoolupError(
            f"{path}: no content_sha256 recorded, so it was not written by poolup; delete it and rerun the stage "
            "that makes it"
        )
    if recorded != actual:
        raise PoolupError(
            f"{path}: content does not match its recorded sha256 (changed, corrupt, or written by an older poolup); "
            "delete it and rerun the stage that makes it"
        )
    return recorded


@contextlib.contextmanager
def new_h5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Create an HDF5 file for writing (HDF5 1.10 format, ``LIBVER``) that records no times; close it on exit.

    HDF5 stamps the creation time into the root group's header by default;
    without it the same content gives the same bytes, so a file remade from
    the same input is byte-identical to the one it replaces (and Snakemake's
    input checksums see no change).

    Every dataset and the file are flushed before the file is closed: HDF5
    reports a refused write (a full disk) from an explicit flush, but only
    prints it, and leaves the file in a state that crashes the interpreter at
    exit, when it happens while closing. A file whose writing failed is
    abandoned (:func:`_abandon`) and the error raised.
    """
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(*(getattr(h5py.h5f, f"LIBVER_{name.upper()}") for name in LIBVER))
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    file = h5py.File(h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))
    try:
        yield file
        arrays: list[h5py.Dataset] = []
        file.visititems(lambda _, obj: arrays.append(obj) if isinstance(obj, h5py.Dataset) else None)
        for array in arrays:
            array.flush()
        file.flush()
    except BaseException:
        _abandon(file)
        raise
    file.close()


def _abandon(file: h5py.File) -> None:
    """Close an HDF5 file whose writing failed, without writing any more of it.

    Closing flushes what HDF5 still holds; on a full disk that fails again and
    leaves HDF5 unable to shut down. Its file descriptor is first pointed at
    the null device, so the last writes succeed nowhere and the close
    completes; the temporary file itself is then deleted by :func:`atomic_path`.
    """
    with contextlib.suppress(Exception):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, file.id.get_vfd_handle())
        finally:
            os.close(null)
    with contextlib.suppress(Exception):
        file.close()


def write_h5(
    path: str | os.PathLike[str],
    arrays: Mapping[str, NDArray],
    attrs: Mapping[str, Any],
    filter_name: str = "none",
    level: int | None = None,
    image_arrays: tuple[str, ...] = ("images",),
) -> str:
    """Write arrays (as HDF5 datasets) and attributes to an HDF5 file atomically.

    Parameters
    ----------
    path : path-like
        Final file name.
    arrays : mapping of name to ndarray
        Arrays to store. Those named in ``image_arrays`` are chunked by whole
        images and use the filter; the rest are stored contiguous.
    attrs : mapping
        File attributes (see :func:`encode_attr`): numbers and lists of
        numbers or strings as native HDF5 values, dicts as JSON text.
    filter_name, level : str, int
        HDF5 filter for the image arrays (see :func:`poolup.storage.filter_options`).

    Returns
    -------
    str
        The ``content_sha256`` recorded in the file.
    """
    options = filter_options(filter_name, level)
    with atomic_path(path) as tmp, new_h5(tmp) as file:
        # Kept open until new_h5 flushes them: a dataset closed when dropped would write its
        # cached chunks then, and HDF5 only prints an error raised there.
        created = []
        for name, array in arrays.items():
            array = np.asarray(array)
            if name in image_arrays and array.ndim >= 2 and array.shape[0] > 0:
                created.append(file.create_dataset(name, data=array, chunks=image_chunks(array.shape), **options))
            else:
                created.append(file.create_dataset(name, data=array))
        digest = seal_h5(file, attrs)
    return digest


def seal_h5(
    file: h5py.File, attrs: Mapping[str, Any], annotate: Callable[[h5py.File], Mapping[str, Any]] | None = None
) -> str:
    """Finish a complete artifact being written: its attributes, those ``annotate`` derives from the
    flushed file (e.g. bytes on disk), then its ``content_sha256``, which it returns."""
    for key, value in attrs.items():
        file.attrs[key] = encode_attr(value)
    if annotate is not None:
        file.flush()
        for key, value in annotate(file).items():
            file.attrs[key] = encode_attr(value)
    digest = content_sha256(file)
    file.attrs["content_sha256"] = digest
    return digest


def encode_attr(value: Any) -> Any:
    """HDF5 form of an attribute value: native where HDF5 has a type for it.

    Numbers and booleans become HDF5 scalars, non-empty lists of only
    integers, only numbers or only strings become HDF5 arrays (so ``h5dump``
    shows ``28, 28``, not the text ``"[28, 28]"``); dicts, mixed or nested lists
    and empty lists stay JSON text; ``None`` is the empty string.
    """
    if value is None:
        return ""
    if isinstance(value, (np.ndarray, np.generic, str, bytes, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value:
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        if all(isinstance(v, str) for v in items):
            return np.array(items, dtype=h5py.string_dtype())
        if not any(isinstance(v, bool) for v in items):
            with contextlib.suppress(OverflowError, TypeError):
                if all(isinstance(v, int) for v in items):
                    return np.array(items, dtype=np.int64)
                if all(isinstance(v, (int, float)) for v in items):
                    return np.array(items, dtype=np.float64)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=_json_default)
    return value


def decode_attr(value: Any) -> Any:
    """Inverse of :func:`encode_attr`: plain Python values (lists, ints, floats, str).

    Text that parses as a JSON object or list (how :func:`encode_attr` stores
    dicts and mixed or nested lists) becomes that object again.
    """
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, np.ndarray):
        return [decode_attr(item) for item in value.tolist()] if value.ndim else decode_attr(value.item())
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            return json.loads(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def transform_images(
    source_path: str | os.PathLike[str],
    target_path: str | os.PathLike[str],
    transform: Callable[[NDArray], NDArray],
    image_shape: tuple[int, ...],
    dtype: str,
    attrs: Mapping[str, Any],
    filter_name: str = "none",
    level: int | None = None,
    block: int = 16384,
    *,
    source_stage: str | tuple[str, ...] | None = None,
    annotate: Callable[[h5py.File], Mapping[str, Any]] | None = None,
    read: Callable[[h5py.File, int, int], NDArray] | None = None,
) -> str:
    """Stream ``images`` of one artifact through ``transform`` into a new artifact.

    Reads ``block`` images at a time, so memory stays bounded whatever the
    number of images. ``labels`` are copied unchanged. The source's digest
    is checked first (and its ``stage`` if ``source_stage`` is given); the
    target is written atomically and gets ``content_sha256``. When ``attrs``
    link the source (``source_sha256``), the target also records the source's
    path relative to its own folder (``source_file``), so ``poolup verify``
    can name a deleted source and the command that remakes it.

    Parameters
    ----------
    annotate : callable, optional
        Called with the complete target file (flushed, before its digest and
        rename); the attributes it returns are added, e.g. the bytes the
        images really take on disk. So nothing is written after the rename.
    read : callable, optional
        ``read(source, start, stop)`` gives the source's images ``start:stop``
        (e.g. :func:`poolup.recipe.read_back` for encoded payloads); default:
        the ``images`` dataset.

    Returns
    -------
    str
        The target's ``content_sha256``.
    """
    attrs = linked_attrs(attrs, source_path, target_path)
    with open_h5(source_path, stage=source_stage) as source, atomic_path(target_path) as tmp:
        labels = source["labels"][()]
        n = labels.shape[0]
        images = source["images"] if read is None else None
        with new_h5(tmp) as target:
            out = target.create_dataset(
                "images",
                shape=(n,) + tuple(image_shape),
                dtype=dtype,
                chunks=image_chunks((n,) + tuple(image_shape)),
                **filter_options(filter_name, level),
            )
            for start in range(0, n, block):
                stop = min(start + block, n)
                out[start:stop] = transform(images[start:stop] if read is None else read(source, start, stop))
            copied = target.create_dataset("labels", data=labels)  # noqa: F841 - open until new_h5 flushes it
            digest = seal_h5(target, attrs, annotate)
    return digest


def linked_attrs(
    attrs: Mapping[str, Any], source: str | os.PathLike[str], target: str | os.PathLike[str]
) -> Mapping[str, Any]:
    """``attrs`` with ``source_file`` (the source's path relative to the target) where they link a source
    (``source_sha256``), so ``poolup verify`` can name a deleted source and the command that remakes it."""
    if "source_sha256" not in attrs:  # (a source_file copied from the source's own attributes names its source)
        return attrs
    return {**attrs, "source_file": relative_name(source, target)}


def write_h5_blocks(
    path: str | os.PathLike[str],
    blocks: Iterable[Mapping[str, NDArray]],
    labels: NDArray,
    attrs: Mapping[str, Any],
    filter_name: str = "none",
    level: int | None = None,
    *,
    unfiltered: tuple[str, ...] = (),
    annotate: Callable[[h5py.File], Mapping[str, Any]] | None = None,
    source: str | os.PathLike[str] | None = None,
) -> str:
    """Write arrays that arrive block by block (each block's arrays are appended along axis 0) atomically.

    Memory stays bounded by one block. Every array is chunked as
    :func:`poolup.storage.array_chunks` says and uses the filter, except those
    named in ``unfiltered``; ``labels`` are stored as they are. ``annotate``
    as in :func:`transform_images`; ``source``, the file the blocks are made
    from, is named as :func:`transform_images` names its source.

    Returns
    -------
    str
        The ``content_sha256`` recorded in the file.
    """
    options = filter_options(filter_name, level)
    if source is not None:
        attrs = linked_attrs(attrs, source, path)
    with atomic_path(path) as tmp, new_h5(tmp) as file:
        for block in blocks:
            for name, array in block.items():
                array = np.asarray(array)
                if name not in file:
                    shape = (0,) + array.shape[1:]
                    file.create_dataset(
                        name,
                        shape=shape,
                        maxshape=(None,) + array.shape[1:],
                        dtype=array.dtype,
                        chunks=array_chunks((max(array.shape[0], CHUNK_IMAGES),) + array.shape[1:]),
                        **({} if name in unfiltered else options),
                    )
                target = file[name]
                start = target.shape[0]
                target.resize(start + array.shape[0], axis=0)
                target[start:] = array
        copied = file.create_dataset("labels", data=labels)  # noqa: F841 - open until new_h5 flushes it
        digest = seal_h5(file, attrs, annotate)
    return digest


def relative_name(source: str | os.PathLike[str], artifact: str | os.PathLike[str]) -> str:
    """The path of ``source`` relative to the folder of ``artifact`` (POSIX form: what a record names)."""
    return Path(os.path.relpath(os.path.abspath(source), os.path.abspath(Path(artifact).parent))).as_posix()


@dataclass(frozen=True)
class ImageSet:
    """Images and labels read from an artifact, with its file attributes."""

    images: NDArray
    labels: NDArray[np.uint8]
    attrs: dict[str, Any]


def open_h5(
    path: str | os.PathLike[str],
    *,
    verify: bool = True,
    stage: str | tuple[str, ...] | None = None,
    source_sha256: str | None = None,
) -> h5py.File:
    """Open an HDF5 artifact for reading, after checking it; one-line errors.

    Parameters
    ----------
    path : path-like
        The artifact.
    verify : bool
        Check that the recorded ``content_sha256`` holds (it covers every
        HDF5 dataset and attribute). False only to display a file as it is.
    stage : str or tuple of str, optional
        The file's ``stage`` attribute must be (one of) this.
    source_sha256 : str, optional
        The file's ``source_sha256`` must be this digest (the upstream link).
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "file not found"
        raise PoolupError(f"{path}: {what}; check the path or rerun the stage that makes it")
    try:
        file = h5py.File(path, "r")
    except H5_ERRORS:
        raise PoolupError(
            f"{path}: not a readable HDF5 file (truncated or another format); delete it and rerun the stage that "
            "makes it"
        ) from None
    try:
        if verify:
            check_content(file, path)
        if stage is not None or source_sha256 is not None:
            try:
                attrs = {key: decode_attr(file.attrs[key]) for key in ("stage", "source_sha256") if key in file.attrs}
            except H5_ERRORS:
                raise PoolupError(
                    f"{path}: its attributes cannot be read (corrupt); delete it and rerun the stage that makes it"
                ) from None
            check_provenance(path, attrs, stage, source_sha256)
    except BaseException:
        file.close()
        raise
    return file


def checked_image_arrays(
    file: h5py.File, path: str | os.PathLike[str], image_shape: tuple[int, ...] | None = None, dtype: str | None = None
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """The ``images`` and ``labels`` datasets of an open image artifact, after checking their layout (no data read).

    Raises
    ------
    PoolupError
        One line naming the file: an HDF5 dataset missing, images not (n, h, w[, c]),
        not of ``image_shape`` or ``dtype``, or not one label per image.
    """
    for name in ("images", "labels"):
        if name not in file or not isinstance(file[name], h5py.Dataset):
            raise PoolupError(
                f"{path}: no '{name}' HDF5 dataset; this is not a poolup image file, rerun the stage that makes it"
            )
    images, labels = file["images"], file["labels"]
    if images.ndim not in (3, 4):
        raise PoolupError(f"{path}: 'images' has shape {images.shape}, expected (n, height, width[, channels])")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise PoolupError(
            f"{path}: images are {tuple(images.shape[1:])}, expected {tuple(image_shape)}; check the data set's "
            "image_shape and the case settings"
        )
    if dtype is not None and images.dtype != np.dtype(dtype):
        raise PoolupError(f"{path}: 'images' has dtype {images.dtype}, expected {dtype}")
    if labels.shape != (images.shape[0],):
        raise PoolupError(
            f"{path}: {labels.shape[0] if labels.ndim else 0} labels for {images.shape[0]} images; the file "
            "is inconsistent"
        )
    return images, labels


def read_image_set(
    path: str | os.PathLike[str],
    image_shape: tuple[int, ...] | None = None,
    dtype: str | None = None,
    *,
    verify: bool = True,
    stage: str | tuple[str, ...] | None = None,
    source_sha256: str | None = None,
) -> ImageSet:
    """Read ``images`` and ``labels`` from an artifact and check them.

    Parameters
    ----------
    path : path-like
        An HDF5 file with datasets ``images`` (n, h, w[, c]) and ``labels`` (n,).
    image_shape : tuple of int, optional
        Required shape of one image.
    dtype : str, optional
        Required dtype of ``images``.
    verify, stage, source_sha256
        See :func:`open_h5`: the digest is checked unless ``verify`` is False.

    Raises
    ------
    PoolupError
        One line naming the file and what is wrong with it.
    """
    with open_h5(path, verify=verify, stage=stage, source_sha256=source_sha256) as file:
        try:
            images, labels = checked_image_arrays(file, path, image_shape, dtype)
            image_array, label_array = images[()], labels[()]
            attrs = {key: decode_attr(value) for key, value in file.attrs.items()}
        except H5_ERRORS:
            raise PoolupError(
                f"{path}: the data cannot be read (truncated or corrupt); delete it and rerun the stage that makes it"
            ) from None
    check_images(image_array, str(path))
    return ImageSet(image_array, check_labels(label_array, str(path)), attrs)


def check_images(images: NDArray, where: str) -> None:
    """Reject non-numeric or non-finite pixel values."""
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise PoolupError(f"{where}: images have dtype {images.dtype}; expected integer or float pixels")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise PoolupError(f"{where}: images contain NaN or infinite values; regenerate the file")


def check_labels(labels: NDArray, where: str, n_classes: int = 256) -> NDArray[np.uint8]:
    """Labels as uint8 class indices in ``[0, n_classes)``, or a one-line error."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise PoolupError(f"{where}: labels have shape {labels.shape}, expected one label per image")
    if labels.size == 0:
        raise PoolupError(f"{where}: no labels; the data set is empty")
    if not np.issubdtype(labels.dtype, np.integer) and (
        not np.issubdtype(labels.dtype, np.floating)
        or not np.all(np.isfinite(labels))
        or np.any(labels != np.round(labels))
    ):
        raise PoolupError(
            f"{where}: labels are not whole class numbers (dtype {labels.dtype}); store integer labels 0..9"
        )
    if labels.min() < 0 or labels.max() >= n_classes:
        raise PoolupError(
            f"{where}: labels range {labels.min()}..{labels.max()}, outside 0..{n_classes - 1}; fix the labels"
        )
    return labels.astype(np.uint8)
