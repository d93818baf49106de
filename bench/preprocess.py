"""Benchmark the store and upsample stages.

1. Speed, on the 70,000 real MNIST digits (../shared/data/mnist) for every paper
   case: our vectorised pool + upsample against a per-image loop (numpy pooling
   and one scipy RectBivariateSpline per image, as the authors' code did), as a
   ratio measured in the same run.
2. Every interpolation method (3x3/2 case): our matrices against its per-image
   reference (scipy's RegularGridInterpolator / RectBivariateSpline, Pillow's
   Image.resize in mode F), as a ratio measured in the same run.
3. Memory: peak RSS of the real ``store`` and ``upsample`` stages, each in its
   own process, on a synthetic raw.h5 of 1,000,000 images (real digits tiled).

4. Recipes: each transform's encode (forward) and decode (the way back)
   images/s on the 70,000 digits, one thread, with the bytes per image it
   stores; and the two ways to keep image files in HDF5 (one flat byte array +
   offsets, as stored.h5 does, against HDF5 variable-length data): bytes on disk.
5. Memory: peak RSS of the real ``pool`` stage for a quantising and a per-image
   codec recipe at ``--big`` images.

Goals: >= 20x the per-image loop; one case's pool + upsample of 70,000 images
under 1 s on 2 cores; peak RSS under 1 GB at 1,000,000 images.

Usage: python bench/preprocess.py [--mnist DIR] [--loop-images N] [--big N] [--workdir DIR] [--only SECTION]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from scipy.interpolate import RectBivariateSpline, RegularGridInterpolator

from poolup.interpolation import METHODS, PILLOW_FILTERS, grid_coordinates, upsample_images
from poolup.pooling import average_pool, round_to_dtype
from poolup.provenance import content_sha256
from poolup.sources import load_idx
from poolup.storage import CHUNK_IMAGES, filter_options

CASES = {"w2s1": (2, 1), "w2s2": (2, 2), "w3s1": (3, 1), "w3s2": (3, 2)}
DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def per_image_loop(images: np.ndarray, window: int, stride: int) -> np.ndarray:
    """The reference: pool one image at a time, one RectBivariateSpline per image."""
    out = np.empty((images.shape[0], 28, 28), np.float32)
    for i, image in enumerate(images):
        pooled = round_to_dtype(average_pool(image[None], window, stride), "uint8")[0].astype(np.float64)
        source, target = grid_coordinates("corners", 28, pooled.shape[0], window, stride)
        out[i] = RectBivariateSpline(source, source, pooled, kx=1, ky=1)(target, target)
    return out


def best_of(func, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def speed(images: np.ndarray, loop_images: int) -> None:
    print(
        f"== speed: {images.shape[0]:,} real images (best of 5); per-image loop timed on {loop_images:,}"
        " and scaled to all"
    )
    print(f"{'case':6} {'pool s':>7} {'upsample s':>11} {'total s':>8} {'loop s':>7} {'ratio':>6} {'max |diff|':>11}")
    for case, (window, stride) in CASES.items():
        pool_time, stored = best_of(
            lambda window=window, stride=stride: round_to_dtype(average_pool(images, window, stride), "uint8"), 5
        )
        up_time, result = best_of(
            lambda stored=stored, window=window, stride=stride: upsample_images(stored, (28, 28), window, stride), 5
        )
        loop_time, reference = best_of(
            lambda window=window, stride=stride: per_image_loop(images[:loop_images], window, stride), 1
        )
        loop_full = loop_time * images.shape[0] / loop_images
        total = pool_time + up_time
        diff = float(np.abs(result[:loop_images] - reference).max())
        print(
            f"{case:6} {pool_time:7.3f} {up_time:11.3f} {total:8.3f} {loop_full:7.2f} {loop_full / total:5.0f}x "
            f"{diff:11.2e}"
        )


def per_image_method(stored: np.ndarray, window: int, stride: int, method: str) -> np.ndarray:
    """Each method's own library, one image at a time."""
    out = np.empty((stored.shape[0], 28, 28), np.float32)
    source, target = grid_coordinates("corners", 28, stored.shape[1], window, stride)
    rows, cols = np.meshgrid(target, target, indexing="ij")
    for i, image in enumerate(stored.astype(np.float32)):
        if method in PILLOW_FILTERS:
            resample = getattr(Image.Resampling, PILLOW_FILTERS[method])
            out[i] = np.asarray(Image.fromarray(image).resize((28, 28), resample))
        elif method == "nearest":
            out[i] = RegularGridInterpolator((source, source), image, method="nearest")((rows, cols))
        else:
            order = {"linear": 1, "cubic": 3}[method]
            out[i] = RectBivariateSpline(source, source, image, kx=order, ky=order)(target, target)
    return out


