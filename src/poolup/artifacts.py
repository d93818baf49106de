"""Reading and writing the pipeline's HDF5 and JSON artifacts.

Every artifact is written to a temporary name in the same folder and renamed
into place only when complete, so a killed job never leaves a file that looks
finished. Every HDF5 artifact carries ``content_sha256``, a digest of its
datasets (names, dtypes, shapes and bytes), which ``poolup inspect`` checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError

# Images per HDF5 chunk: large enough for good compression, small enough to
# read a few images cheaply. The same for every file so byte counts compare.
CHUNK_IMAGES = 1024
# Rows hashed per step when digesting a dataset, to keep memory bounded.
_HASH_ROWS = 16384
FILTERS: tuple[str, ...] = ("none", "gzip", "lzf")


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


def filter_options(name: str, level: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``h5py.Group.create_dataset`` for a named filter.

    Parameters
    ----------
    name : {"none", "gzip", "lzf"}
        HDF5 filter. ``gzip`` is the portable choice; ``lzf`` is faster and
        readable wherever h5py is.
    level : int, optional
        gzip level 0-9 (ignored by the others).
    """
    if name == "none":
        return {}
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": 4 if level is None else int(level), "shuffle": True}
    if name == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise PoolupError(f"unknown HDF5 filter {name!r}; use one of {', '.join(FILTERS)}")


def image_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk shape for an image stack: ``CHUNK_IMAGES`` whole images."""
    return (max(1, min(CHUNK_IMAGES, shape[0])),) + tuple(shape[1:])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Same folder (so the rename is atomic) and same suffix (Keras checks it).
    tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


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
        {k: v for k, v in record.items() if k != "content_sha256"}, sort_keys=True, separators=(",", ":"), default=_json_default
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> str:
    """Write ``data`` as indented JSON, atomically, with its ``content_sha256``; return that digest."""
    # A round trip first, so the digest is of exactly what a reader will parse.
    record = json.loads(json.dumps(dict(data), default=_json_default))
    record["content_sha256"] = json_content_sha256(record)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record["content_sha256"]


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON artifact, with a one-line error if it is missing or malformed."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PoolupError(f"{path}: file not found; run the workflow stage that makes it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoolupError(f"{path}: not valid JSON ({exc}); delete it and rerun the stage that makes it") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dataset_digest(hasher: Any, name: str, dataset: h5py.Dataset | NDArray) -> None:
    """Feed one dataset's name, dtype, shape and bytes into ``hasher``."""
    hasher.update(f"{name}|{np.dtype(dataset.dtype).str}|{tuple(dataset.shape)}|".encode())
    if len(dataset.shape) == 0:
        hasher.update(np.ascontiguousarray(dataset[()]).tobytes())
        return
    for start in range(0, dataset.shape[0], _HASH_ROWS):
        hasher.update(np.ascontiguousarray(dataset[start : start + _HASH_ROWS]).tobytes())


def content_sha256(file: h5py.File) -> str:
    """Digest of every dataset in ``file`` (sorted by name); attributes excluded."""
    names: list[str] = []
    file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    hasher = hashlib.sha256()
    for name in sorted(names):
        dataset_digest(hasher, name, file[name])
    return hasher.hexdigest()


def write_h5(
    path: str | os.PathLike[str],
    datasets: Mapping[str, NDArray],
    attrs: Mapping[str, Any],
    filter_name: str = "none",
    level: int | None = None,
    image_datasets: tuple[str, ...] = ("images",),
) -> str:
    """Write datasets and attributes to an HDF5 file atomically.

    Parameters
    ----------
    path : path-like
        Final file name.
    datasets : mapping of name to ndarray
        Arrays to store. Those named in ``image_datasets`` are chunked by whole
        images and use the filter; the rest are stored contiguous.
    attrs : mapping
        File attributes; dicts and lists are stored as JSON strings, ``None``
        as an empty string.
    filter_name, level : str, int
        HDF5 filter for the image datasets (see :func:`filter_options`).

    Returns
    -------
    str
        The ``content_sha256`` recorded in the file.
    """
    options = filter_options(filter_name, level)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as file:
            for name, array in datasets.items():
                array = np.asarray(array)
                if name in image_datasets and array.ndim >= 2 and array.shape[0] > 0:
                    file.create_dataset(name, data=array, chunks=image_chunks(array.shape), **options)
                else:
                    file.create_dataset(name, data=array)
            for key, value in attrs.items():
                file.attrs[key] = encode_attr(value)
            digest = content_sha256(file)
            file.attrs["content_sha256"] = digest
    return digest


