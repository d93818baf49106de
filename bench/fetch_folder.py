"""Benchmark ``source: folder``: the 70,000 MNIST digits written as PNG files, one folder per class, fetched.

Writes the digits of the IDX files (../shared/data/mnist) as ``DIR/<class>/<n>.png``, then times the fetch
rule's function on that folder, in this process, and checks that ``raw.h5`` holds the IDX source's images
(sorted by class and file name). The same digits fetched from the IDX files are timed in the same run, so
the folder's cost is printed as a ratio too.

Each file of the folder is an input of the fetch rule (a file added or replaced refetches), so every
``snakemake`` start lists and stats them: a dry run of the folder data set is timed against a dry run of
the IDX one.

Goal: 70,000 PNG files fetched in under a minute on 2 cores.

Usage: python bench/fetch_folder.py [--mnist DIR] [--workdir DIR] [--images N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from poolup.h5files import read_image_set
from poolup.preprocess import fetch_source
from poolup.sources import load_idx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import cpu_description  # noqa: E402  (bench/train.py)

REPO = Path(__file__).resolve().parent.parent


def write_pngs(images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """Each image as ``folder/<label>/<index>.png`` (zero-padded, so that the sorted names keep the order)."""
    from PIL import Image

    for label in np.unique(labels):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / str(label) / f"{index:06d}.png")


def dry_run_seconds(work: Path, source: str, mnist: Path) -> float:
    """Seconds of ``snakemake -n`` over one data set read from ``source`` (its files listed as inputs)."""
    import yaml

    folder = work / f"dry-{source}"
    folder.mkdir()
    path = str(work / "digits") if source == "folder" else str(mnist)
    config = {"datasets": [{"name": "d", "source": source, "path": path}], "seeds": 1}
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(folder), "-n"]
    tick = time.perf_counter()
    subprocess.run([*command, "--configfile", str(folder / "c.yaml")], check=True, capture_output=True)
    return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared/data/mnist")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--images", type=int, default=None, help="the first N digits only (default: all)")
    args = parser.parse_args()
    print(cpu_description())
    images, labels, _ = load_idx(args.mnist)
    images, labels = images[: args.images], labels[: args.images]
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        work = Path(work)
        tick = time.perf_counter()
        write_pngs(images, labels, work / "digits")
        print(f"wrote {images.shape[0]:,} PNG files in {time.perf_counter() - tick:.1f} s")

        tick = time.perf_counter()
        fetch_source(work / "idx.h5", "idx", str(args.mnist))
        idx_seconds = time.perf_counter() - tick

        tick = time.perf_counter()
        fetch_source(work / "folder.h5", "folder", str(work / "digits"), expected_shape=(28, 28))
        folder_seconds = time.perf_counter() - tick

        dry_runs = {source: dry_run_seconds(work, source, args.mnist) for source in ("idx", "folder")}
        got = read_image_set(work / "folder.h5")
        order = np.argsort(labels, kind="stable")  # by class, then by index (the file names)
        np.testing.assert_array_equal(got.images, images[order])
        np.testing.assert_array_equal(got.labels, labels[order])
    n = images.shape[0]
    print(f"fetch of {n:,} PNG files (source folder): {folder_seconds:.1f} s, {n / folder_seconds:,.0f} images/s")
    print(f"fetch of the same digits from IDX files:    {idx_seconds:.1f} s")
    print(
        f"folder / IDX: {folder_seconds / idx_seconds:.1f}x; goal under 60 s: "
        f"{'met' if folder_seconds < 60 else 'MISSED'}"
    )
    print("raw.h5 from the folder holds the IDX digits, sorted by class: identical")
    print(
        f"snakemake -n of the workflow: {dry_runs['folder']:.1f} s with the folder, {dry_runs['idx']:.1f} s with the "
        f"IDX files ({dry_runs['folder'] - dry_runs['idx']:+.1f} s for listing the files)"
    )


if __name__ == "__main__":
    main()