def methods(images: np.ndarray, loop_images: int, window: int = 3, stride: int = 2) -> None:
    stored = round_to_dtype(average_pool(images, window, stride), "uint8")
    print(
        f"== methods: upsample {images.shape[0]:,} images of the {window}x{window}/{stride} case (best of 3);"
        f" reference loop timed on {loop_images:,} and scaled to all"
    )
    print(f"{'method':8} {'ours s':>7} {'loop s':>7} {'ratio':>6} {'max |diff|':>11}")
    for method in METHODS:
        ours, result = best_of(
            lambda method=method: upsample_images(stored, (28, 28), window, stride, method=method), 3
        )
        loop_time, reference = best_of(
            lambda method=method: per_image_method(stored[:loop_images], window, stride, method), 1
        )
        loop_full = loop_time * images.shape[0] / loop_images
        diff = float(np.abs(result[:loop_images] - reference).max())
        print(f"{method:8} {ours:7.3f} {loop_full:7.2f} {loop_full / ours:5.0f}x {diff:11.2e}")


def write_big_raw(path: Path, real: np.ndarray, n: int) -> None:
    with h5py.File(path, "w") as file:
        images = file.create_dataset(
            "images", shape=(n, 28, 28), dtype=np.uint8, chunks=(CHUNK_IMAGES, 28, 28), **filter_options("gzip", 4)
        )
        for start in range(0, n, real.shape[0]):
            stop = min(n, start + real.shape[0])
            images[start:stop] = real[: stop - start]
        file.create_dataset("labels", data=np.resize(np.arange(10, dtype=np.uint8), n))
        # A real digest and stage: the stages check both before reading (their memory includes that).
        file.attrs["stage"] = "fetch"
        file.attrs["content_sha256"] = content_sha256(file)


# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child started by
# this (large) process would report the parent's peak.
STAGE = """
import re, time
from poolup import preprocess
start = time.perf_counter()
{call}
hwm_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(time.perf_counter() - start, hwm_kb / 1024)
"""


def run_stage(call: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", STAGE.format(call=call)], check=True, capture_output=True, text=True
    ).stdout
    seconds, rss_mb = map(float, out.split()[-2:])
    return seconds, rss_mb


def memory(real: np.ndarray, n: int, workdir: Path) -> None:
    print(f"== memory: real stages in their own process on {n:,} images ({workdir})")
    raw = workdir / "raw.h5"
    write_big_raw(raw, real, n)
    idle = run_stage("pass")[1]
    print(f"python + poolup imports alone: {idle:.0f} MB")
    stored, storage = str(workdir / "stored.h5"), str(workdir / "storage.json")
    store = f"preprocess.pool_and_store({str(raw)!r}, {stored!r}, {storage!r}, 'w2s2', 2, 2)"
    seconds, rss = run_stage(store)
    print(
        f"store    (2x2/2, uint8, gzip): {seconds:6.1f} s, peak RSS {rss:6.0f} MB ({'OK' if rss < 1024 else 'OVER'} "
        "1 GB goal)"
    )
    upsample = f"preprocess.upsample({str(workdir / 'stored.h5')!r}, {str(workdir / 'upsampled.h5')!r})"
    seconds, rss = run_stage(upsample)
    size = (workdir / "upsampled.h5").stat().st_size / 2**30
    print(
        f"upsample (to float32, {size:.1f} GiB): {seconds:6.1f} s, peak RSS {rss:6.0f} MB "
        f"({'OK' if rss < 1024 else 'OVER'} 1 GB goal)"
    )
    print(json.dumps({"images": n, "raw_MB_uncompressed": n * 784 / 2**20}))


# The recipes the recipe benchmark times (a representative of each transform family).
RECIPES = {
    "pool 2x2/2": {"window": 2, "stride": 2},
    "1 bit": {"window": 1, "stride": 1, "bits": 1},
    "2 bits": {"window": 1, "stride": 1, "bits": 2},
    "4 bits": {"window": 1, "stride": 1, "bits": 4},
    "6 bits": {"window": 1, "stride": 1, "bits": 6},
    "jpeg q50, 1 per file": {"window": 1, "stride": 1, "codec": "jpeg", "quality": 50},
    "webp q50, 1 per file": {"window": 1, "stride": 1, "codec": "webp", "quality": 50},
    "avif q50, 1,024 per file": {"window": 1, "stride": 1, "codec": "avif", "quality": 50, "tile": 1024},
}


