"""The search (config `search`, src/poolup/search.py): candidates from families, the walk, its error, a real search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TINY_TRAINING, run_snakemake, snakemake_command, write_config

from poolup import search
from poolup import stats as paired
from poolup.config import add_search_cases, load_schema, validate_config
from poolup.errors import PoolupError
from poolup.sequential import VERDICT_BY_CODE, first_decision, look_verdicts, verdict_bounds

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")


# --- candidates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, [3]), ([2, 4, 2], [2, 4]), ("1..4", [1, 2, 3, 4]), ("5..20/5", [5, 10, 15, 20]), (" 2 .. 3 ", [2, 3])],
)
def test_a_key_is_a_value_a_list_or_a_range(value, expected):
    assert search.parameter_values("f", "bits", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1-8", "is not a number, a list or a range; write e.g. 1..8"),
        ("8..1", "the range '8..1' is empty"),
        ([], "empty list"),
    ],
)
def test_a_bad_range_is_one_line_naming_the_key(value, message):
    with pytest.raises(PoolupError, match="config key 'search.families.f.bits'") as error:
        search.parameter_values("f", "bits", value)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_candidates_are_every_combination_named_by_what_varies():
    families = search.family_candidates(
        {
            "families": {
                "pool": {"window": [2, 3], "stride": [2, 3]},
                "avif": {"codec": "avif", "tile": 1024, "quality": "10..30/10"},
                "one": {"bits": 1},
            }
        }
    )
    assert list(families["pool"]) == ["pool_w2s2", "pool_w2s3", "pool_w3s2", "pool_w3s3"]
    assert list(families["avif"]) == ["avif_q10", "avif_q20", "avif_q30"]
    assert families["avif"]["avif_q20"] == {
        "window": 1,
        "stride": 1,
        "codec": "avif",
        "tile": 1024,
        "quality": 20,
        "label": "avif q20, 1024 images per file",
    }
    assert list(families["one"]) == ["one"] and families["pool"]["pool_w3s2"]["label"] == "pool 3x3/2"


def config_with(search_section, cases=None):
    config = {
        "datasets": [{"name": "tiny", "source": "bundled", "max_images": 300}],
        "cases": cases or {"baseline": {"window": 1, "stride": 1}},
        "search": search_section,
    }
    return validate_config(config, SCHEMA)


def test_the_config_adds_the_candidates_as_cases_and_keeps_the_families_order():
    config = config_with({"families": {"zeta": {"bits": "2..3"}, "alpha": {"window": 2, "stride": 2}}})
    families = add_search_cases(config, SCHEMA)
    assert families == {"zeta": ["zeta_b2", "zeta_b3"], "alpha": ["alpha"]}, "config order, not sorted"
    assert set(config["cases"]) == {"baseline", "zeta_b2", "zeta_b3", "alpha"}
    assert config["cases"]["zeta_b3"]["bits"] == 3


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"families": {"f": {"bits": "1..9"}}}, "config key 'cases.f_b9.bits'"),
        ({"families": {"f": {"bits": 2, "codec": "webp"}}}, "bits and codec cannot be combined"),
        ({"families": {"f": {"window": 29, "stride": 1}}}, "larger than the 28x28 images"),
        ({"families": {"baseline": {"bits": 1}}}, "the candidate name 'baseline' is already a case's name"),
    ],
)
def test_a_candidate_that_cannot_be_a_case_is_one_line_naming_the_search(section, message):
    with pytest.raises(PoolupError) as error:
        add_search_cases(config_with(section), SCHEMA)
    text = str(error.value)
    assert message in text and "search.families" in text and "\n" not in text, text


@pytest.mark.parametrize("seeds", [1, [3, 5]])
def test_a_search_without_looks_needs_a_count_of_two_seeds_or_more(seeds):
    config = config_with({"families": {"f": {"bits": 1}}})
    config["seeds"] = seeds
    with pytest.raises(PoolupError, match="config key 'seeds'.*give a count of 2 or more"):
        add_search_cases(config, SCHEMA)


@pytest.mark.parametrize(
    "section", [{"families": {}}, {"families": {"f": {"bits": "one..two"}}}, {"families": {"f": {"colour": 1}}}, {}]
)
def test_the_schema_refuses_a_malformed_search(section):
    with pytest.raises(PoolupError, match="config key 'search"):
        config_with(section)


# --- the walk -------------------------------------------------------------------------


def oracle(losses, margin=0.005):
    """An outcome function of known verdicts: 'smaller' where the loss is below the margin."""
    calls = []

    def outcome(name, alpha_per_look):
        calls.append(name)
        verdict = paired.SMALLER if losses[name] < margin else paired.LARGER
        return search.Judged(verdict, 5, -losses[name] - 0.001, -losses[name] + 0.001, -losses[name])

    return outcome, calls


def test_the_walk_tests_the_cheapest_first_then_bisects_and_prunes_later_families():
    names = [f"b{i}" for i in range(1, 8)]  # cheapest first
    nbytes = {name: float(i) for i, name in enumerate(names, 1)} | {"p1": 0.5, "p2": 2.5, "p3": 9.0}
    losses = {"b1": 0.02, "b2": 0.01, "b3": 0.001, "b4": 0, "b5": 0, "b6": 0, "b7": 0, "p1": 0.03, "p2": 0, "p3": 0}
    outcome, calls = oracle(losses)
    result = search.walk({"bits": names, "pool": ["p1", "p2", "p3"]}, nbytes, outcome, alpha=0.05, n_looks=2)
    assert result.done and result.answer == "p2"
    # bits: b1 (the cheapest) fails, then the bisection of b2..b7: b4, b2 (fails), b3. pool: below b3's 3 bytes.
    assert calls == ["b1", "b4", "b2", "b3", "p1", "p2"]
    assert result.best == {"bits": "b3", "pool": "p2"}
    assert result.skipped["p3"] == search.DEARER and result.skipped["b6"] == search.NOT_REACHED
    assert len([t for t in result.tests if t["family"] == "bits"]) <= search.most_tests(7) == 4
    # Each family's share of alpha, split over its most tests and the looks.
    assert {t["family"]: t["look_alpha"] for t in result.tests} == {
        "bits": pytest.approx(0.05 / 2 / 4 / 2),
        "pool": pytest.approx(0.05 / 2 / 3 / 2),
    }


def test_a_cheapest_candidate_within_the_margin_ends_its_family_in_one_test():
    outcome, calls = oracle({"a": 0.0, "b": 0.0, "c": 0.0})
    result = search.walk({"f": ["a", "b", "c"]}, {"a": 1.0, "b": 2.0, "c": 3.0}, outcome, alpha=0.05, n_looks=1)
    assert calls == ["a"] and result.answer == "a"


def test_the_walk_stops_where_a_test_needs_seeds_and_the_scores_decide_each_look():
    scores = {"base": dict.fromkeys(range(5), 0.9), "a": {0: 0.9, 1: 0.9}}
    judged = search.judge_candidate(scores["a"], scores["base"], [2, 4], 0.005, 0.01)
    # Two equal seeds: a zero-width interval at 0, above -margin at the first look.
    assert judged.verdict == paired.SMALLER and judged.seeds == 2
    noisy = {0: 0.9, 1: 0.88}
    assert search.judge_candidate(noisy, scores["base"], [2, 4], 0.005, 0.01) == search.Need(4)


# --- validity, by simulation ------------------------------------------------------------


def simulate_searches(true_deltas, nbytes, families, looks, margin, alpha, sd, searches, random_state):
    """Run ``searches`` searches on normal per-seed differences (mean ``true_deltas[case]``, SD ``sd``).

    Each candidate's sequential outcome is drawn once per search (with the level its family spends:
    a candidate's verdict depends only on its own seeds), and the product's walk reads them.
    Returns the named case of each search (None: none).
    """
    rng = np.random.default_rng(random_state)
    sizes = [len(names) for names in families.values()]
    verdicts, seeds, means = {}, {}, {}
    for index, names in enumerate(families.values()):
        spend = search.test_alpha(alpha, sizes, index, len(looks))
        for name in names:
            differences = rng.normal(true_deltas[name], sd, size=(searches, looks[-1]))
            low, high = verdict_bounds(differences, looks, spend)
            first, code = first_decision(look_verdicts(low, high, margin))
            verdicts[name], seeds[name] = code, np.asarray(looks)[np.where(first >= 0, first, len(looks) - 1)]
            means[name] = differences.mean(axis=1)
    named = []
    for run in range(searches):

        def outcome(name, alpha_per_look, run=run):
            return search.Judged(VERDICT_BY_CODE[verdicts[name][run]], int(seeds[name][run]), 0.0, 0.0, 0.0)

        named.append(search.walk(families, nbytes, outcome, alpha, len(looks)).answer)
    return named


FAMILIES = {"bits": ["b1", "b2", "b3", "b4", "b5", "b6", "b7"], "codec": ["q5", "q10", "q20", "q40"]}
NBYTES = {"b1": 1.0, "b2": 2.0, "b3": 3.0, "b4": 4.0, "b5": 5.0, "b6": 6.0, "b7": 7.0} | {
    "q5": 0.5,
    "q10": 1.5,
    "q20": 2.5,
    "q40": 8.0,
}
MARGIN, ALPHA, LOOKS, SD = 0.005, 0.05, [5, 10, 20], 0.0045


@pytest.mark.parametrize(
    "boundary",
    [
        # Every candidate's true loss at the margin (the least favourable case: any recipe named is wrong).
        dict.fromkeys(NBYTES, -MARGIN),
        # The cheap ones at the margin, the dear ones free: the walk meets the boundary where it bisects.
        {**dict.fromkeys(NBYTES, -MARGIN), "b5": 0.0, "b6": 0.0, "b7": 0.0, "q40": 0.0},
    ],
    ids=["all-at-the-margin", "cheap-at-the-margin"],
)
def test_the_chance_of_naming_a_recipe_that_loses_the_margin_is_at_most_alpha(boundary):
    named = simulate_searches(boundary, NBYTES, FAMILIES, LOOKS, MARGIN, ALPHA, SD, 20_000, random_state=1)
    wrong = np.mean([name is not None and boundary[name] <= -MARGIN for name in named])
    # 20,000 searches: the estimate's SE at alpha is 0.0015; Bonferroni keeps it far below.
    assert wrong <= ALPHA, wrong


def test_with_large_effects_the_search_names_the_true_cheapest_in_most_searches():
    # b3 and dearer lose nothing; b1, b2 and every codec but q40 lose four margins; q40 is dearer than b3.
    truth = {**dict.fromkeys(NBYTES, -4 * MARGIN), "b3": 0.0, "b4": 0.0, "b5": 0.0, "b6": 0.0, "b7": 0.0, "q40": 0.0}
    named = simulate_searches(truth, NBYTES, FAMILIES, LOOKS, MARGIN, ALPHA, 0.002, 20_000, random_state=2)
    share = np.mean([name == "b3" for name in named])
    assert share >= 0.8, share
    assert not any(truth[name] < -MARGIN for name in named if name), "never a recipe that loses four margins"


# --- a real search ---------------------------------------------------------------------------

SEARCH_TABLE = "results/tiny/summary/search.csv"


def search_config(path, looks=(2, 3)):
    return write_config(
        path,
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 300}],
        cases={"baseline": {"window": 1, "stride": 1}},
        training=TINY_TRAINING,
        # A margin 300 digits and 3 seeds can decide (their ΔF1 varies by tenths).
        analysis={"sequential": {"looks": list(looks)}, "margin": 0.5},
        search={"families": {"bits": {"bits": "1..4"}, "pool": {"window": [2, 3], "stride": 2}}},
    )


def trained_runs(workdir):
    return {
        str(path.relative_to(workdir)): path.stat().st_mtime_ns
        for path in (workdir / "results/tiny").glob("*/seed*/test_metrics.json")
    }


def test_a_real_search_walks_trains_what_it_tests_and_lists_the_rest(tmp_path):
    config = search_config(tmp_path / "search.yaml")
    dry = run_snakemake(tmp_path, "-n", SEARCH_TABLE, configfiles=[config]).stdout
    assert "search_step" in dry and "train_seeds" not in dry.split("search_step")[0].split("Job stats")[-1]
    said = run_snakemake(tmp_path, "--cores", "2", SEARCH_TABLE, configfiles=[config]).stderr
    # Each training job says on the terminal how far it is, seed by seed (the log has every step).
    assert "poolup: tiny/baseline seed 0 (1 of 2 in this job): macro F1 " in said and "s to go" in said, said[-3000:]
    table = pd.read_csv(tmp_path / SEARCH_TABLE)
    assert list(table.columns) == list(search.COLUMNS)
    assert set(table["case"]) == {"bits_b1", "bits_b2", "bits_b3", "bits_b4", "pool_w2", "pool_w3"}
    assert (~table["tested"]).any(), "the search lists the candidates it did not train"
    assert set(table.loc[~table["tested"], "reason"]) <= {search.NOT_REACHED, search.DEARER, search.NOT_SMALLER}
    # Only tested candidates (and the baseline) trained; each at a look's seeds.
    runs = trained_runs(tmp_path)
    trained = {path.split("/")[2] for path in runs}
    assert trained == {"baseline", *table.loc[table["tested"], "case"]}
    assert set(table.loc[table["tested"], "seeds"]) <= {2, 3}
    # The answer is the cheapest within the margin of those tested, named in search.md's first line.
    within = table[table["verdict"] == paired.SMALLER]
    answer = table[table["answer"]]
    assert len(answer) == 1 and answer["bytes_per_image"].iloc[0] == within["bytes_per_image"].min()
    markdown = (tmp_path / "results/tiny/summary/search.md").read_text()
    assert markdown.startswith("The cheapest recipe shown within the margin") and answer["case"].iloc[0] in markdown
    steps = sorted((tmp_path / "results/tiny/search").glob("step*.json"), key=lambda path: int(path.stem[4:]))
    final = json.loads(steps[-1].read_text())
    # `poolup show` prints the search's answer.
    shown = subprocess.run(
        [sys.executable, "-m", "poolup", "show", str(tmp_path / "results")], capture_output=True, text=True, check=True
    ).stdout
    assert f"search ({tmp_path / 'results/tiny/summary/search.md'}): The cheapest recipe" in shown, shown
    assert final["next"] is None and sum(final["runs"].values()) == len(runs)
    # Nothing left to do; the figure draws from the table.
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", SEARCH_TABLE, configfiles=[config]).stdout
    run_snakemake(tmp_path, "--cores", "1", "results/tiny/figures/search.png", configfiles=[config])
    assert (tmp_path / "results/tiny/figures/search.png").stat().st_size > 10_000


@pytest.mark.slow  # two whole searches (python -m pytest -m slow)
def test_a_search_killed_mid_walk_resumes_with_the_same_answer_and_retrains_nothing(tmp_path):
    """kill -9 of the whole run once the walk has judged a step, then the plain command: the runs finished
    before the kill keep their files, and search.csv equals that of a search never interrupted."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for folder in (whole, killed):
        folder.mkdir()
    run_snakemake(whole, "--cores", "2", SEARCH_TABLE, configfiles=[search_config(whole / "s.yaml")])
    config = search_config(killed / "s.yaml")
    command = snakemake_command(killed, "--cores", "2", SEARCH_TABLE, configfiles=[config])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not (killed / "results/tiny/search/step2.json").exists():
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = trained_runs(killed)
    assert before, "the walk had trained runs before the kill"
    run_snakemake(killed, "--unlock", configfiles=[config])  # the lock a kill leaves (docs/troubleshooting.md)
    run_snakemake(killed, "--cores", "2", SEARCH_TABLE, configfiles=[config])
    after = trained_runs(killed)
    assert {path: after[path] for path in before} == before, "no run finished before the kill is trained again"
    assert set(after) == set(trained_runs(whole))
    pd.testing.assert_frame_equal(pd.read_csv(killed / SEARCH_TABLE), pd.read_csv(whole / SEARCH_TABLE))
