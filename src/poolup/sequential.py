"""Sequential design (``analysis.sequential.looks``, ``rules/sequential.smk``): seeds only where the verdict is open.

A design lists rising seed counts, the *looks* ``L_1 < ... < L_K``. Every case
trains seeds ``0..L_1-1``; at look ``k`` each case still open is judged on its
paired differences over seeds ``0..L_k-1``. A case whose verdict is decided
("loss smaller than the margin" or "larger") trains no further seed; the open
ones train on to the next look, until each is decided or the last look is
reached ("undecided" there). The baseline trains to every look some case needs.
A fixed design of ``n`` seeds is the one-look design ``[n]``.

**Error spending: Bonferroni over the looks.** Each look's verdict interval is
the ``1 - 2 alpha / K`` t-interval (:func:`look_alpha`): each of its one-sided
tests spends ``alpha / K`` at every look, so by the union bound the chance of
a wrong "loss smaller than the margin" over the whole design is at most
``alpha`` (and the same for "larger"). That bound holds whatever the
correlation between looks and exactly under the t-distribution of a few seeds;
it needs no planned maximum and no normal approximation. An alpha-spending
function such as O'Brien-Fleming (Lan-DeMets) would keep more of ``alpha`` for
the last look, but its boundaries come from the joint normal law of the
looks' z-statistics (approximate with 10 seeds and an estimated SD), and it
spends almost nothing early (at 10 of 160 seeds it needs z > 7.8): it would
train every easily decided case to the middle looks, while with Bonferroni
most cases of a frontier are decided at the first looks, which is where a
sequential design saves seeds. ``tests/test_sequential.py`` shows the bound
by simulation, and that re-testing at ``alpha`` at every look exceeds it.

The verdict at each look depends only on the seeds up to that look, and
training is deterministic by seed, so a design is path independent: resuming
an interrupted design, or re-judging a finished one under a longer list of
looks (every look at ``alpha / K`` of the new list), gives exactly what the
new list would have given from the start. Extending the list after seeing
the results is itself a look at the data: the guarantee is for the list
declared before the design starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from poolup import stats as paired
from poolup.errors import PoolupError
from poolup.eval_images import test_scores
from poolup.records import read_json, write_json

PathLike = str | os.PathLike[str]
# Verdict codes of the vectorised functions: the index into VERDICT_BY_CODE.
UNDECIDED_CODE, SMALLER_CODE, LARGER_CODE = 0, 1, 2
VERDICT_BY_CODE: tuple[str, ...] = (paired.UNDECIDED, paired.SMALLER, paired.LARGER)
# The error spending this module implements (summary.md and the look records name it).
SPENDING = "Bonferroni over the looks"
# What the design adds to summary.csv (README, "Sequential design"): where each case's verdict was
# decided (blank for the baseline), and the seeds of every case saved against a fixed design.
VERDICT_LOOK_COLUMNS: tuple[str, ...] = ("look_alpha", "looks_used", "deciding_look")
DESIGN_COLUMNS: tuple[str, ...] = (*VERDICT_LOOK_COLUMNS, "seeds_saved")
STAGE = "look"


def look_alpha(alpha: float, n_looks: int) -> float:
    """The error each one-sided verdict test spends at each of ``n_looks`` looks: ``alpha / n_looks``."""
    return alpha / n_looks


def verdict_bounds(
    differences: np.ndarray, looks: Sequence[int], alpha_per_look: float | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Ends of the verdict's ``1 - 2 alpha_per_look`` t-interval of the mean ΔF1 at each look.

    Parameters
    ----------
    differences : array, shape (n,) or (designs, n)
        Per-seed differences ``case - baseline`` in seed order (one row per design).
    looks : sequence of int
        Seed counts; a look beyond ``n`` gives NaN.
    alpha_per_look : float or sequence of float
        What each one-sided test spends at a look (:func:`look_alpha`), or one value per look
        (another spending rule, for comparison: ``bench/sequential.py``).

    Returns
    -------
    low, high : ndarray, shape (designs, len(looks))
        The interval of :func:`poolup.stats.t_interval` over the first ``L`` seeds of each row.
    """
    from scipy import stats  # here, not at the top: the workflow imports this module at every start

    values = np.atleast_2d(np.asarray(differences, np.float64))
    low = np.full((values.shape[0], len(looks)), np.nan)
    high = np.full_like(low, np.nan)
    spent = np.broadcast_to(np.asarray(alpha_per_look, np.float64), (len(looks),))
    for index, n in enumerate(looks):
        if n < 2 or n > values.shape[1]:
            continue
        confidence = 1 - 2 * float(spent[index])  # written as stats.t_interval writes it, for identical numbers
        part = values[:, :n]
        mean = part.mean(axis=1)
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * part.std(axis=1, ddof=1) / math.sqrt(n)
        low[:, index], high[:, index] = mean - half, mean + half
    return low, high


