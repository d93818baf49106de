"""The preprocessing rules (``rules/preprocess.smk``) as plain functions: fetch, pool, store, upsample.

Each rule's function is named after it and takes the rule's inputs, outputs
and parameters as keyword arguments of the same names; it writes its
artifacts atomically and returns a small record of what it did. The
workflow's scripts call these; so can anyone else, as well as
:func:`fetch_source` (a source without a config entry) and
:func:`pool_and_store` (``stored.h5`` straight from ``raw.h5``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.folders import load_folder
from poolup.h5files import (
    ImageSet,
    check_labels,
    checked_image_arrays,
    open_h5,
    transform_images,
    write_h5,
    write_h5_blocks,
)
from poolup.image_files import files_for
from poolup.interpolation import METHODS, effective_grid, upsample_images
from poolup.pooling import average_pool, pooled_side, round_to_dtype
from poolup.provenance import check_made_for, decode_attr, for_case, library_versions
from poolup.recipe import PAYLOADS, UNFILTERED, Recipe, read_back
from poolup.records import write_json
from poolup.sources import load_source, require_path, subsample
from poolup.splits import SplitCheck, check_split
from poolup.storage import bytes_under_filter, filter_options

PathLike = str | os.PathLike[str]


def fetch_source(
    raw: PathLike,
    source: str,
    path: str | None = None,
    openml_name: str = "mnist_784",
    data_home: str | None = None,
    max_images: int | None = None,
    subset_seed: int = 0,
    filter_name: str = "gzip",
    level: int | None = 4,
    expected_shape: tuple[int, ...] | None = None,
    split: SplitCheck | None = None,
    settings: Mapping[str, Any] | None = None,
    resize: tuple[int, int] | None = None,
    resample: str = "bicubic",
) -> dict[str, Any]:
    """Load the full-size data set and write it as ``raw.h5``.

    Parameters
    ----------
    raw : path-like
        The ``raw.h5`` to write: ``images`` (n, h, w[, c]) uint8 and
        ``labels`` (n,) uint8.
    source, path, openml_name, data_home
        See :func:`poolup.sources.load_source`.
    max_images : int, optional
        Keep a seeded random subset of this many images (quick runs, tests);
        more than the data set holds is an error.
    subset_seed : int
        ``random_state`` of that subset.
    filter_name, level
        HDF5 filter of the images.
    expected_shape : tuple of int, optional
        Required shape of one image (the config's ``datasets[].image_shape``).
    split : SplitCheck, optional
        The training split to check on the labels before anything is written
        (:func:`poolup.splits.check_split`): a split that cannot be made stops here.
    settings : mapping, optional
        The config entry's settings that made this file, recorded as
        ``fetch_settings`` (the workflow compares them with the config).
    resize, resample
        Source ``folder`` only: the (height, width) to bring every image to,
        and Pillow's filter for it (:func:`poolup.folders.load_folder`).

    Returns
    -------
    dict
        Number of images, image shape, classes and the content checksum.
    """
    class_names: tuple[str, ...] = ()
    if source == "folder":
        images, labels, detail, class_names = load_folder(require_path(source, path), expected_shape, resize, resample)
    else:
        images, labels, detail = load_source(source, path, openml_name, data_home)
    if expected_shape is not None and tuple(images.shape[1:]) != tuple(expected_shape):
        raise PoolupError(
            f"{detail}: images are {list(images.shape[1:])} but datasets[].image_shape is {list(expected_shape)}; "
            "set datasets[].image_shape to match"
        )
    images, labels = subsample(images, labels, max_images, subset_seed, detail)
    if split is not None:
        check_split(labels, split, max_images)
    classes, counts = np.unique(labels, return_counts=True)
    attrs = {
        "stage": "fetch",
        "source": source,
        "source_detail": detail,
        "n_images": images.shape[0],
        "image_shape": list(images.shape[1:]),
        "classes": classes.tolist(),
        "class_counts": counts.tolist(),
        "n_classes": int(labels.max()) + 1,
        # The class folders' names, class 0 first (source folder; the other sources' classes are their numbers).
        **({"class_names": list(class_names)} if class_names else {}),
        # HDF5 holds no null: a subset's size is recorded only when there is one (all images otherwise).
        **({} if max_images is None else {"max_images": max_images, "subset_seed": subset_seed}),
        "filter": filter_name,
        "filter_level": level,
        "versions": library_versions(),
    }
    if settings is not None:
        attrs["fetch_settings"] = dict(settings)
    digest = write_h5(raw, {"images": images, "labels": labels}, attrs, filter_name, level)
    return {
        "n_images": images.shape[0],
        "image_shape": images.shape[1:],
        "classes": classes.tolist(),
        "content_sha256": digest,
    }


def _raw_info(raw: PathLike) -> tuple[tuple[int, ...], int, str]:
    """Image shape, count and checksum of a ``raw.h5`` (its digest and layout checked)."""
    with open_h5(raw) as file:
        images, _ = checked_image_arrays(file, raw, dtype="uint8")
        return tuple(images.shape[1:]), int(images.shape[0]), str(decode_attr(file.attrs["content_sha256"]))


# pooled.h5 holds the pooled pixels in one fixed encoding, whatever the storage
# settings: a new storage filter or level then rewrites only stored.h5, and
# nothing that reads the pixels (up-sampling, training, codecs) reruns.
POOLED_FILTER, POOLED_LEVEL = "gzip", 4


def pool(
    raw: PathLike,
    pooled: PathLike,
    case: str,
    window: int,
    stride: int,
    dtype: str = "uint8",
    encoding: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply a case's storage recipe to every raw image: ``pooled.h5`` holds what the case stores.

    Parameters
    ----------
    raw : path-like
        ``raw.h5`` from :func:`fetch`.
    pooled : path-like
        ``pooled.h5``: the recipe's payload (pooled ``images`` in ``dtype``, or
        packed ``codes``, or image files as ``encoded`` + ``offsets``; see
        :mod:`poolup.recipe`) and ``labels``, in the fixed encoding
        ``POOLED_FILTER``/``POOLED_LEVEL``.
    case : str
        Case name, recorded for provenance.
    window, stride : int
        Pooling window and stride; window 1, stride 1 is the identity.
    dtype : {"uint8", "float32"}
        ``uint8`` rounds the averages as an image file would; ``float32``
        keeps them exact.
    encoding : mapping, optional
        The recipe's steps after pooling: ``bits``, ``codec``, ``quality``,
        ``tile`` (:meth:`poolup.recipe.Recipe.encoding`); None = none.

    Returns
    -------
    dict
        The pooled shape and the content checksum.
    """
    recipe = Recipe.from_case({"window": window, "stride": stride, **_given(encoding)})
    attrs = _pooled_attrs(raw, case, recipe, dtype, POOLED_FILTER, POOLED_LEVEL, stage="pool")
    digest = _write_pooled(raw, pooled, attrs, POOLED_FILTER, POOLED_LEVEL)
    return {"stored_shape": attrs["stored_shape"], "content_sha256": digest}


def store(
    pooled: PathLike,
    raw: PathLike,
    stored: PathLike,
    storage: PathLike,
    encoding: Mapping[str, Any],
    case: str | None = None,
) -> dict[str, Any]:
    """Write the pooled images as they would sit on disk and measure their bytes.

    Parameters
    ----------
    pooled : path-like
        ``pooled.h5`` from :func:`pool`.
    raw : path-like
        ``raw.h5`` the pooled images were made from; its images are measured
        under the same filter, so the byte ratio compares like with like.
    stored : path-like
        ``stored.h5``: the same images, labels and settings as ``pooled``
        under ``filter_name``/``level``; its ``source_sha256`` is pooled's.
    storage : path-like
        ``storage.json``: the per-case storage record for aggregation.
    encoding : mapping
        How ``stored.h5`` holds the images: ``filter`` (``none``, ``gzip`` or
        ``lzf``) and ``level`` (gzip's level; None for the others).
    case : str, optional
        The case the job stores: ``pooled`` must have been made for it.

    Returns
    -------
    dict
        The storage record also written to ``storage``.
    """
    filter_name, level = encoding["filter"], encoding["level"]
    filter_options(filter_name, level)  # reject an unknown filter before any work
    with open_h5(pooled, stage="pool") as file:
        attrs = {key: decode_attr(value) for key, value in file.attrs.items() if key != "content_sha256"}
        check_made_for(pooled, attrs, for_case(case))
        payload = PAYLOADS[Recipe.from_attrs(attrs).layout]
        missing = [name for name in payload if name not in file]
        if missing:
            raise PoolupError(f"{pooled}: HDF5 datasets {missing} missing for its recipe; rerun the pool stage")
        shape, dtype = tuple(file[payload[0]].shape[1:]), str(file[payload[0]].dtype)
        pooled_sha = str(decode_attr(file.attrs["content_sha256"]))
    _, _, raw_sha = _raw_info(raw)
    if attrs.get("source_sha256") != raw_sha:
        raise PoolupError(f"{pooled}: made from a different raw.h5 than {raw}; rerun the pool stage")
    attrs.update(
        {
            "stage": "store",
            "filter": filter_name,
            "filter_level": level,
            "source_sha256": pooled_sha,
            "versions": library_versions(),
        }
    )
    # Codes and files arrive in blocks of unknown total size; pixel arrays keep the writer they always had
    # (the same chunks, so the same bytes, as before recipes existed).
    if payload != ("images",):
        return _write_stored(
            raw,
            stored,
            storage,
            attrs,
            lambda target, annotate: write_h5_blocks(
                target,
                _copied_blocks(pooled, payload),
                _labels(pooled),
                attrs,
                filter_name,
                level,
                unfiltered=UNFILTERED,
                annotate=annotate,
                source=pooled,
            ),
        )
    return _write_stored(
        raw,
        stored,
        storage,
        attrs,
        lambda tmp, annotate: transform_images(
            pooled,
            tmp,
            _unchanged,
            shape,
            dtype,
            attrs,
            filter_name,
            level,
            source_stage="pool",
            annotate=annotate,
        ),
    )


def pool_and_store(
    raw: PathLike,
    stored: PathLike,
    storage: PathLike,
    case: str,
    window: int,
    stride: int,
    dtype: str = "uint8",
    filter_name: str = "gzip",
    level: int | None = 4,
    encoding: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`pool` and :func:`store` in one step, without a ``pooled.h5`` between.

    For scripts and tests that want the stored file directly (its
    ``source_sha256`` is raw's); the workflow runs the two stages as separate
    rules (see ``POOLED_FILTER``). Parameters as those two functions.
    """
    filter_options(filter_name, level)
    recipe = Recipe.from_case({"window": window, "stride": stride, **_given(encoding)})
    attrs = _pooled_attrs(raw, case, recipe, dtype, filter_name, level, stage="store")
    return _write_stored(
        raw,
        stored,
        storage,
        attrs,
        lambda tmp, annotate: _write_pooled(
            raw,
            tmp,
            attrs,
            filter_name,
            level,
            annotate=annotate,
        ),
    )


def _given(encoding: Mapping[str, Any] | None) -> dict[str, Any]:
    """The encoding keys that are set (None = the step's default)."""
    return {key: value for key, value in (encoding or {}).items() if value is not None}


def _pooled_attrs(
    raw: PathLike, case: str, recipe: Recipe, dtype: str, filter_name: str, level: int | None, stage: str
) -> dict[str, Any]:
    """The attributes of a pooled artifact (checks ``raw`` and the window on the way)."""
    shape, _, raw_sha = _raw_info(raw)
    height, width = shape[0], shape[1]
    window, stride = recipe.window, recipe.stride
    if recipe.layout != "images" and dtype != "uint8":
        raise PoolupError(f"case {case}: bits and codec need storage.dtype uint8, not {dtype}")
    stored_shape = (pooled_side(height, window, stride), pooled_side(width, window, stride)) + shape[2:]
    return {
        "stage": stage,
        "case": case,
        "window": window,
        "stride": stride,
        "dtype": dtype,
        "filter": filter_name,
        "filter_level": level,
        "stored_shape": list(stored_shape),
        "original_shape": list(shape),
        "pixel_ratio": float(np.prod(stored_shape) / np.prod(shape)),
        "source_sha256": raw_sha,
        "versions": library_versions(),
        **recipe.recorded(),
    }


def _write_pooled(
    raw: PathLike,
    output: PathLike,
    attrs: dict[str, Any],
    filter_name: str,
    level: int | None,
    annotate: Any = None,
) -> str:
    """Apply the recipe ``attrs`` record to ``raw`` into ``output``; the one place the recipe is applied."""
    pool_block = partial(_pool_block, window=attrs["window"], stride=attrs["stride"], dtype=attrs["dtype"])
    recipe = Recipe.from_attrs(attrs)
    if recipe.layout != "images":
        return write_h5_blocks(
            output,
            _encoded_blocks(raw, recipe, pool_block),
            _labels(raw),
            attrs,
            filter_name,
            level,
            unfiltered=UNFILTERED,
            annotate=annotate,
            source=raw,
        )
    return transform_images(
        raw,
        output,
        pool_block,
        tuple(attrs["stored_shape"]),
        attrs["dtype"],
        attrs,
        filter_name,
        level,
        source_stage="fetch",
        annotate=annotate,
    )


def _write_stored(
    raw: PathLike, stored: PathLike, storage: PathLike, attrs: dict[str, Any], write: Any
) -> dict[str, Any]:
    """Write ``stored.h5`` with ``write(path, annotate)``, recording its bytes on disk, then ``storage.json``.

    The raw images are measured under the same filter and chunking, so the
    ratio compares like with like; both byte counts go into the file (before
    its digest) and into the record.
    """
    with open_h5(raw, stage="fetch") as file:
        raw_bytes = bytes_under_filter(file["images"], attrs["filter"], attrs["filter_level"])
        n, shape = int(file["images"].shape[0]), tuple(file["images"].shape[1:])
        raw_sha = str(decode_attr(file.attrs["content_sha256"]))
    measured: dict[str, int] = {}

    recipe = Recipe.from_attrs(attrs)

    def annotate(target: h5py.File) -> dict[str, int]:
        measured["stored_bytes"] = sum(int(target[name].id.get_storage_size()) for name in PAYLOADS[recipe.layout])
        if recipe.layout == "files":
            measured["file_bytes"] = int(target["encoded"].shape[0])
        return {"stored_bytes": measured["stored_bytes"], "raw_bytes_same_filter": raw_bytes}

    digest = write(stored, annotate)
    image_bytes, stored_shape = measured["stored_bytes"], attrs["stored_shape"]
    record = {
        **{key: attrs[key] for key in ("case", "window", "stride", "dtype", "filter", "filter_level")},
        "n_images": n,
        "original_shape": list(shape),
        "stored_shape": list(stored_shape),
        "stored_pixels": int(np.prod(stored_shape)),
        "original_pixels": int(np.prod(shape)),
        "pixel_ratio": attrs["pixel_ratio"],
        "stored_bytes": image_bytes,
        "raw_bytes_same_filter": raw_bytes,
        "byte_ratio": image_bytes / raw_bytes if raw_bytes else float("nan"),
        "bytes_per_image": image_bytes / n,
        "stored_sha256": digest,
        "source_sha256": raw_sha,
        **recipe.recorded(),
    }
    if recipe.layout == "files":
        # The same files kept one per path instead of in stored.h5 (their sizes as Pillow wrote them).
        record.update(
            {
                "files": files_for(n, recipe.tile),
                "file_bytes": measured["file_bytes"],
                "file_bytes_per_image": measured["file_bytes"] / n,
                "file_byte_ratio": measured["file_bytes"] / raw_bytes if raw_bytes else float("nan"),
            }
        )
    write_json(storage, record)
    return record


def _labels(path: PathLike) -> NDArray:
    with open_h5(path) as file:
        return file["labels"][()]


def _copied_blocks(source: PathLike, names: tuple[str, ...], block: int = 1 << 20):
    """The arrays ``names`` of an artifact, a block of rows at a time (for :func:`write_h5_blocks`)."""
    with open_h5(source) as file:
        for name in names:
            array = file[name]
            for start in range(0, array.shape[0], block):
                yield {name: array[start : start + block]}


def _encoded_blocks(raw: PathLike, recipe: Recipe, pool_block: Any, block: int = 16384):
    """The recipe's payload of ``raw``'s images, block by block; file sizes turned into ``offsets``."""
    total = 0
    with open_h5(raw, stage="fetch") as file:
        images = file["images"]
        step = recipe.block_size(block)
        if recipe.layout == "files":
            yield {"offsets": np.zeros(1, dtype=np.int64)}
        for start in range(0, images.shape[0], step):
            part = recipe.encode(pool_block(images[start : start + step]))
            if "sizes" in part:
                sizes = part.pop("sizes")
                part["offsets"] = total + np.cumsum(sizes)
                total = int(part["offsets"][-1])
            yield part


def _unchanged(block: NDArray) -> NDArray:
    return block


def _pool_block(block: NDArray, window: int, stride: int, dtype: str) -> NDArray:
    return round_to_dtype(average_pool(block, window, stride), dtype)


# Images read, interpolated and written per block (bounded memory); the in-memory way back
# (reconstruct) uses the same blocks, so its arrays equal upsampled.h5's bit for bit.
UPSAMPLE_BLOCK = 16384


@dataclass(frozen=True)
class WayBack:
    """How a case's stored images come back to full size: the recipe's read-back, then interpolation."""

    interpolate: Callable[[NDArray], NDArray[np.float32]]
    image_shape: tuple[int, ...]
    attrs: dict[str, Any]  # what an up-sampled artifact records (upsample's attributes)
    labels: NDArray


def way_back(
    file: h5py.File,
    path: PathLike,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
    made_for: Mapping[str, Any] | None = None,
) -> WayBack:
    """The way back of an open ``pooled.h5`` (or ``stored.h5``), checked: made for ``case`` and what
    ``made_for`` expects besides (:func:`poolup.provenance.check_made_for`), a payload the recipe can read,
    the pool stage's attributes. One place for :func:`upsample` and :func:`reconstruct`."""
    if method not in METHODS:
        raise PoolupError(f"interpolation method {method!r} is unknown; use one of {', '.join(METHODS)}")
    attrs = dict(file.attrs)
    check_made_for(path, attrs, {**for_case(case), **(made_for or {})})
    recipe = Recipe.from_attrs({k: decode_attr(v) for k, v in attrs.items()})
    payload = PAYLOADS[recipe.layout]
    if any(name not in file for name in payload + ("labels",)):
        raise PoolupError(f"{path}: no {'/'.join(payload)}/labels HDF5 datasets; rerun the pool stage")
    missing = [key for key in ("window", "stride", "original_shape") if key not in attrs]
    if missing:
        raise PoolupError(f"{path}: attributes {missing} missing; it was not written by the pool stage, rerun it")
    window, stride = int(attrs["window"]), int(attrs["stride"])
    original = tuple(int(v) for v in decode_attr(attrs["original_shape"]))
    interpolate = partial(
        upsample_images, output_shape=original[:2], window=window, stride=stride, grid=grid, method=method
    )
    out_attrs = {
        "stage": "upsample",
        "case": str(decode_attr(attrs.get("case", ""))),
        "method": method,
        "grid": effective_grid(method, grid),
        "window": window,
        "stride": stride,
        # The recipe's later steps too (only those off their default), so that a reader can check them.
        **recipe.recorded(),
        "source_sha256": str(attrs.get("content_sha256", "")),
        "versions": library_versions(),
    }
    return WayBack(interpolate, original, out_attrs, file["labels"][()])


def upsample(
    pooled: PathLike,
    upsampled: PathLike,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
) -> dict[str, Any]:
    """Interpolate the stored images back to full size and write them as ``upsampled.h5``.

    Training, fidelity and the figures compute the same arrays in memory
    (:func:`reconstruct`), so the workflow writes this file only when it is
    asked for (``snakemake results/<data set>/<case>/upsampled.h5``): a
    float32 copy of every image takes 18 times the space of ``pooled.h5``.

    Parameters
    ----------
    pooled : path-like
        ``pooled.h5`` from :func:`pool` (or ``stored.h5``, which holds the
        same images and attributes).
    upsampled : path-like
        ``upsampled.h5``: float32 ``images`` at the original shape, ``labels``.
    method : {"nearest", "area", "linear", "cubic", "lanczos"}
        Interpolation; linear as in the paper.
    grid : {"corners", "centers"}
        See :func:`poolup.interpolation.grid_coordinates`; ``area`` and
        ``lanczos`` use Pillow's grid instead (recorded as ``"pillow"``).
    case : str, optional
        The case the job up-samples: ``pooled`` must have been made for it.

    Returns
    -------
    dict
        The output's shape and checksum.
    """
    with open_h5(pooled) as file:
        back = way_back(file, pooled, method, grid, case)
    # No compression filter: float32 interpolants barely compress, and it is slow.
    # The images are read back through the recipe (decoded, de-quantised) first.
    digest = transform_images(
        pooled,
        upsampled,
        back.interpolate,
        back.image_shape,
        "float32",
        back.attrs,
        block=UPSAMPLE_BLOCK,
        read=read_back,
    )
    return {"image_shape": back.image_shape, "content_sha256": digest}


def reconstructed_blocks(
    pooled: PathLike,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
    made_for: Mapping[str, Any] | None = None,
    stage: str | None = None,
) -> Iterator[tuple[WayBack, int, NDArray[np.float32]]]:
    """The up-sampled images of ``pooled`` block by block, in memory: ``(way back, start, images)``.

    The same blocks and arithmetic as :func:`upsample`, so each block equals
    the matching rows of ``upsampled.h5``. ``pooled``'s digest (and ``stage``,
    when given) is checked first, then ``case`` and ``made_for`` (:func:`way_back`).
    """
    with open_h5(pooled, stage=stage) as file:
        back = way_back(file, pooled, method, grid, case, made_for)
        n = back.labels.shape[0]
        for start in range(0, n, UPSAMPLE_BLOCK):
            yield back, start, back.interpolate(read_back(file, start, min(start + UPSAMPLE_BLOCK, n)))


def reconstruct(
    pooled: PathLike,
    method: str = "linear",
    grid: str = "corners",
    case: str | None = None,
    made_for: Mapping[str, Any] | None = None,
    stage: str | None = None,
) -> ImageSet:
    """Every image of ``pooled`` up-sampled in memory: what :func:`upsample` would write, without the file.

    Returns the images (float32, full size), the labels (checked) and the
    attributes ``upsampled.h5`` would record, ``source_sha256`` naming ``pooled``.
    ``case``, ``made_for`` and ``stage`` as in :func:`reconstructed_blocks`.
    """
    images: NDArray[np.float32] | None = None
    back: WayBack | None = None
    for back, start, block in reconstructed_blocks(pooled, method, grid, case, made_for, stage):
        if images is None:
            images = np.empty((back.labels.shape[0], *block.shape[1:]), dtype=np.float32)
        images[start : start + block.shape[0]] = block
    if back is None or images is None:
        raise PoolupError(f"{pooled}: holds no images; rerun the pool stage")
    return ImageSet(images, check_labels(back.labels, str(pooled)), back.attrs)


# raw.h5 is the reference copy of the data: always gzip level 4, whatever the
# storage settings of the cases (their byte counts re-measure raw under theirs).
RAW_FILTER, RAW_LEVEL = "gzip", 4


# The keys of a datasets[] entry that each source reads; the others are ignored
# by that source (and left out of the fetch rule's params, so they rerun nothing).
_SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "openml": ("openml_name", "data_home"),
    "idx": ("path",),
    "npz": ("path",),
    "bundled": (),
    "folder": ("path", "resize", "resample"),
}
# The keys of every entry that fetch reads, whatever the source (this order is the fetch
# rule's params: another order would rerun fetch).
_FETCH_KEYS = ("source", "image_shape", "max_images", "subset_seed")


def fetch_settings(dataset: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``datasets`` entry that :func:`fetch` reads for its source."""
    keys = _FETCH_KEYS + _SOURCE_KEYS.get(dataset.get("source", ""), ())
    return {key: dataset[key] for key in keys if key in dataset}


def fetch(*, raw: PathLike, dataset: dict[str, Any], split: SplitCheck | None = None) -> dict[str, Any]:
    """The fetch rule: :func:`fetch_source` driven by one entry of the config's ``datasets`` list.

    Only the keys its source reads are passed (:func:`fetch_settings`); a key
    the entry leaves out takes :func:`fetch_source`'s default, which equals
    the schema's (``tests/test_schema_facts.py``). The images must have the
    entry's ``image_shape`` when it gives one (the validated config always
    does), and the labels must allow the training's ``split`` when one is
    given; a mismatch leaves no file. ``raw.h5`` records the settings, so the
    workflow can check the split against the config before any later job.
    """
    settings = fetch_settings(dataset)
    recorded = dict(settings)
    shape = settings.pop("image_shape", None)
    return fetch_source(
        raw,
        **settings,
        filter_name=RAW_FILTER,
        level=RAW_LEVEL,
        expected_shape=tuple(shape) if shape else None,
        split=split,
        settings=recorded,
    )