def encode_attr(value: Any) -> Any:
    """HDF5-friendly form of an attribute value (JSON text for containers)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=_json_default)
    return value


def decode_attr(value: Any) -> Any:
    """Inverse of :func:`encode_attr` for display and reading."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def stored_bytes(path: str | os.PathLike[str], name: str = "images") -> int:
    """Bytes that dataset ``name`` really occupies in the file (after filters)."""
    with h5py.File(path, "r") as file:
        return int(file[name].id.get_storage_size())


def bytes_under_filter(
    source: h5py.Dataset | NDArray, filter_name: str, level: int | None = None, block: int = 16384
) -> int:
    """Bytes ``source`` would occupy as an image dataset under a filter.

    Written block by block to a scratch in-memory HDF5 file with the same
    chunking as the artifacts, so the figure compares with :func:`stored_bytes`.
    """
    with h5py.File(f"poolup-measure-{id(source)}", "w", driver="core", backing_store=False) as file:
        dataset = file.create_dataset(
            "images", shape=source.shape, dtype=source.dtype, chunks=image_chunks(source.shape),
            **filter_options(filter_name, level),
        )
        for start in range(0, source.shape[0], block):
            dataset[start : start + block] = source[start : start + block]
        return int(dataset.id.get_storage_size())


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
) -> str:
    """Stream ``images`` of one artifact through ``transform`` into a new artifact.

    Reads ``block`` images at a time, so memory stays bounded whatever the
    number of images. ``labels`` are copied unchanged. The target is written
    atomically and gets ``content_sha256``.

    Returns
    -------
    str
        The target's ``content_sha256``.
    """
    with open_h5(source_path) as source, atomic_path(target_path) as tmp:
        images, labels = source["images"], source["labels"][()]
        n = images.shape[0]
        with h5py.File(tmp, "w") as target:
            out = target.create_dataset(
                "images", shape=(n,) + tuple(image_shape), dtype=dtype,
                chunks=image_chunks((n,) + tuple(image_shape)), **filter_options(filter_name, level),
            )
            for start in range(0, n, block):
                out[start : start + block] = transform(images[start : start + block])
            target.create_dataset("labels", data=labels)
            for key, value in attrs.items():
                target.attrs[key] = encode_attr(value)
            digest = content_sha256(target)
            target.attrs["content_sha256"] = digest
    return digest


@dataclass(frozen=True)
class ImageSet:
    """Images and labels read from an artifact, with its file attributes."""

    images: NDArray
    labels: NDArray[np.uint8]
    attrs: dict[str, Any]


def open_h5(path: str | os.PathLike[str]) -> h5py.File:
    """Open an HDF5 file for reading, with a one-line error for a bad file."""
    path = Path(path)
    if not path.is_file():
        raise PoolupError(f"{path}: file not found; check the path or rerun the stage that makes it")
    try:
        return h5py.File(path, "r")
    except OSError:
        raise PoolupError(
            f"{path}: not a readable HDF5 file (truncated or another format); delete it and rerun the stage that makes it"
        ) from None


def read_image_set(
    path: str | os.PathLike[str],
    image_shape: tuple[int, ...] | None = None,
    dtype: str | None = None,
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

    Raises
    ------
    PoolupError
        One line naming the file and what is wrong with it.
    """
    with open_h5(path) as file:
        for name in ("images", "labels"):
            if name not in file:
                raise PoolupError(f"{path}: no '{name}' dataset; this is not a poolup image file, rerun the stage that makes it")
        images, labels = file["images"], file["labels"]
        if images.ndim not in (3, 4):
            raise PoolupError(f"{path}: 'images' has shape {images.shape}, expected (n, height, width[, channels])")
        if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
            raise PoolupError(f"{path}: images are {tuple(images.shape[1:])}, expected {tuple(image_shape)}; check the dataset and case settings")
        if dtype is not None and images.dtype != np.dtype(dtype):
            raise PoolupError(f"{path}: 'images' has dtype {images.dtype}, expected {dtype}")
        if labels.shape != (images.shape[0],):
            raise PoolupError(f"{path}: {labels.shape[0] if labels.ndim else 0} labels for {images.shape[0]} images; the file is inconsistent")
        try:
            image_array, label_array = images[()], labels[()]
        except OSError:
            raise PoolupError(f"{path}: the data cannot be read (truncated or corrupt); delete it and rerun the stage that makes it") from None
        attrs = {key: decode_attr(value) for key, value in file.attrs.items()}
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
        raise PoolupError(f"{where}: no labels; the dataset is empty")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise PoolupError(f"{where}: labels are not whole class numbers (dtype {labels.dtype}); store integer labels 0..9")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise PoolupError(f"{where}: labels range {labels.min()}..{labels.max()}, outside 0..{n_classes - 1}; fix the labels")
    return labels.astype(np.uint8)
