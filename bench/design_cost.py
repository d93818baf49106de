"""What a finished (or interrupted) design cost in training, against a fixed design of its last look.

Reads a results folder: the finished runs of each case (``results/<dataset>/<case>/seed*/``, also
while a design runs), and the training jobs' benchmark files (Snakemake's ``benchmark:``,
``results/benchmarks/<dataset>/<case>/train_seeds_A_B.tsv``) for their CPU time. Printed: per
case the seeds trained and their CPU time, then the runs and CPU-hours of the whole design
against a fixed design of ``--fixed`` seeds per case (default: the last look of a sequential
design, from ``summary/looks/``), at the design's mean CPU seconds per run, and both as wall
time on ``--cores`` cores.

CPU time, not the benchmark files' wall time: a design paused or sharing its cores with other
work keeps its CPU time, while its wall time grows.

Usage: python bench/design_cost.py [RESULTS_DIR] [--dataset mnist] [--fixed SEEDS] [--cores 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from poolup.records import read_json
from poolup.runs import group_of

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import cpu_description  # noqa: E402  (bench/train.py)


def training_jobs(benchmarks: Path) -> pd.DataFrame:
    """One row per training job that finished: its case, runs and CPU seconds (the job's benchmark file)."""
    rows = [
        {
            "case": path.parent.name,
            "runs": len(group_of(path.stem)),
            "cpu_s": float(pd.read_csv(path, sep="\t")["cpu_time"].iloc[-1]),
        }
        for path in sorted(benchmarks.glob("*/train_seeds_*.tsv"))
        if group_of(path.stem)
    ]
    if not rows:
        raise SystemExit(f"no training benchmark files under {benchmarks}: give the folder holding results/")
    return pd.DataFrame(rows)


def finished_runs(case_dir: Path) -> int:
    """Seeds of a case whose run finished (its ``test_metrics.json`` is written last)."""
    return sum(1 for _ in case_dir.glob("seed*/test_metrics.json"))


def last_record(summary_dir: Path) -> dict[str, Any] | None:
    """The newest look record of a sequential design (None in a fixed design)."""
    records = sorted((summary_dir / "looks").glob("look*.json"), key=lambda path: int(path.stem[4:]))
    return read_json(records[-1], stage="look") if records else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", help="the folder holding results/ (default: here)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--fixed", type=int, help="seeds per case of the fixed design to compare with")
    parser.add_argument("--cores", type=int, default=2, help="cores the wall time is given for")
    args = parser.parse_args()
    results = Path(args.root) / "results"
    summary_dir = results / args.dataset / "summary"
    jobs = training_jobs(results / "benchmarks" / args.dataset)
    print(f"this machine (the benchmark files record the machine that trained):\n{cpu_description()}")
    per_case = jobs.groupby("case")[["runs", "cpu_s"]].sum()
    per_case["seeds"] = [finished_runs(results / args.dataset / case) for case in per_case.index]
    print(f"{'case':12} {'seeds':>5} {'runs timed':>10} {'CPU h':>7} {'CPU s per run':>13}")
    for case, row in per_case.iterrows():
        print(f"{case:12} {int(row.seeds):5d} {int(row.runs):10d} {row.cpu_s / 3600:7.2f} {row.cpu_s / row.runs:13.1f}")
    timed, cpu = int(per_case.runs.sum()), float(per_case.cpu_s.sum())
    runs, per_run = int(per_case.seeds.sum()), cpu / timed
    if runs > timed:
        # A job stopped part-way keeps its finished seeds but writes no benchmark file: count them at the mean.
        print(f"\n{runs - timed} finished runs have no benchmark (their job was interrupted): counted at the mean")
        cpu += (runs - timed) * per_run
    record = last_record(summary_dir)
    finished = record is None or record["next"] is None
    if not finished:
        print(f"\nthe design is not finished: look {record['look']} of {len(record['looks'])} judged, so far:")
    fixed_seeds = args.fixed or (record["looks"][-1] if record else int(per_case.seeds.max()))
    fixed_runs = fixed_seeds * len(per_case)
    print(
        f"\nthis design: {runs} runs, {cpu / 3600:.2f} CPU-hours ({per_run:.1f} s per run),"
        f" {cpu / args.cores / 3600:.2f} h of wall on {args.cores} cores"
    )
    print(
        f"fixed design of {fixed_seeds} seeds: {fixed_runs} runs, about {fixed_runs * per_run / 3600:.2f} CPU-hours,"
        f" {fixed_runs * per_run / args.cores / 3600:.2f} h on {args.cores} cores (at this design's seconds per run)"
    )
    if finished:
        print(f"saved: {fixed_runs - runs} runs, {1 - runs / fixed_runs:.0%}")
    else:  # what an open design saves is known only when it ends
        planned = sum(record["next"].values())
        print(f"the next look trains up to {planned} runs in all ({planned - runs} more than so far)")


if __name__ == "__main__":
    main()
