"""The cheapest recipe, searched (config ``search``, ``rules/search.smk``): families in, one recipe out.

A *family* is a recipe template whose parameters are lists or ranges
(``bits: 1..7``; ``{codec: avif, tile: 1024, quality: 5..60/5}``; ``{window:
[2, 3, 4], stride: [2, 3, 4]}``). Its *candidates* are the template's
combinations, each a case named after the family and the values that vary
(``bits_b3``, ``avif_q30``, ``pool_w3s2``).

**Stage one, no training.** Every candidate is encoded, read back and measured
(bytes per image, PSNR, SSIM) by the rules every case runs (pool, store,
fidelity). Within each family the candidates are put in order of bytes; those
storing as many bytes as the baseline or more are left out (and listed).

**Stage two: the cheapest, then bisection, the families one after another.**
Within a family, fewer bytes nearly always cost more F1, so the cheapest
candidate within the margin is found by bisection over the family's order.
Each test judges one candidate against the baseline (paired by seed, with the
looks of ``analysis.sequential``). The cheapest candidate is tested first
(where it holds, one test ends the family); then the middle of what is left:
"loss smaller than the margin" moves the search to the cheaper half, any other
verdict to the dearer half. A family of ``n`` candidates is judged at most
``k = 1 + ceil(log2(n))`` times. The families are walked in config order,
each among its candidates cheaper than the best found so far (a dearer one
cannot be the answer, so it is not trained).

**Error control: Bonferroni over every test the search may make.** Each of the
``F`` families spends ``alpha / F``, split evenly over its ``k`` possible tests
and, within a test, over the ``K`` looks: every look's interval is the
``1 - 2 alpha / (F k K)`` t-interval. The search names a recipe only when its
test said "loss smaller than the margin", so it names one whose true loss is
larger than the margin only if some test said so wrongly, and by the union
bound over the at most ``sum_f k_f K`` one-sided tests that chance is at most
``alpha``, whatever the order, the pruning or the true losses (monotone or
not: monotonicity only makes the bisection find the cheapest). A fixed-sequence
walk (Maurer, Hothorn & Lehmacher 1995) spends no alpha on its order but tests
every candidate down to the first failure: 7 tests on ``bits: 1..7`` where
this walk needs 1 to 4, and each test costs the seeds of its looks;
``docs/statistics.md`` gives the numbers.

The walk is a pure function of the runs' scores: each step of the search (a
Snakemake checkpoint) replays it from the start on the runs it was given and
plans the seeds of the test it stopped at. Training is deterministic by seed,
so an interrupted search resumes where it stopped and retrains nothing.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poolup import stats as paired
from poolup.errors import PoolupError
from poolup.recipe import Recipe
from poolup.records import read_case_records, read_json, write_json

PathLike = str | os.PathLike[str]
STAGE = "search"
# The recipe keys a family may give; a list or range gives several values (one candidate each).
RECIPE_KEYS = ("window", "stride", "bits", "codec", "quality", "tile")
# A varying key's letter in a candidate's name (window 3, stride 2 -> w3s2).
NAME_LETTERS = {"window": "w", "stride": "s", "bits": "b", "quality": "q", "tile": "t", "codec": ""}
RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:/\s*(\d+)\s*)?$")
# Why a candidate was not trained (search.csv's `reason`).
NOT_SMALLER = "stores as many bytes as the baseline or more"
DEARER = "dearer than the best recipe found before its family was walked"
NOT_REACHED = "not reached by the bisection"


def parameter_values(family: str, key: str, value: Any) -> list[Any]:
    """The values of one key of a family: a single value, a list, or a range ``"a..b"`` / ``"a..b/step"``."""
    if isinstance(value, list):
        if not value:
            raise PoolupError(f"config key 'search.families.{family}.{key}': an empty list; give at least one value")
        return list(dict.fromkeys(value))
    if isinstance(value, str) and key != "codec":
        match = RANGE.match(value)
        if not match:
            raise PoolupError(
                f"config key 'search.families.{family}.{key}': {value!r} is not a number, a list or a range; "
                "write e.g. 1..8 or 5..60/5"
            )
        low, high, step = int(match[1]), int(match[2]), int(match[3] or 1)
        if high < low or step < 1:
            raise PoolupError(
                f"config key 'search.families.{family}.{key}': the range {value!r} is empty; write low..high"
            )
        return list(range(low, high + 1, step))
    return [value]


def candidate_name(family: str, spec: Mapping[str, Any], varying: Sequence[str]) -> str:
    """A candidate's case name: the family and the values that vary (``pool``, window 3, stride 2: ``pool_w3s2``)."""
    return f"{family}_" + "".join(f"{NAME_LETTERS[key]}{spec[key]}" for key in varying) if varying else family