def look_verdicts(low: np.ndarray, high: np.ndarray, margin: float) -> np.ndarray:
    """Verdict code at each look from the interval ends (:func:`poolup.stats.verdict`, vectorised; NaN: undecided)."""
    return np.where(low > -margin, SMALLER_CODE, np.where(high < -margin, LARGER_CODE, UNDECIDED_CODE))


def first_decision(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each design stops: the index of its first decided look (-1: none) and that verdict code."""
    decided = codes != UNDECIDED_CODE
    first = np.where(decided.any(axis=1), decided.argmax(axis=1), -1)
    verdict = np.where(first >= 0, codes[np.arange(codes.shape[0]), np.maximum(first, 0)], UNDECIDED_CODE)
    return first, verdict


def simulate(
    looks: Sequence[int],
    delta: float,
    sd: float,
    margin: float,
    alpha: float,
    designs: int,
    random_state: int,
    alpha_per_look: float | Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``designs`` simulated designs with normal per-seed differences (mean ``delta``, SD ``sd``).

    ``alpha_per_look`` defaults to the design's (:func:`look_alpha`); pass
    ``alpha`` to re-test naively at every look. Returns, per design, the
    verdict code where it stopped and the seeds it trained (the deciding
    look's count, else the last look's): to check error rates, or to plan
    looks from a pilot's ΔF1 and SD.
    """
    looks = check_looks(looks)
    rng = np.random.default_rng(random_state)
    differences = rng.normal(delta, sd, size=(designs, looks[-1]))
    spent = look_alpha(alpha, len(looks)) if alpha_per_look is None else alpha_per_look
    first, verdict = first_decision(look_verdicts(*verdict_bounds(differences, looks, spent), margin))
    seeds = np.asarray(looks)[np.where(first >= 0, first, len(looks) - 1)]
    return verdict, seeds


def configured_looks(analysis: Mapping[str, Any]) -> list[int] | None:
    """The looks of the config section ``analysis`` (``sequential.looks``); None in a fixed design."""
    looks = (analysis.get("sequential") or {}).get("looks")
    return check_looks(looks) if looks else None


def check_looks(looks: Sequence[int]) -> list[int]:
    """The looks as a list of int, or a one-line error: at least one, each >= 2, rising."""
    looks = [int(n) for n in looks]
    if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:])):
        raise PoolupError(
            f"config key 'analysis.sequential.looks': {looks} is not a rising list of seed counts >= 2; "
            "write e.g. [10, 20, 40, 80, 160]"
        )
    return looks


def look_intervals(differences: np.ndarray, looks: Sequence[int], margin: float, alpha: float) -> list[dict[str, Any]]:
    """What each look said of one case: per look its ``differences`` reach, the seeds, the verdict interval and verdict.

    ``differences`` are the case's per-seed differences ``case - baseline`` over seeds
    ``0..n-1``; each look up to ``n`` seeds is judged on its first seeds at the design's
    level (:func:`look_alpha`). Returns one dict per look reached: ``seeds``, ``low``,
    ``high`` (the interval's ends) and ``verdict``; ``summary.md`` shows them per look.
    """
    looks = check_looks(looks)
    reached = [count for count in looks if count <= int(np.asarray(differences).size)]
    if not reached:
        return []
    low, high = verdict_bounds(differences, reached, look_alpha(alpha, len(looks)))
    codes = look_verdicts(low, high, margin)[0]
    return [
        {"seeds": seeds, "low": float(a), "high": float(b), "verdict": VERDICT_BY_CODE[code]}
        for seeds, a, b, code in zip(reached, low[0], high[0], codes)
    ]


