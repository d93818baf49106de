"""Is mixed bfloat16 training within noise of float32? Paired by case and seed, from two finished runs.

Both runs must be the same experiment (same data, cases and seeds) trained once in
``float32`` and once in ``mixed_bfloat16``; each seed has the same split, initial
weights and batch order in both, so the runs pair by (case, seed). Prints, per case
and over all cases, the mean paired difference of test macro F1 (bfloat16 - float32)
with its 95 % t-interval and the paired t-test's p, next to the seed-to-seed SD of
float32 F1 (the noise the experiment has anyway), and the verdict: "within noise"
when the 95 % interval of the mean difference contains 0 and lies inside
+-``--margin`` (default 0.005, the config's analysis.margin).

Usage: python bench/precision.py FLOAT32_RUNS_CSV BFLOAT16_RUNS_CSV [--margin 0.005]
(``results/<dataset>/summary/runs.csv`` of each run)
"""

from __future__ import annotations

import argparse

import pandas as pd

from poolup.stats import paired_p, t_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("float32", help="runs.csv of the float32 run")
    parser.add_argument("bfloat16", help="runs.csv of the mixed_bfloat16 run")
    parser.add_argument("--margin", type=float, default=0.005)
    args = parser.parse_args()
    f32 = pd.read_csv(args.float32).set_index(["case", "seed"])["macro_f1"]
    bf16 = pd.read_csv(args.bfloat16).set_index(["case", "seed"])["macro_f1"]
    shared = f32.index.intersection(bf16.index)
    difference = (bf16[shared] - f32[shared]).rename("delta")
    print(f"{'case':10} {'seeds':>5} {'F1 float32':>18} {'F1 bfloat16':>18} {'ΔF1 (bf16 - f32) [95% CI]':>34} {'p':>6}")
    groups = [(case, values) for case, values in difference.groupby(level="case", sort=False)]
    for case, values in [*groups, ("all", difference)]:
        keys = values.index
        low, high = t_interval(values.to_numpy(), 0.95)
        print(
            f"{case:10} {len(values):5d} {f32[keys].mean():9.4f} ± {f32[keys].std():.4f} {bf16[keys].mean():9.4f} ± "
            f"{bf16[keys].std():.4f} {values.mean():+9.4f} [{low:+.4f}, {high:+.4f}] {paired_p(values.to_numpy()):6.3f}"
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