def family_candidates(search: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Family -> candidate case name -> its ``cases`` entry (window and stride 1 unless given), in config order."""
    families: dict[str, dict[str, dict[str, Any]]] = {}
    for family, template in search["families"].items():
        values = {key: parameter_values(family, key, template[key]) for key in RECIPE_KEYS if key in template}
        varying = [key for key in RECIPE_KEYS if len(values.get(key, ())) > 1]
        candidates: dict[str, dict[str, Any]] = {}
        for combination in itertools.product(*values.values()):
            spec = {"window": 1, "stride": 1, **dict(zip(values, combination))}
            try:
                spec["label"] = Recipe.from_case(spec).describe()  # also checks the combination (bits with codec...)
            except (PoolupError, TypeError, ValueError) as error:
                raise PoolupError(f"config key 'search.families.{family}': {spec}: {error}") from None
            candidates[candidate_name(family, spec, varying)] = spec
        families[family] = candidates
    return families


def search_cases(
    families: Mapping[str, Mapping[str, dict[str, Any]]], config_cases: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every candidate of ``families`` (:func:`family_candidates`) as ``cases`` entries, by name.

    A candidate's name may not be a case's name of the config (one name, one recipe).
    """
    cases: dict[str, dict[str, Any]] = {}
    for candidates in families.values():
        for name, spec in candidates.items():
            if name in config_cases or name in cases:
                raise PoolupError(
                    f"config key 'search.families': the candidate name {name!r} is already a case's name; "
                    "rename the family or the case"
                )
            cases[name] = spec
    return cases


def most_tests(n: int) -> int:
    """The most candidates the walk judges in a family of ``n``: the cheapest, then a bisection of the
    other ``n - 1`` (``ceil(log2(n))`` tests)."""
    return 1 + math.ceil(math.log2(n)) if n else 0


def test_alpha(alpha: float, family_sizes: Sequence[int], family: int, n_looks: int) -> float:
    """What each one-sided test of family number ``family`` spends at each look (the module docstring)."""
    return alpha / len(family_sizes) / most_tests(family_sizes[family]) / n_looks


@dataclass(frozen=True)
class Judged:
    """A candidate's verdict at the look that decided it (or the last look): its seeds and interval."""

    verdict: str
    seeds: int
    low: float
    high: float
    mean: float


@dataclass(frozen=True)
class Need:
    """The seeds a candidate (and the baseline) must have before its next look can be judged."""

    seeds: int


Outcome = Callable[[str, float], Judged | Need]


@dataclass
class Walk:
    """What a search found with the runs it was given (:func:`walk`)."""

    tests: list[dict[str, Any]] = field(default_factory=list)  # one per judged candidate, in the walk's order
    need: dict[str, int] = field(default_factory=dict)  # candidate -> seeds its next look needs (empty: done)
    best: dict[str, str | None] = field(default_factory=dict)  # family -> its cheapest candidate shown within
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it was not trained
    answer: str | None = None  # the cheapest candidate shown within the margin, of every family walked

    @property
    def done(self) -> bool:
        return not self.need


def walk(
    order: Mapping[str, Sequence[str]],
    nbytes: Mapping[str, float],
    outcome: Outcome,
    alpha: float,
    n_looks: int,
    sizes: Mapping[str, int] | None = None,
) -> Walk:
    """Walk the families in ``order`` (family -> candidates cheapest first) until a test needs seeds.

    ``outcome(candidate, alpha_per_look)`` judges one candidate with the runs at hand:
    :class:`Judged`, or :class:`Need` when its next look's seeds are not trained yet; the walk
    then stops at that family (the families after it wait: their candidates depend on its best).
    ``sizes`` (family -> candidates before any was left out) fixes each family's share of
    ``alpha``; by default the lengths in ``order``.
    """
    sizes = dict(sizes or {family: len(names) for family, names in order.items()})
    families = list(order)
    result = Walk()
    for index, family in enumerate(families):
        spend = test_alpha(alpha, [sizes[f] for f in families], index, n_looks)
        limit = nbytes[result.answer] if result.answer else math.inf
        candidates = [name for name in order[family] if nbytes[name] < limit]
        result.skipped.update({name: DEARER for name in order[family] if nbytes[name] >= limit})
        low, high, best = 0, len(candidates) - 1, None
        tested: set[str] = set()
        while low <= high:
            # The cheapest first (where it holds, as 1 bit does on MNIST, one test ends the family), then halves.
            middle = 0 if not tested else (low + high) // 2
            name = candidates[middle]
            judged = outcome(name, spend)
            if isinstance(judged, Need):
                result.need[name] = judged.seeds
                result.best[family] = best
                return result
            tested.add(name)
            result.tests.append({"family": family, "case": name, "look_alpha": spend, **judged.__dict__})
            if judged.verdict == paired.SMALLER:
                best, high = name, middle - 1
            else:
                low = middle + 1
        result.skipped.update({name: NOT_REACHED for name in candidates if name not in tested})
        result.best[family] = best
        if best is not None and (result.answer is None or nbytes[best] < nbytes[result.answer]):
            result.answer = best
    return result


def judge_candidate(
    case: Mapping[int, float], baseline: Mapping[int, float], looks: Sequence[int], margin: float, alpha_per_look: float
) -> Judged | Need:
    """A candidate's sequential verdict from its per-seed scores and the baseline's (seeds ``0..L-1`` at look ``L``).

    The looks are judged in order on the first ``L`` paired seeds, each with the
    ``1 - 2 alpha_per_look`` t-interval; the first decided look ends the test, an
    undecided last look is "undecided". A look whose seeds are missing: :class:`Need`.
    """
    from poolup.sequential import verdict_bounds  # scipy, imported when a search is judged

    judged = None
    for seeds in looks:
        if any(seed not in case or seed not in baseline for seed in range(seeds)):
            return Need(seeds)
        differences = np.array([case[seed] - baseline[seed] for seed in range(seeds)])
        low, high = (float(end[0, 0]) for end in verdict_bounds(differences, [seeds], alpha_per_look))
        judged = Judged(paired.verdict((low, high), margin), seeds, low, high, float(differences.mean()))
        if judged.verdict != paired.UNDECIDED:
            break
    assert judged is not None  # check_looks: at least one look
    return judged


def case_records(paths: Sequence[PathLike]) -> dict[str, dict[str, Any]]:
    """Case -> its record (``storage.json``, ``fidelity.json``), each checked to be made for its case's folder."""
    return {record["case"]: record for record in read_case_records(paths, in_case_folders=True)}


def bytes_per_image(storage: Sequence[PathLike]) -> dict[str, float]:
    """Case -> bytes per stored image, from ``storage.json`` records."""
    return {case: float(record["bytes_per_image"]) for case, record in case_records(storage).items()}


def family_order(
    families: Mapping[str, Sequence[str]], nbytes: Mapping[str, float], baseline: str
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each family's candidates cheapest first (ties by name), without those storing the baseline's bytes or more."""
    order, skipped = {}, {}
    for family, names in families.items():
        kept = [name for name in names if nbytes[name] < nbytes[baseline]]
        skipped.update({name: NOT_SMALLER for name in names if name not in kept})
        order[family] = sorted(kept, key=lambda name: (nbytes[name], name))
    return order, skipped


def plan_runs(result: Walk, scores: Mapping[str, Mapping[int, float]], baseline: str) -> dict[str, int]:
    """Seeds each case has after this step: the runs given (each a prefix 0..n-1), the needed ones, the baseline's."""
    runs = {case: len(seeds) for case, seeds in scores.items() if seeds}
    for case, seeds in result.need.items():
        runs[case] = max(runs.get(case, 0), seeds)
    runs[baseline] = max([runs.get(baseline, 0), *result.need.values()])
    return runs


def search_step(
    *,
    storage: Sequence[PathLike],
    metrics: Sequence[PathLike],
    previous: Sequence[PathLike],
    record: PathLike,
    step: int | str,
    baseline: str,
    families: Mapping[str, Sequence[str]],
    looks: Sequence[int],
    analysis: Mapping[str, Any],
) -> dict[str, Any]:
    """One step of a search (the ``search_step`` checkpoint): replay the walk on the runs given and plan the next.

    The record holds ``runs`` (seeds per case once the step's plan is trained: what the next
    step is given), ``next`` (seeds the walk waits for; null when the search has ended), the
    tests judged so far and the answer.
    """
    from poolup.sequential import check_looks, macro_f1_by_case

    looks, index = check_looks(looks), int(step)
    nbytes = bytes_per_image(storage)
    scores = macro_f1_by_case(metrics, analysis.get("test_images", "stored"))
    given = {case: len(seeds) for case, seeds in scores.items()}
    if index > 1:
        planned = read_json(previous[0], stage=STAGE)["runs"]
        if given != planned:
            raise PoolupError(
                f"search step {index}: the runs given ({given}) are not what step {index - 1} planned ({planned}); "
                "rerun the workflow"
            )
    order, skipped = family_order(families, nbytes, baseline)
    base = scores.get(baseline, {})

    def outcome(name: str, alpha_per_look: float) -> Judged | Need:
        return judge_candidate(scores.get(name, {}), base, looks, analysis["margin"], alpha_per_look)

    alpha = 1 - analysis["confidence"]
    result = walk(order, nbytes, outcome, alpha, len(looks), sizes={f: len(names) for f, names in families.items()})
    if index > 1 and result.need and all(given.get(case, 0) >= seeds for case, seeds in result.need.items()):
        raise PoolupError(f"search step {index}: the walk asks again for runs it was given; rerun the workflow")
    content = {
        "stage": STAGE,
        "step": index,
        "looks": looks,
        "margin": analysis["margin"],
        "alpha": alpha,
        "test_images": analysis.get("test_images", "stored"),
        "order": order,
        "tests": result.tests,
        "best": result.best,
        "skipped": {**skipped, **result.skipped},
        "answer": result.answer,
        "runs": plan_runs(result, scores, baseline),
        "next": dict(result.need) or None,
    }
    write_json(record, content)
    return content


# search.csv: every candidate, cheapest first within its family (families in walk order).
COLUMNS = (
    "family",
    "case",
    "label",
    "bytes_per_image",
    "byte_ratio",
    "psnr_db",
    "ssim",
    "tested",
    "seeds",
    "delta_f1",
    "delta_ci_low",
    "delta_ci_high",
    "look_alpha",
    "verdict",
    "reason",
    "answer",
)


def search_table(
    record: Mapping[str, Any],
    families: Mapping[str, Sequence[str]],
    storage: Mapping[str, Mapping[str, Any]],
    fidelity: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str],
    baseline: str,
) -> Any:
    """One row per candidate (``COLUMNS``) from the final step's record and the candidates' stage-one records."""
    import pandas as pd

    tests = {test["case"]: test for test in record["tests"]}
    base = storage[baseline]["bytes_per_image"]
    rows = []
    for family, names in families.items():
        for name in sorted(names, key=lambda case: (storage[case]["bytes_per_image"], case)):
            test = tests.get(name, {})
            rows.append(
                {
                    "family": family,
                    "case": name,
                    "label": labels.get(name, name),
                    "bytes_per_image": storage[name]["bytes_per_image"],
                    "byte_ratio": storage[name]["bytes_per_image"] / base,
                    "psnr_db": np.nan if fidelity[name]["psnr_db"] is None else fidelity[name]["psnr_db"],
                    "ssim": fidelity[name]["ssim"],
                    "tested": bool(test),
                    "seeds": record["runs"].get(name, 0),
                    "delta_f1": test.get("mean", np.nan),
                    "delta_ci_low": test.get("low", np.nan),
                    "delta_ci_high": test.get("high", np.nan),
                    "look_alpha": test.get("look_alpha", np.nan),
                    "verdict": test.get("verdict", ""),
                    "reason": "" if test else record["skipped"].get(name, NOT_REACHED),
                    "answer": name == record["answer"],
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def runs_spent(record: Mapping[str, Any]) -> int:
    """Runs the search trained (every case's seeds, the baseline's included)."""
    return int(sum(record["runs"].values()))


def grid_candidates(table: Any) -> int:
    """The candidates a grid would train to compare with the search: those storing fewer bytes than the baseline."""
    return int((table["reason"] != NOT_SMALLER).sum())


def answer_sentence(table: Any, record: Mapping[str, Any]) -> str:
    """The answer in one sentence: the cheapest recipe shown within the margin, or that none was."""
    margin = record["margin"]
    named = table[table["answer"]]
    if named.empty:
        return (
            f"No candidate was shown within the margin (a loss of macro F1 smaller than {margin}) on the "
            f"{record['test_images']} test images; the baseline stands."
        )
    row = named.iloc[0]
    return (
        f"The cheapest recipe shown within the margin (a loss of macro F1 smaller than {margin}, "
        f"on the {record['test_images']} test images) is {row.case} ({row.label}): "
        f"{row.byte_ratio:.0%} of the baseline's bytes ({row.bytes_per_image:.1f} B per image), "
        f"ΔF1 {row.delta_f1:+.4f} [{row.delta_ci_low:+.4f}, {row.delta_ci_high:+.4f}] at {int(row.seeds)} seeds."
    )


def search_markdown(table: Any, record: Mapping[str, Any]) -> str:
    """search.md: the answer, the runs spent against a grid, then every candidate."""
    looks = record["looks"]
    spent, compared = runs_spent(record), grid_candidates(table)
    grid = (compared + 1) * looks[-1]  # every candidate and the baseline at the last look's seeds
    families = list(dict.fromkeys(table["family"]))
    lines = [
        answer_sentence(table, record),
        "",
        f"The search trained {spent} runs; a grid of the same {compared} candidates and the baseline "
        f"at {looks[-1]} seeds trains {grid} ({spent / grid:.0%}). {len(table)} candidates in {len(families)} "
        f"families; {int(table['tested'].sum())} tested, within each family in order of bytes the cheapest first, "
        f"then by bisection, the families one after another (looks {', '.join(map(str, looks))}; every look's "
        "interval at 1 - 2 x look_alpha, Bonferroni over every test the search may make: docs/statistics.md).",
        "",
        "| family | case | recipe | bytes/image | of baseline | PSNR dB | seeds | ΔF1 [interval] | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for row in table.itertuples():
        interval = f"{row.delta_f1:+.4f} [{row.delta_ci_low:+.4f}, {row.delta_ci_high:+.4f}]" if row.tested else ""
        verdict = row.verdict if row.tested else f"not tested: {row.reason}"
        name = f"**{row.case}**" if row.answer else row.case
        lines.append(
            f"| {row.family} | {name} | {row.label} | {row.bytes_per_image:.1f} | {row.byte_ratio:.0%} | "
            f"{row.psnr_db:.1f} | {int(row.seeds)} | {interval} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def summarise(
    *,
    record: PathLike,
    storage: Sequence[PathLike],
    fidelity: Sequence[PathLike],
    table: PathLike,
    markdown: PathLike,
    families: Mapping[str, Sequence[str]],
    labels: Mapping[str, str],
    baseline: str,
) -> Any:
    """Write search.csv and search.md from the final step's record (the ``search_summary`` rule)."""
    from poolup.records import write_csv, write_text

    final = read_json(record, stage=STAGE)
    if final["next"] is not None:
        raise PoolupError(f"{record}: the search has not ended (it waits for {final['next']}); rerun the workflow")
    frame = search_table(final, families, case_records(storage), case_records(fidelity), labels, baseline)
    write_csv(table, frame)
    write_text(markdown, search_markdown(frame, final))
    return frame