def case_outcome(
    differences: np.ndarray, looks: Sequence[int], margin: float, alpha: float, judged: bool = True
) -> dict[str, Any]:
    """One case's verdict in the design ``looks``, from its per-seed differences over seeds ``0..n-1``.

    The case is judged at each look up to ``n`` seeds; ``n`` must be a look's
    count and no look before it may have decided (the design trains no seed
    after a verdict). Returns the verdict, its interval at the last look
    judged (``margin_ci_low``/``margin_ci_high``), ``look_alpha``,
    ``looks_used``, ``deciding_look`` (1-based; NaN while undecided) and
    ``noninferiority_p``: the one-sided p of "loss smaller than the margin" at
    the last look judged, times the number of looks (Bonferroni, capped at 1),
    so that it is at most ``alpha`` exactly when the design calls the loss smaller.

    ``judged=False``: scores the design did not judge (the other kind of test images,
    :mod:`poolup.eval_images`), on the seeds the design trained: the verdict at the last
    look those seeds reach, at the same per-look level, whatever an earlier look said (the
    design stopped on other scores, so a verdict before the last look stops nothing).
    """
    looks = check_looks(looks)
    history = look_intervals(differences, looks, margin, alpha)
    n = int(np.asarray(differences).size)
    if not history or history[-1]["seeds"] != n:
        raise PoolupError(
            f"{n} paired seeds is not the seed count of a look ({', '.join(map(str, looks))}); rerun the workflow, "
            "which trains each case to a look"
        )
    first = next((index for index, look in enumerate(history) if look["verdict"] != paired.UNDECIDED), -1)
    if judged and 0 <= first < len(history) - 1:
        raise PoolupError(
            f"the verdict was decided at look {first + 1} ({history[first]['seeds']} seeds) but {n} seeds were given; "
            "a design trains no seed after a verdict: rerun the workflow"
        )
    last = history[-1]
    return {
        "margin_ci_low": last["low"],
        "margin_ci_high": last["high"],
        "verdict": last["verdict"],
        "look_alpha": look_alpha(alpha, len(looks)),
        "looks_used": len(history),
        "deciding_look": float(len(history)) if last["verdict"] != paired.UNDECIDED else math.nan,
        # The fixed-sample p at alpha would read "p < alpha" beside "undecided" (the verdict spends alpha / K).
        "noninferiority_p": min(1.0, len(looks) * paired.noninferiority_p(differences, margin)),
    }


def macro_f1_by_case(metrics: Sequence[PathLike], test_images: str = "stored") -> dict[str, dict[int, float]]:
    """Case -> seed -> test macro F1 on the ``stored`` or ``raw`` test images, from runs' ``test_metrics.json``."""
    scores: dict[str, dict[int, float]] = {}
    for path in metrics:
        record = read_json(path, stage="train")
        scores.setdefault(record["case"], {})[int(record["seed"])] = float(test_scores(record, test_images)["macro_f1"])
    return scores


