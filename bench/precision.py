"""Is one way of training within noise of another? Paired by case and seed, from two finished runs.

Both runs must be the same experiment (same data, cases and seeds) trained two ways:
``float32`` and ``mixed_bfloat16`` (the default names), or on TensorFlow's own kernels and
on oneDNN's (``training.onednn``). Each seed has the same split, initial weights and batch
order in both, so the runs pair by (case, seed). Prints, per case and over all cases, the
mean paired difference of test macro F1 (second - first) with its 95 % t-interval and the
paired t-test's p, next to the seed-to-seed SD of each (the noise the experiment has
anyway), and the verdict: "within noise" when the 95 % interval of the mean difference
contains 0 and lies inside +-``--margin`` (default 0.005, the config's analysis.margin).

Usage: python bench/precision.py FIRST_RUNS_CSV SECOND_RUNS_CSV [--names float32,bfloat16] [--margin 0.005]
(``results/<dataset>/summary/runs.csv`` of each run)
"""

from __future__ import annotations

import argparse

import pandas as pd

from poolup.stats import paired_p, t_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="runs.csv of the first way (float32)")
    parser.add_argument("second", help="runs.csv of the second way (mixed_bfloat16)")
    parser.add_argument("--names", default="float32,bfloat16", help="the two ways' names, for the table")
    parser.add_argument("--margin", type=float, default=0.005)
    args = parser.parse_args()
    first_name, second_name = args.names.split(",")
    first = pd.read_csv(args.first).set_index(["case", "seed"])["macro_f1"]
    second = pd.read_csv(args.second).set_index(["case", "seed"])["macro_f1"]
    shared = first.index.intersection(second.index)
    if shared.empty:
        raise SystemExit("the two runs share no (case, seed): they must be the same experiment")
    difference = (second[shared] - first[shared]).rename("delta")
    delta = f"ΔF1 ({second_name} - {first_name}) [95% CI]"
    print(f"{'case':10} {'seeds':>5} {'F1 ' + first_name:>18} {'F1 ' + second_name:>18} {delta:>34} {'p':>6}")
    groups = [(case, values) for case, values in difference.groupby(level="case", sort=False)]
    for case, values in [*groups, ("all", difference)]:
        keys = values.index
        low, high = t_interval(values.to_numpy(), 0.95)
        a, b = first[keys], second[keys]
        print(
            f"{case:10} {len(values):5d} {a.mean():9.4f} ± {a.std():.4f} {b.mean():9.4f} ± {b.std():.4f}"
            f" {values.mean():+9.4f} [{low:+.4f}, {high:+.4f}] {paired_p(values.to_numpy()):6.3f}"
        )
    low, high = t_interval(difference.to_numpy(), 0.95)
    within = low <= 0 <= high and -args.margin < low and high < args.margin
    print(
        f"\nverdict: {'within noise' if within else 'NOT within noise'} (95 % CI of the mean paired ΔF1 "
        f"[{low:+.4f}, {high:+.4f}] {'contains' if low <= 0 <= high else 'excludes'} 0 and "
        f"{'lies inside' if -args.margin < low and high < args.margin else 'crosses'} ±{args.margin})"
    )


if __name__ == "__main__":
    main()
