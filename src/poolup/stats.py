"""Paired comparison of a case with the baseline over seeds: intervals, tests, a verdict, power.

Every case trains on each seed's split, initial weights and batch order, so
the runs of a case and of the baseline are *paired by seed*: the statistics
here work on the per-seed differences ``case - baseline`` (ΔF1), not on two
independent samples.

The question is one-sided: how much quality is *lost*. A case is judged
against a margin ``m`` (config ``analysis.margin``) a user accepts losing:

- "loss smaller than the margin": ΔF1 > -m is shown, i.e. the lower end of
  the ``1 - 2α`` t-interval (90 % for α = 0.05) lies above -m. This is the
  lower of the two one-sided tests of an equivalence test (TOST) at level α;
  the upper test is left out on purpose: a case that is *better* than the
  baseline by more than m has not lost quality.
- "loss larger than the margin": the upper end of that interval lies below
  -m (the loss exceeds m at level α).
- "undecided" otherwise, and with fewer than two paired seeds.

Degenerate input never raises and never gives NaN where a value is defined:
with zero spread, intervals collapse to the mean and p-values are 0 or 1;
with fewer than two seeds, what needs a spread is NaN (a blank CSV cell,
"n/a" in Markdown).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# scipy is imported in the functions that use it: about a second of import that every Snakemake start and
# figure job would pay for this module's constants alone.
SMALLER = "loss smaller than the margin"
LARGER = "loss larger than the margin"
UNDECIDED = "undecided"
VERDICTS: tuple[str, ...] = (SMALLER, LARGER, UNDECIDED)
BOOTSTRAP_METHOD = "BCa"  # bias-corrected and accelerated: scipy's default, better coverage than percentile
BOOTSTRAP_SEED = 0  # fixed: the same runs give the same bootstrap interval
# What compare_paired returns, in this order (the summary.csv columns; README, "Statistics").
PAIRED_COLUMNS: tuple[str, ...] = (
    "paired_n",
    "delta_f1",
    "delta_sd",
    "delta_ci_low",
    "delta_ci_high",
    "delta_boot_low",
    "delta_boot_high",
    "paired_p",
    "margin_ci_low",
    "margin_ci_high",
    "noninferiority_p",
    "verdict",
    "mde",
    "seeds_for_margin",
)


def paired_differences(case: Mapping[int, Any], baseline: Mapping[int, Any]) -> tuple[list[int], np.ndarray]:
    """Per-seed differences ``case - baseline`` over the seeds both have.

    Parameters
    ----------
    case, baseline : mapping
        Seed -> a score (float) or a vector of scores (e.g. one per class).

    Returns
    -------
    seeds : list of int
        The shared seeds, ascending (seeds of only one side are left out).
    differences : ndarray
        Shape (n,) or (n, k), float64, one row per shared seed.
    """
    seeds = sorted(set(case) & set(baseline))
    if not seeds:
        return [], np.empty(0)
    return seeds, np.array([np.asarray(case[s], np.float64) - np.asarray(baseline[s], np.float64) for s in seeds])


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else math.nan


def t_interval(differences: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean difference; NaN with fewer than two values."""
    from scipy import stats

    values = np.asarray(differences, np.float64)
    if values.size < 2:
        return math.nan, math.nan
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * _sd(values) / math.sqrt(values.size)
    return mean - half, mean + half


