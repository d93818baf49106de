"""HDF5 artifacts: writing them (atomically, whole or block by block, byte-identical on a rerun) and
reading them back checked (digest, stage, upstream, layout, labels).

Every HDF5 artifact records its ``content_sha256``
(:func:`poolup.provenance.content_sha256`), which :func:`open_h5` checks before
returning the file, and holds its data itself (no soft or external link).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.provenance import check_provenance, content_sha256, decode_attr, encode_attr, relative_name
from poolup.records import atomic_path
from poolup.storage import CHUNK_IMAGES, array_chunks, filter_options, image_chunks

# HDF5 1.10 file format: superblock v3 and v2 object headers carry checksums of
# the file's metadata, so a flipped byte there is an error, not a wrong read.
LIBVER = ("v110", "latest")


# What a corrupt HDF5 file can raise from h5py, beyond OSError.
H5_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError)


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
    completes; the temporary file itself is then deleted by :func:`poolup.records.atomic_path`.
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
        File attributes (see :func:`poolup.provenance.encode_attr`): numbers and lists of
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
