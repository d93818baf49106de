"""What stored images really cost on disk under the codecs people use (``rules/codecs.smk``).

HDF5 filters (gzip, lzf, and zstd and blosc-zstd from ``hdf5plugin``) are
measured on every image; per-image PNG and lossless WebP (Pillow) on a seeded
sample, since encoding files one image at a time is slow. Each codec is
measured on the stored images and on the raw images alike, so the ratio
compares like with like, and every round trip is checked to be lossless.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.h5files import open_h5
from poolup.provenance import check_made_for, decode_attr, for_case
from poolup.recipe import Recipe
from poolup.records import read_case_records, write_csv, write_json
from poolup.storage import image_chunks

CODECS: tuple[str, ...] = ("hdf5-gzip", "hdf5-lzf", "hdf5-zstd", "hdf5-blosc-zstd", "png", "webp")


def _hdf5_options(codec: str) -> dict[str, Any]:
    import hdf5plugin

    return {
        # Common default levels: what a user gets without tuning.
        "hdf5-gzip": {"compression": "gzip", "compression_opts": 6, "shuffle": True},
        "hdf5-lzf": {"compression": "lzf", "shuffle": True},
        "hdf5-zstd": dict(hdf5plugin.Zstd(clevel=9)),
        "hdf5-blosc-zstd": dict(hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
    }[codec]


def _hdf5_round_trip(images: NDArray, codec: str) -> tuple[int, float, float]:
    with h5py.File(f"poolup-codec-{id(images)}", "w", driver="core", backing_store=False) as file:
        start = time.perf_counter()
        array = file.create_dataset("images", data=images, chunks=image_chunks(images.shape), **_hdf5_options(codec))
        file.flush()
        encode = time.perf_counter() - start
        start = time.perf_counter()
        decoded = array[()]
        decode = time.perf_counter() - start
        size = int(array.id.get_storage_size())
    if not np.array_equal(decoded, images):
        raise PoolupError(f"{codec} did not round-trip losslessly")
    return size, encode, decode


def _pillow_round_trip(images: NDArray, codec: str) -> tuple[int, float, float]:
    from PIL import Image, features

    if codec == "webp" and not features.check("webp"):  # a Pillow built from source without libwebp
        raise PoolupError(
            "this Pillow has no WebP support (built without libwebp); install a Pillow wheel or leave webp out of "
            "codecs.names"
        )

    options = {
        "png": {"format": "PNG", "optimize": True},
        "webp": {"format": "WEBP", "lossless": True, "quality": 100},
    }[codec]
    blobs, start = [], time.perf_counter()
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buffer, **options)
        blobs.append(buffer.getvalue())
    encode = time.perf_counter() - start
    start = time.perf_counter()
    decoded = [np.asarray(Image.open(io.BytesIO(blob))) for blob in blobs]
    decode = time.perf_counter() - start
    if codec == "webp":  # WebP decodes to RGB; lossless grey stays equal in every channel
        decoded = [d[..., 0] if d.ndim == 3 and images.ndim == 3 else d for d in decoded]
    if not all(np.array_equal(d, i) for d, i in zip(decoded, images)):
        raise PoolupError(f"{codec} did not round-trip losslessly")
    return sum(map(len, blobs)), encode, decode


def measure_codec(images: NDArray, codec: str) -> tuple[int, float, float]:
    """Bytes, encode seconds and decode seconds of ``images`` under ``codec`` (lossless, checked)."""
    if codec not in CODECS:
        raise PoolupError(f"unknown codec {codec!r}; use one of {', '.join(CODECS)}")
    round_trip: Callable[[NDArray, str], tuple[int, float, float]] = (
        _hdf5_round_trip if codec.startswith("hdf5-") else _pillow_round_trip
    )
    return round_trip(images, codec)


def measure_case(
    raw: str | os.PathLike[str],
    pooled: str | os.PathLike[str],
    storage_codecs: str | os.PathLike[str],
    names: Sequence[str] = CODECS,
    sample: int = 2000,
    random_state: int = 0,
    case: str | None = None,
) -> list[dict[str, Any]]:
    """Measure one case's stored images and the raw images under each codec; write JSON (the ``codecs`` rule).

    Parameters
    ----------
    raw, pooled : path-like
        ``raw.h5`` and the case's ``pooled.h5`` (the pixels it stores; ``stored.h5`` holds the same images).
    storage_codecs : path-like
        ``storage_codecs.json``.
    names : sequence of str
        Which codecs (see ``CODECS``).
    sample : int
        Images (a seeded random sample, the same for raw and stored) for the
        per-image file codecs PNG and WebP.
    random_state : int
        Seed of that sample.
    case : str, optional
        The case the job measures: ``pooled`` must have been made for it.
    """
    with open_h5(raw, stage="fetch") as r, open_h5(pooled, stage=("pool", "store")) as s:
        check_made_for(pooled, dict(s.attrs), for_case(case))
        layout = Recipe.from_attrs({key: decode_attr(value) for key, value in s.attrs.items()}).layout
        case = str(s.attrs.get("case", ""))
        source = str(s.attrs.get("content_sha256", ""))
        if layout != "images":
            # Quantised codes and image files are the recipe's own encoding; storage.json has their bytes.
            skipped = f"the case stores {'packed codes' if layout == 'codes' else 'image files'}, not pixels"
            records = [{"codec": codec, "skipped": skipped} for codec in names]
            write_json(storage_codecs, {"case": case, "source_sha256": source, "codecs": records})
            return records
        raw_images, stored_images = r["images"][()], s["images"][()]
    n = stored_images.shape[0]
    chosen = np.sort(np.random.default_rng(random_state).choice(n, size=min(sample, n), replace=False))
    records = []
    for codec in names:
        per_image = not codec.startswith("hdf5-")
        if per_image and stored_images.dtype != np.uint8:
            records.append({"codec": codec, "skipped": "PNG and WebP hold 8-bit images; this case stores float32"})
            continue
        subset = (lambda a: a[chosen]) if per_image else (lambda a: a)
        stored_bytes, encode, decode = measure_codec(subset(stored_images), codec)
        raw_bytes, _, _ = measure_codec(subset(raw_images), codec)
        count = len(chosen) if per_image else n
        records.append(
            {
                "codec": codec,
                "images_measured": count,
                "bytes_per_image": stored_bytes / count,
                "raw_bytes_per_image": raw_bytes / count,
                "ratio_to_raw": stored_bytes / raw_bytes,
                "encode_us_per_image": 1e6 * encode / count,
                "decode_us_per_image": 1e6 * decode / count,
            }
        )
    write_json(storage_codecs, {"case": case, "source_sha256": source, "codecs": records})
    return records


def codec_table(
    storage_codecs: Sequence[str | os.PathLike[str]],
    table: str | os.PathLike[str],
    in_case_folders: bool = False,
) -> None:
    """One row per case and codec from the cases' ``storage_codecs.json``, as CSV (the ``codec_table`` rule);
    ``in_case_folders``: each file must have been made for the case whose folder holds it."""
    import pandas as pd

    records = read_case_records(storage_codecs, in_case_folders)
    rows = [{"case": record["case"], **entry} for record in records for entry in record["codecs"]]
    frame = pd.DataFrame(rows)
    # One column order whatever the first case measured (a skipped case has only `skipped`).
    measured = sorted(set(frame.columns) - {"case", "skipped"})
    write_csv(table, frame[["case", *measured, *(["skipped"] if "skipped" in frame else [])]])