def bootstrap_interval(differences: np.ndarray, confidence: float, resamples: int) -> tuple[float, float]:
    """Bootstrap (BCa, fixed seed) confidence interval of the mean difference.

    ``scipy.stats.bootstrap`` with ``rng=np.random.default_rng(BOOTSTRAP_SEED)``.
    Zero spread gives the point interval; fewer than two values, or too few
    distinct resamples for BCa (scipy returns NaN), give NaN.
    """
    from scipy import stats

    values = np.asarray(differences, np.float64)
    if values.size < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning on tiny samples: NaN says it
        result = stats.bootstrap(
            (values,),
            np.mean,
            n_resamples=resamples,
            confidence_level=confidence,
            method=BOOTSTRAP_METHOD,
            vectorized=True,
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_p(differences: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test (one-sample t on the differences against 0)."""
    from scipy import stats

    values = np.asarray(differences, np.float64)
    if values.size < 2:
        return math.nan
    if np.all(values == values[0]):
        return 1.0 if values[0] == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values; NaN entries stay NaN and do not count.

    Sorted ascending, the i-th of m p-values (i from 0) becomes
    ``max over j <= i of min(1, (m - j) * p_(j))``; returned in the input order.
    """
    p = np.asarray(pvalues, np.float64)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    if present.size == 0:
        return adjusted
    order = present[np.argsort(p[present], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def noninferiority_p(differences: np.ndarray, margin: float) -> float:
    """One-sided p-value of H0: mean ΔF1 <= -margin against H1: mean ΔF1 > -margin.

    Small means "the loss is smaller than the margin". It is the lower test
    of a paired TOST (statsmodels' ``ttost_paired`` with ``upp=inf``).
    """
    from scipy import stats

    values = np.asarray(differences, np.float64)
    if values.size < 2:
        return math.nan
    mean, sd = float(values.mean()), _sd(values)
    if sd == 0:
        return 0.0 if mean > -margin else 1.0
    return float(stats.t.sf((mean + margin) / (sd / math.sqrt(values.size)), values.size - 1))


def verdict(interval: tuple[float, float], margin: float) -> str:
    """The verdict from the ``1 - 2α`` interval of ΔF1 (see the module docstring)."""
    low, high = interval
    if low > -margin:
        return SMALLER
    if high < -margin:
        return LARGER
    return UNDECIDED  # also when the interval is NaN (fewer than two seeds)


def power(effect: float, n: int, alpha: float, alternative: str = "two-sided") -> float:
    """Power of the paired t-test with ``n`` pairs for a standardised effect (mean / SD of differences).

    ``alternative`` "two-sided" counts both rejection tails (as statsmodels'
    ``TTestPower``); "larger" is the one-sided test used for the margin.
    """
    from scipy import stats

    df, noncentrality = n - 1, effect * math.sqrt(n)
    if alternative == "larger":
        return float(stats.nct.sf(stats.t.isf(alpha, df), df, noncentrality))
    critical = stats.t.isf(alpha / 2, df)
    # The far tail is negligible for a positive effect, and scipy's nct.cdf can return NaN far out in it.
    far_tail = float(np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality)))
    return float(stats.nct.sf(critical, df, noncentrality)) + far_tail


def minimum_detectable(sd: float, n: int, alpha: float, target_power: float) -> float:
    """Smallest |ΔF1| a two-sided paired t-test at ``alpha`` detects with ``target_power`` over ``n`` seeds."""
    from scipy import optimize

    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0
    high = 1.0
    while power(high, n, alpha) < target_power:  # bracket the root: power grows with the effect
        high *= 2
    effect = optimize.brentq(lambda d: power(d, n, alpha) - target_power, 0.0, high, xtol=1e-12)
    return float(effect * sd)


def seeds_for_margin(sd: float, margin: float, alpha: float, target_power: float, limit: int = 10**7) -> float:
    """Seeds needed to show "loss smaller than the margin" with ``target_power`` when the true ΔF1 is 0.

    The smallest n >= 2 at which the one-sided test of :func:`noninferiority_p`
    at ``alpha`` has that power, for differences with SD ``sd`` (the run's).
    NaN when ``sd`` is unknown; ``limit`` caps hopeless cases (inf beyond).
    """
    if math.isnan(sd):
        return math.nan
    if sd == 0:
        return 2.0
    effect = margin / sd

    def enough(n: int) -> bool:
        return power(effect, n, alpha, "larger") >= target_power

    high = 2
    while not enough(high):
        if high >= limit:
            return math.inf
        high = min(2 * high, limit)
    low = max(2, high // 2)
    if enough(low):
        return float(low)
    while high - low > 1:  # enough(high), not enough(low)
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def compare_paired(
    differences: np.ndarray, margin: float, confidence: float, resamples: int, target_power: float
) -> dict[str, Any]:
    """Every paired statistic of one case against the baseline (summary.csv columns).

    ``alpha = 1 - confidence``: the t and bootstrap intervals are at
    ``confidence``, the verdict's interval at ``1 - 2 alpha``, and the power
    figures at ``alpha`` and ``target_power``. Holm's p is added across cases
    by the caller (:func:`holm`).
    """
    values = np.asarray(differences, np.float64)
    alpha = 1 - confidence
    sd = _sd(values)
    margin_interval = t_interval(values, 1 - 2 * alpha)
    return {
        "paired_n": int(values.size),
        "delta_f1": float(values.mean()) if values.size else math.nan,
        "delta_sd": sd,
        "delta_ci_low": (ci := t_interval(values, confidence))[0],
        "delta_ci_high": ci[1],
        "delta_boot_low": (boot := bootstrap_interval(values, confidence, resamples))[0],
        "delta_boot_high": boot[1],
        "paired_p": paired_p(values),
        "margin_ci_low": margin_interval[0],
        "margin_ci_high": margin_interval[1],
        "noninferiority_p": noninferiority_p(values, margin),
        "verdict": verdict(margin_interval, margin),
        "mde": minimum_detectable(sd, int(values.size), alpha, target_power),
        "seeds_for_margin": seeds_for_margin(sd, margin, alpha, target_power),
    }