def judge_look(
    *,
    metrics: Sequence[PathLike],
    previous: Sequence[PathLike],
    record: PathLike,
    look: int | str,
    baseline: str,
    cases: Sequence[str],
    looks: Sequence[int],
    analysis: Mapping[str, Any],
) -> dict[str, Any]:
    """Judge every case at one look and plan the next (the ``look`` checkpoint); return the record written.

    Parameters
    ----------
    metrics : sequence of path-like
        ``test_metrics.json`` of the seeds each case has at this look: what
        the previous look planned (``next``), every case to the first look.
    previous : sequence of path-like
        The previous look's record (none at the first look).
    record : path-like
        The record to write: per case its seeds, verdict, looks used and
        deciding look; ``design`` (seeds per case so far), ``open`` (cases
        still undecided) and ``next`` (seeds per case at the next look, or
        null when the design has ended: every case decided, or the last look).
    look : int or str
        This look's number, from 1.
    baseline, cases : str, sequence of str
        The reference case and every case, in config order.
    looks : sequence of int
        The design (``analysis.sequential.looks``).
    analysis : mapping
        ``margin`` and ``confidence`` (``alpha = 1 - confidence``), and ``test_images``: the
        runs' scores on which test images (``stored`` or ``raw``) the looks judge.
    """
    looks, index = check_looks(looks), int(look)
    if not 1 <= index <= len(looks):
        raise PoolupError(f"look {index} is not one of the {len(looks)} looks of analysis.sequential.looks")
    if index == 1:
        planned = dict.fromkeys(cases, looks[0])
    elif previous:
        planned = read_json(previous[0], stage=STAGE)["next"]
        if planned is None:
            raise PoolupError(f"look {index - 1} ended the design (every case decided): there is no look {index}")
    else:
        raise PoolupError(f"look {index}: the record of look {index - 1} was not given; rerun the workflow")
    scores = macro_f1_by_case(metrics, analysis.get("test_images", "stored"))
    have = {case: len(scores.get(case, {})) for case in cases}
    if have != {case: planned.get(case) for case in cases}:
        raise PoolupError(
            f"look {index}: the runs given ({have}) are not what the previous look planned ({planned}); "
            "rerun the workflow"
        )
    alpha = 1 - analysis["confidence"]
    judged: dict[str, Any] = {}
    for case in cases:
        if case == baseline:
            continue
        _, differences = paired.paired_differences(scores[case], scores[baseline])
        judged[case] = {"seeds": have[case], **case_outcome(differences, looks, analysis["margin"], alpha)}
        deciding = judged[case]["deciding_look"]
        judged[case]["deciding_look"] = None if math.isnan(deciding) else int(deciding)  # JSON has no NaN
    open_cases = [case for case, row in judged.items() if row["verdict"] == paired.UNDECIDED]
    final = not open_cases or index == len(looks)
    design = {case: have[case] for case in cases}
    content = {
        "stage": STAGE,
        "look": index,
        "looks": looks,
        "seeds": looks[index - 1],
        "spending": SPENDING,
        "look_alpha": look_alpha(alpha, len(looks)),
        "margin": analysis["margin"],
        "cases": judged,
        "design": design,
        "open": open_cases,
        "next": None
        if final
        else {case: looks[index] if case in open_cases or case == baseline else design[case] for case in cases},
    }
    write_json(record, content)
    return content


def check_record(path: PathLike, summary: Any) -> None:
    """The verdicts and seeds of a look's record (:func:`judge_look`) must be those of ``summary``."""
    record = read_json(path, stage=STAGE)
    for row in summary.itertuples():
        if row.case in record["cases"]:
            shown = record["cases"][row.case]
            if (shown["verdict"], shown["seeds"]) != (row.verdict, row.seeds):
                raise PoolupError(
                    f"{path}: case {row.case} is {shown['verdict']!r} with {shown['seeds']} seeds there, but the runs"
                    f" given make it {row.verdict!r} with {row.seeds}; rerun the workflow"
                )
    if record["next"] is not None:
        raise PoolupError(f"{path}: look {record['look']} did not end the design; rerun the workflow")


def design_text(summary: Any, looks: Sequence[int] | None, alpha: float) -> str:
    """One sentence on the design and the seeds it saved, for ``summary.md`` (``summary``: the summary table)."""
    trained = int(summary["seeds"].sum())
    if not looks:
        return f"Fixed design: every case trained {seeds_text(int(summary['seeds'].max()))} ({trained} runs)."
    fixed = len(summary) * looks[-1]
    return (
        f"Sequential design: looks at {', '.join(map(str, looks))} seeds; each look's verdict at"
        f" {look_alpha(alpha, len(looks)):.3g} per side ({SPENDING}: alpha {alpha:g} over {len(looks)} looks)."
        f" {trained} runs trained; a fixed design of {looks[-1]} seeds per case trains {fixed}:"
        f" {fixed - trained} saved ({(fixed - trained) / fixed:.0%})."
    )


def seeds_text(count: int) -> str:
    """A seed count as text: "1 seed", "20 seeds"."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def look_text(looks_used: float, seeds: float, looks: Sequence[int] | None) -> str:
    """The last look at which a case was judged, on ``seeds`` paired seeds, as text: "look 2 of 5 (20 seeds)"."""
    return f"look {int(looks_used)} of {len(looks) if looks else 1} ({seeds_text(int(seeds))})"


def decided_text(verdict: str, looks_used: float, seeds: float, looks: Sequence[int] | None) -> str:
    """Where a case's verdict was decided, as display text (``result.csv``, ``summary.md``, ``frontier.md``):
    the look and its seeds in a sequential design ("look 2 of 5 (20 seeds)"), the seeds in a fixed one."""
    text = look_text(looks_used, seeds, looks) if looks else seeds_text(int(seeds))
    if verdict == paired.UNDECIDED:
        return f"undecided after {text}" if looks else f"undecided at {text}"
    return text