def recipes(images: np.ndarray, workdir: Path) -> None:
    from poolup.recipe import Recipe, read_back

    print(f"== recipes: encode (pool -> quantise -> encode) and read back {images.shape[0]:,} images, one thread")
    # The payload as the recipe hands it to HDF5, before any filter (storage.json has the bytes on disk).
    print(f"{'recipe':26} {'encode img/s':>13} {'decode img/s':>13} {'payload B/img':>14}")
    for name, spec in RECIPES.items():
        recipe = Recipe.from_case(spec)
        start = time.perf_counter()
        pooled = round_to_dtype(average_pool(images, recipe.window, recipe.stride), "uint8")
        parts = recipe.encode(pooled)
        encode = time.perf_counter() - start
        path = workdir / "recipe.h5"
        with h5py.File(path, "w") as file:
            for key, value in parts.items():
                file[key if key != "sizes" else "offsets"] = (
                    value if key != "sizes" else np.concatenate([[0], np.cumsum(value)])
                )
            file["labels"] = np.zeros(images.shape[0], np.uint8)
            file.attrs.update({"window": recipe.window, "stride": recipe.stride, **recipe.recorded()})
            file.attrs["stored_shape"] = list(pooled.shape[1:])
        stored = sum(part.nbytes for key, part in parts.items() if key != "sizes")
        with h5py.File(path) as file:
            start = time.perf_counter()
            read_back(file)
            decode = time.perf_counter() - start
        n = images.shape[0]
        print(f"{name:26} {n / encode:13,.0f} {n / decode:13,.0f} {stored / n:14.1f}")
    packing(images)
    files(images, workdir)


def packing(images: np.ndarray) -> None:
    """Why 1-4 bits are stored packed and 5-7 one code per byte: gzip-4 + shuffle bytes of both."""
    from poolup import quantization
    from poolup.storage import bytes_under_filter

    n = images.shape[0]
    print("k-bit codes under gzip level 4 + shuffle, B/image: one code per byte -> packed bit stream")
    for bits in range(1, 8):
        codes = quantization.to_codes(images, bits)
        flat = codes.reshape(n, -1)
        stream = np.unpackbits(flat[:, :, None], axis=2)[:, :, 8 - bits :]
        packed = np.packbits(stream.reshape(n, -1), axis=1)
        one, bitstream = (bytes_under_filter(a, "gzip", 4) / n for a in (flat, packed))
        kept = "packed" if bits in quantization.PACKED_BITS else "one per byte"
        print(f"  {bits} bits: {one:6.1f} -> {bitstream:6.1f} ({bitstream / one - 1:+.0%}; stored {kept})")


def files(images: np.ndarray, workdir: Path) -> None:
    """Flat bytes + offsets against variable-length data, for WebP q50 files, one per image."""
    from poolup import image_files

    encoded, sizes = image_files.encode(images, "webp", 50)
    n = images.shape[0]
    flat, vlen = workdir / "flat.h5", workdir / "vlen.h5"
    with h5py.File(flat, "w") as file:
        file.create_dataset("encoded", data=encoded, chunks=(16384,))
        file.create_dataset("offsets", data=np.concatenate([[0], np.cumsum(sizes)]), **filter_options("gzip", 4))
    with h5py.File(vlen, "w") as file:
        data = file.create_dataset("files", shape=(n,), dtype=h5py.vlen_dtype(np.uint8))
        ends = np.cumsum(sizes)
        for index, end in enumerate(ends):
            data[index] = encoded[end - sizes[index] : end]
    payload = int(sizes.sum())
    print(
        f"WebP q50 files, {payload / n:.1f} B/image: in HDF5 as flat bytes + gzip offsets "
        f"{(flat.stat().st_size - payload) / n:+.1f} B/image, as variable-length data "
        f"{(vlen.stat().st_size - payload) / n:+.1f} B/image (whole files on disk, less the payload)"
    )


def recipe_memory(real: np.ndarray, n: int, workdir: Path) -> None:
    print(f"== memory: the pool stage of encoding recipes, own process, {n:,} images")
    raw = workdir / "raw.h5"
    if not raw.exists():
        write_big_raw(raw, real, n)
    for name, encoding in (("2 bits", {"bits": 2}), ("webp q50, 1 per file", {"codec": "webp", "quality": 50})):
        pooled = str(workdir / "pooled.h5")
        call = f"preprocess.pool({str(raw)!r}, {pooled!r}, 'c', 1, 1, encoding={encoding!r})"
        seconds, rss = run_stage(call)
        print(f"pool ({name}): {seconds:6.1f} s, peak RSS {rss:6.0f} MB ({'OK' if rss < 1024 else 'OVER'} 1 GB goal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    parser.add_argument("--loop-images", type=int, default=10000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", choices=["speed", "methods", "memory", "recipes", "recipe-memory"], default=None)
    args = parser.parse_args()
    if not args.mnist.is_dir():
        sys.exit(f"no MNIST IDX folder at {args.mnist}; pass --mnist DIR")
    images, _, _ = load_idx(args.mnist)
    print(
        subprocess.run(["bash", "-c", "lscpu | grep -E '^(Model name|Flags)'"], capture_output=True, text=True).stdout
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        sections = {
            "speed": lambda: speed(images, args.loop_images),
            "methods": lambda: methods(images, args.loop_images),
            "memory": lambda: memory(images, args.big, Path(tmp)),
            "recipes": lambda: recipes(images, Path(tmp)),
            "recipe-memory": lambda: recipe_memory(images, args.big, Path(tmp)),
        }
        for name, section in sections.items():
            if args.only in (None, name):
                section()


if __name__ == "__main__":
    main()
