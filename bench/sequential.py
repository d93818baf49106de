"""Plan a sequential design: the verdicts and seeds it gives each case, Bonferroni against O'Brien-Fleming.

For each case, designs are simulated with normal per-seed differences at the case's measured
mean ΔF1 and SD (by default the paper setting's four cases at 30 seeds, README "The answer";
or the cases of a pilot's ``summary.csv``). Printed per case and rule: the chance of each
verdict and the mean seeds trained; then the mean training runs of the whole design (the
baseline trains to the last look any case needs) against a fixed design of the last look's
count, and their wall time at ``--seconds-per-run``.

Rules: "bonferroni", the product's (each look at alpha / K, poolup.sequential); "obf", the
Lan-DeMets spending function of O'Brien-Fleming type, alpha(t) = 2 - 2 Phi(z_(1-alpha/2) / sqrt(t))
at information fraction t = L / L_K, with the look boundaries found by simulating the joint law
of the looks' z-statistics and used as t-test levels (for comparison only: the workflow does
not offer it, see poolup/sequential.py). Cases are simulated independently (in a real design
they share the baseline's noise).

Usage: python bench/sequential.py [--summary SUMMARY_CSV] [--looks 10 20 40 80 160]
       [--designs 20000] [--seconds-per-run 27]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from poolup import sequential

# The paper setting at 30 seeds (README, "The answer"): mean ΔF1 and the SD of the per-seed
# differences (from each case's 95 % t-interval: half-width * sqrt(30) / t_0.975,29).
PAPER_CASES = {
    "w2s1": (-0.0010, 0.00495),
    "w2s2": (-0.0033, 0.00603),
    "w3s1": (-0.0014, 0.00522),
    "w3s2": (-0.0038, 0.00549),
}


def obrien_fleming_levels(looks: list[int], alpha: float, draws: int = 400_000, random_state: int = 0) -> np.ndarray:
    """One-sided nominal level of each look under Lan-DeMets O'Brien-Fleming spending (simulated boundaries)."""
    fraction = np.asarray(looks) / looks[-1]
    spent = 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(fraction))
    steps = np.diff(np.concatenate([[0], looks]))
    sums = np.cumsum(np.random.default_rng(random_state).normal(size=(draws, len(looks))) * np.sqrt(steps), axis=1)
    z = sums / np.sqrt(looks)
    alive, levels, before = np.ones(draws, bool), [], 0.0
    for index in range(len(looks)):
        crossing = int(round((spent[index] - before) * draws))
        ordered = np.sort(z[alive, index])[::-1]
        bound = ordered[crossing - 1] if crossing > 0 else np.inf
        levels.append(float(stats.norm.sf(bound)))
        alive &= z[:, index] < bound
        before = spent[index]
    return np.asarray(levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", help="a pilot's summary.csv: its cases' delta_f1 and delta_sd")
    parser.add_argument("--looks", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    parser.add_argument("--margin", type=float, default=0.005)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--designs", type=int, default=20_000)
    parser.add_argument("--seconds-per-run", type=float, default=27.0, help="one CPU core's seconds per run")
    args = parser.parse_args()
    looks = sequential.check_looks(args.looks)
    if args.summary:
        frame = pd.read_csv(args.summary).dropna(subset=["delta_sd"])
        cases = {row.case: (row.delta_f1, row.delta_sd) for row in frame.itertuples()}
    else:
        cases = PAPER_CASES
    rules = {"bonferroni": None, "obf": obrien_fleming_levels(looks, args.alpha)}
    print(f"looks {looks}, margin {args.margin}, alpha {args.alpha}, {args.designs} designs per case")
    print(f"obf one-sided levels per look: {', '.join(f'{level:.3g}' for level in rules['obf'])}")
    print(f"bonferroni level per look:     {sequential.look_alpha(args.alpha, len(looks)):.3g}\n")
    print(f"{'case':8} {'ΔF1':>8} {'SD':>7} {'rule':>10} {'P(smaller)':>10} {'P(larger)':>9} {'mean seeds':>10}")
    seeds_by_rule = {rule: [] for rule in rules}
    for number, (case, (delta, sd)) in enumerate(cases.items()):
        for rule, levels in rules.items():
            verdict, seeds = sequential.simulate(
                looks, delta, sd, args.margin, args.alpha, args.designs, number, alpha_per_look=levels
            )
            seeds_by_rule[rule].append(seeds)
            print(
                f"{case:8} {delta:+8.4f} {sd:7.5f} {rule:>10} {np.mean(verdict == sequential.SMALLER_CODE):10.3f}"
                f" {np.mean(verdict == sequential.LARGER_CODE):9.3f} {seeds.mean():10.1f}"
            )
    fixed = (len(cases) + 1) * looks[-1]
    print(
        f"\nfixed design: {fixed} runs ({len(cases) + 1} cases with the baseline x {looks[-1]} seeds),"
        f" {fixed * args.seconds_per_run / 3600:.1f} core-hours at {args.seconds_per_run:g} s per run"
    )
    for rule, seeds in seeds_by_rule.items():
        stacked = np.vstack(seeds)
        runs = stacked.sum(axis=0) + stacked.max(axis=0)  # the baseline trains to the last look any case needs
        print(
            f"{rule:>10}: {runs.mean():.0f} runs on average (5-95 %: {np.percentile(runs, 5):.0f}-"
            f"{np.percentile(runs, 95):.0f}), {runs.mean() * args.seconds_per_run / 3600:.1f} core-hours,"
            f" {1 - runs.mean() / fixed:.0%} saved"
        )


if __name__ == "__main__":
    main()
