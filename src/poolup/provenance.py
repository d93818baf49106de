"""What every artifact records about itself and what it was made from: digests, recorded values, their checks.

Every HDF5 and JSON artifact carries ``content_sha256``: for HDF5, a digest of
its datasets (names, dtypes, shapes and bytes) and of every file attribute; for
JSON, of the canonical record. An artifact made from another records that
one's digest (``source_sha256``) and path (``source_file``), the stage that
wrote it (``stage``) and the case, data set and recipe it was made for; the
readers (:mod:`poolup.records`, :mod:`poolup.h5files`) check them here before
returning anything, so a tampered or mismatched input stops the stage that
would use it. HDF5 attributes are recorded in the form :func:`encode_attr`
gives and read back as :func:`decode_attr` gives: digests and comparisons see
the decoded values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError


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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_content_sha256(record: Mapping[str, Any]) -> str:
    """sha256 of a record's canonical JSON, its own ``content_sha256`` key left out."""
    canonical = json.dumps(
        {k: v for k, v in record.items() if k != "content_sha256"},
        sort_keys=True,
        separators=(",", ":"),
        default=json_default,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# Rows hashed per step when digesting an HDF5 dataset, to keep memory bounded.
_HASH_ROWS = 16384


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
                decode_attr(file.attrs[key]), sort_keys=True, separators=(",", ":"), default=json_default
            )
            hasher.update(f"@{key}|{value}|".encode())
    return hasher.hexdigest()


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
        return json.dumps(value, sort_keys=True, default=json_default)
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


def relative_name(source: str | os.PathLike[str], artifact: str | os.PathLike[str]) -> str:
    """The path of ``source`` relative to the folder of ``artifact`` (POSIX form: what a record names)."""
    return Path(os.path.relpath(os.path.abspath(source), os.path.abspath(Path(artifact).parent))).as_posix()


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
