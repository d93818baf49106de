"""The cost of a whole run: the paper experiment end to end against plain ``model.fit`` epochs, in one run.

Runs the workflow (``config.yaml``, the paper's 5 cases, with the real MNIST IDX files;
``--images`` takes a seeded subset, ``--seeds`` another seed count) in a temporary
folder with ``snakemake --cores N``, then prints, with lscpu's model name and flags:

- the run's wall time, and that time against ``--fits`` plain float32 ``model.fit`` epochs
  on the same images (2 threads, one process each, as ``bench/train.py``), scaled to
  one plain fit per run of the experiment (5 cases x seeds): the goal is at most 0.30;
- the training jobs' wall time (Snakemake's benchmark files) and the part of it that
  is training steps (``train_seconds`` of every ``test_metrics.json``): the goal is 80 %;
  and where the rest goes (TensorFlow's start and loading, split and scaling,
  learning-curve monitoring, the held-out evaluation, writing);
- the size of ``results/`` (goal: 400 MB for the paper experiment on 70,000 digits),
  and what float32 up-sampled arrays of every case would add.

Usage: python bench/experiment.py [--mnist DIR] [--images N] [--seeds K] [--cores N] [--fits F] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"
sys.path.insert(0, str(REPO / "bench"))

from train import cpu_description, measure, tensorflow_picks_onednn  # noqa: E402  (bench/train.py's workers)

# Per-seed phases that test_metrics.json records (training.Clock), besides the steps (train_seconds).
PHASES = ("load", "setup", "prepare", "monitor", "evaluate", "write")


def run_workflow(workdir: Path, mnist: Path, images: int, seeds: int | None, cores: int) -> float:
    """The paper experiment in ``workdir``; its wall seconds."""
    override = workdir / "bench.yaml"
    dataset = {"name": "mnist", "source": "idx", "path": str(mnist), "image_shape": [28, 28]}
    if images < 70_000:
        dataset["max_images"] = images
    settings: dict = {"datasets": [dataset]}
    if seeds is not None:
        settings["seeds"] = seeds
    override.write_text(json.dumps(settings))
    command = [
        sys.executable,  # this environment's Snakemake, activated or not
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--configfile",
        str(REPO / "config.yaml"),
        str(override),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"the workflow failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return wall


def training_costs(results: Path) -> tuple[float, dict[str, float], int, int]:
    """Training jobs' wall seconds, their phases' seconds summed over runs, the runs and images trained."""
    jobs = 0.0
    for tsv in results.glob("benchmarks/*/*/train_seeds_*.tsv"):
        with tsv.open() as handle:
            jobs += float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    phases = dict.fromkeys(("train", *PHASES), 0.0)
    runs = images = 0
    for record_path in results.glob("*/*/seed*/test_metrics.json"):
        record = json.loads(record_path.read_text())
        runs += 1
        images += int(record["n_train"]) * int(record["epochs_run"])
        for phase in phases:
            phases[phase] += float(record.get(f"{phase}_seconds", 0.0))
    return jobs, phases, runs, images


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    parser.add_argument("--images", type=int, default=70_000, help="digits used (a seeded subset below 70,000)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per case (default: config.yaml's)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--fits", type=int, default=3, help="plain fits timed (one process each)")
    parser.add_argument("--keep", type=Path, default=None, help="copy the run's folder here")
    args = parser.parse_args()
    if not args.mnist.is_dir():
        sys.exit(f"no MNIST IDX folder at {args.mnist}; pass --mnist DIR")
    from poolup.h5files import read_image_set

    print(cpu_description(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "run"
        workdir.mkdir()
        wall = run_workflow(workdir, args.mnist.resolve(), args.images, args.seeds, args.cores)
        results = workdir / "results"
        jobs, phases, runs, trained = training_costs(results)
        size = folder_bytes(results)
        cases = sorted(p.name for p in (results / "mnist").iterdir() if (p / "pooled.h5").is_file())
        # The plain fits, on the same images (the baseline's pooled.h5, up-sampled: the original digits).
        # On the kernels TensorFlow picks for this CPU by itself, as the authors' fits ran.
        kernels = tensorflow_picks_onednn()
        baseline = results / "mnist" / "baseline" / "pooled.h5"
        fits = [
            measure(baseline, Path(tmp), mode="fit", threads=2, precision="float32", onednn=kernels)
            for _ in range(args.fits)
        ]
        if args.keep is not None:
            shutil.copytree(workdir, args.keep, dirs_exist_ok=True)
        n = int(read_image_set(results / "mnist" / "raw.h5").labels.shape[0])
    fit_wall = sum(f["wall"] for f in fits) / len(fits)
    fit_steps = sum(f["images"] / f["train_seconds"] for f in fits) / len(fits)
    print(
        f"\npaper experiment: {len(cases)} cases x {runs // len(cases)} seeds = {runs} runs, {n:,} digits,"
        f" --cores {args.cores}"
    )
    print(f"  whole run (snakemake, start to end):      {wall:8.1f} s")
    print(
        f"  {runs} plain float32 fits, 2 threads:       {runs * fit_wall:8.1f} s"
        f"  ({fit_wall:.1f} s each, mean of {len(fits)}; {'oneDNN' if kernels else 'TF own'} kernels,"
        " as TensorFlow picks them here)"
    )
    print(f"  ratio (goal <= 0.30):                      {wall / (runs * fit_wall):8.2f}")
    print(
        f"\ntraining jobs: {jobs:.1f} s of wall, {phases['train']:.1f} s of steps"
        f" = {phases['train'] / jobs:.0%} (goal >= 80 %)"
    )
    print(
        f"  steps: {trained / phases['train']:,.0f} images/s per job;"
        f" plain fit's steps {fit_steps:,.0f} images/s (2 threads)"
    )
    rest = jobs - sum(phases.values())
    for phase in PHASES:
        print(f"  {phase:9} {phases[phase]:7.1f} s  {phases[phase] / jobs:5.1%}")
    print(
        f"  {'other':9} {rest:7.1f} s  {rest / jobs:5.1%}"
        "  (the rest: Python's start and exit, Snakemake's job start, between the phases)"
    )
    upsampled = len(cases) * n * 28 * 28 * 4
    print(
        f"\nresults/: {size / 1e6:,.0f} MB (goal <= 400 MB on 70,000 digits); float32 up-sampled arrays of every case "
        f"would add {upsampled / 1e6:,.0f} MB (made on request: snakemake results/mnist/<case>/upsampled.h5)"
    )


if __name__ == "__main__":
    main()
