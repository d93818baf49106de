"""How images sit on disk: the HDF5 filters, the chunking, and the bytes an encoding takes.

Every artifact's HDF5 image dataset is chunked the same way (``CHUNK_IMAGES`` whole
images per chunk), so byte counts of different files compare like with like.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
from numpy.typing import NDArray

from poolup.errors import PoolupError

# Images per HDF5 chunk: large enough for good compression, small enough to
# read a few images cheaply. The same for every file so byte counts compare.
CHUNK_IMAGES = 1024
FILTERS: tuple[str, ...] = ("none", "gzip", "lzf")


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


# Elements per chunk of a one-dimensional array (the bytes of encoded image files, their offsets):
# small, since an unfiltered last chunk is stored whole (at most 16 KiB over the files themselves).
CHUNK_ELEMENTS = 16384


def array_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk shape of any stored array: whole images for image stacks and packed codes (2-D and up),
    ``CHUNK_ELEMENTS`` for flat arrays."""
    if len(shape) >= 2:
        return image_chunks(shape)
    return (max(1, min(CHUNK_ELEMENTS, shape[0])),)


def stored_bytes(path: str | os.PathLike[str], name: str = "images") -> int:
    """Bytes that the HDF5 dataset ``name`` of a file really occupies (after its filters)."""
    with h5py.File(path, "r") as file:
        return int(file[name].id.get_storage_size())


def bytes_under_filter(
    source: h5py.Dataset | NDArray, filter_name: str, level: int | None = None, block: int = 16384
) -> int:
    """Bytes ``source`` would occupy as an HDF5 image dataset under a filter.

    Written block by block to a scratch in-memory HDF5 file with the same
    chunking as the artifacts, so the figure compares with :func:`stored_bytes`.
    """
    with h5py.File(f"poolup-measure-{id(source)}", "w", driver="core", backing_store=False) as file:
        array = file.create_dataset(
            "images",
            shape=source.shape,
            dtype=source.dtype,
            chunks=image_chunks(source.shape),
            **filter_options(filter_name, level),
        )
        for start in range(0, source.shape[0], block):
            array[start : start + block] = source[start : start + block]
        return int(array.id.get_storage_size())
