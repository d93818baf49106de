"""The sequential design: error rates by simulation, the verdict at each look, and the design run for real.

The simulation runs the module's own functions on 20,000 simulated designs in
well under a second (NumPy, one array per look). The workflow tests run the
real Snakemake workflow on 200 bundled digits: a case decided at the first
look trains no further seed, an interrupted design resumes, a dry run lists
what the next look trains, extending the looks trains only new seeds, and
adding a seed to a partly filled block retrains nothing.
"""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CASES, TINY_TRAINING, run_snakemake, snakemake_command, write_config
from scipy import stats as scipy_stats

from poolup import sequential
from poolup import stats as paired
from poolup.config import load_schema, validate_config
from poolup.errors import PoolupError
from poolup.records import read_json, write_json
from poolup.runs import group_of

LOOKS = [10, 20, 40, 80, 160]
MARGIN, ALPHA = 0.005, 0.05
# The SD of the per-seed ΔF1 measured for 2x2/2 in the paper setting (30 seeds, README "The answer").
MEASURED_SD = 0.0060
DESIGNS = 20_000


def monte_carlo_error(rate: float, n: int = DESIGNS) -> float:
    return math.sqrt(rate * (1 - rate) / n)


# --- error rates by simulation ------------------------------------------------


def test_a_true_loss_at_the_margin_is_called_smaller_at_most_alpha_of_the_time_and_naive_retesting_exceeds_it():
    """20,000 designs with normal per-seed differences at the measured SD and a true loss equal to the margin.

    With Bonferroni over the five looks the false "loss smaller than the margin" rate is at most
    alpha (within 2.58 Monte Carlo errors); re-testing at alpha at every look exceeds alpha by far.
    """
    verdicts, seeds = sequential.simulate(LOOKS, -MARGIN, MEASURED_SD, MARGIN, ALPHA, DESIGNS, random_state=0)
    false_smaller = float(np.mean(verdicts == sequential.SMALLER_CODE))
    assert false_smaller <= ALPHA + 2.58 * monte_carlo_error(false_smaller), false_smaller
    # The other wrong verdict (the loss equals the margin, so it is not larger) is bounded the same way.
    false_larger = float(np.mean(verdicts == sequential.LARGER_CODE))
    assert false_larger <= ALPHA + 2.58 * monte_carlo_error(false_larger), false_larger
    assert set(np.unique(seeds)) <= set(LOOKS)

    naive, _ = sequential.simulate(LOOKS, -MARGIN, MEASURED_SD, MARGIN, ALPHA, DESIGNS, 0, alpha_per_look=ALPHA)
    naive_smaller = float(np.mean(naive == sequential.SMALLER_CODE))
    assert naive_smaller - 2.58 * monte_carlo_error(naive_smaller) > ALPHA, naive_smaller
    # A single look at alpha is the fixed design: its rate is alpha itself (the t-test is exact).
    single, _ = sequential.simulate([160], -MARGIN, MEASURED_SD, MARGIN, ALPHA, DESIGNS, 1)
    rate = float(np.mean(single == sequential.SMALLER_CODE))
    assert abs(rate - ALPHA) < 3 * monte_carlo_error(ALPHA), rate


def test_a_small_loss_is_decided_early():
    """A loss well below the margin is decided at the first looks: the seeds the design saves."""
    verdicts, seeds = sequential.simulate(LOOKS, -0.001, 0.0050, MARGIN, ALPHA, 5000, random_state=2)
    assert np.mean(verdicts == sequential.SMALLER_CODE) > 0.99
    assert np.mean(seeds) < 30


# --- the verdict at each look ---------------------------------------------------


def test_each_looks_interval_is_the_t_interval_of_its_seeds():
    rng = np.random.default_rng(3)
    differences = rng.normal(-0.003, 0.006, size=(50, 40))
    low, high = sequential.verdict_bounds(differences, [5, 12, 40, 41], 0.05 / 3)
    for row in range(50):
        for index, n in enumerate([5, 12, 40]):
            values = differences[row, :n]
            # Bit for bit what the fixed design computes, and scipy's t-interval.
            assert (low[row, index], high[row, index]) == paired.t_interval(values, 1 - 2 * 0.05 / 3)
            reference = scipy_stats.t.interval(
                1 - 2 * 0.05 / 3, n - 1, loc=values.mean(), scale=scipy_stats.sem(values)
            )
            assert np.allclose((low[row, index], high[row, index]), reference, rtol=0, atol=1e-15)
    assert np.isnan(low[:, 3]).all() and np.isnan(high[:, 3]).all()  # a look beyond the seeds given


def test_what_each_look_said_is_the_fixed_design_of_its_seeds_at_the_looks_level_and_ends_in_the_outcome():
    # summary.md's table of the looks: look k is the fixed design of the first L_k seeds at alpha / K.
    rng = np.random.default_rng(11)
    looks, decided = [4, 8, 16], set()
    for _ in range(200):
        differences = rng.normal(rng.uniform(-0.008, 0.0), 0.004, size=int(rng.choice([4, 8, 11, 16])))
        judged = sequential.look_intervals(differences, looks, MARGIN, ALPHA)
        reached = [n for n in looks if n <= differences.size]
        assert [look["seeds"] for look in judged] == reached
        for look in judged:
            interval = paired.t_interval(differences[: look["seeds"]], 1 - 2 * ALPHA / 3)
            assert (look["low"], look["high"]) == interval
            assert look["verdict"] == paired.verdict(interval, MARGIN)
        first = next((i for i, look in enumerate(judged) if look["verdict"] != paired.UNDECIDED), len(judged) - 1)
        outcome = sequential.case_outcome(differences[: reached[first]], looks, MARGIN, ALPHA)
        assert (outcome["verdict"], outcome["margin_ci_low"], outcome["margin_ci_high"]) == (
            judged[first]["verdict"],
            judged[first]["low"],
            judged[first]["high"],
        )
        decided.add((first, judged[first]["verdict"]))
    assert {(0, paired.SMALLER), (1, paired.SMALLER), (0, paired.LARGER)} <= decided
    assert sequential.look_intervals(np.zeros(3), looks, MARGIN, ALPHA) == []


def test_a_one_look_design_is_the_fixed_design():
    rng = np.random.default_rng(4)
    for _ in range(40):
        n = int(rng.integers(2, 60))
        differences = rng.normal(rng.uniform(-0.01, 0.002), 0.006, size=n)
        fixed = paired.compare_paired(differences, MARGIN, 0.95, 200, 0.8)
        design = sequential.case_outcome(differences, [n], MARGIN, ALPHA)
        assert (design["verdict"], design["margin_ci_low"], design["margin_ci_high"], design["noninferiority_p"]) == (
            fixed["verdict"],
            fixed["margin_ci_low"],
            fixed["margin_ci_high"],
            fixed["noninferiority_p"],
        )


def test_the_designs_noninferiority_p_is_at_most_alpha_exactly_where_it_calls_the_loss_smaller():
    # At the first of 3 looks (any differences may be judged there): the fixed-sample p times 3, which the
    # plain one-sided t-test of scipy gives for H0: mean <= -margin.
    rng = np.random.default_rng(8)
    looks, agree, smaller = [6, 12, 24], 0, 0
    for _ in range(400):
        differences = rng.normal(rng.uniform(-0.006, 0.0), 0.004, size=6)
        outcome = sequential.case_outcome(differences, looks, MARGIN, ALPHA)
        plain = scipy_stats.ttest_1samp(differences, -MARGIN, alternative="greater").pvalue
        assert outcome["noninferiority_p"] == pytest.approx(min(1.0, 3 * plain), rel=1e-9)
        assert (outcome["noninferiority_p"] <= ALPHA) == (outcome["verdict"] == paired.SMALLER)
        smaller += outcome["verdict"] == paired.SMALLER
        agree += (plain <= ALPHA) == (outcome["verdict"] == paired.SMALLER)
    # Both verdicts occur, and the fixed-sample p at alpha disagrees with the verdict somewhere (what the
    # adjustment mends: "p below alpha" beside "undecided").
    assert 0 < smaller < 400 and agree < 400


def test_a_case_stops_at_the_first_look_that_decides():
    looks = [4, 8, 16]
    clear = np.array([0.0, 0.001, -0.001, 0.0005])  # decided at 4 seeds: loss far below the margin
    outcome = sequential.case_outcome(clear, looks, MARGIN, ALPHA)
    assert (outcome["verdict"], outcome["looks_used"], outcome["deciding_look"]) == (paired.SMALLER, 1, 1.0)
    assert outcome["look_alpha"] == pytest.approx(ALPHA / 3)
    with pytest.raises(PoolupError, match="decided at look 1 .4 seeds. but 8 seeds were given"):
        sequential.case_outcome(np.concatenate([clear, clear]), looks, MARGIN, ALPHA)
    with pytest.raises(PoolupError, match="6 paired seeds is not the seed count of a look"):
        sequential.case_outcome(np.zeros(6), looks, MARGIN, ALPHA)
    noisy = np.random.default_rng(5).normal(-0.005, 0.02, size=16)
    outcome = sequential.case_outcome(noisy, looks, MARGIN, ALPHA)
    assert outcome["verdict"] == paired.UNDECIDED and outcome["looks_used"] == 3
    assert math.isnan(outcome["deciding_look"])


def test_extending_the_looks_reopens_a_case_decided_only_at_the_old_level_and_trains_only_its_new_seeds(tmp_path):
    """judge_look on written run records: a case decided at look 1 of [4, 8] (each look at alpha / 2) but open at
    alpha / 3 is planned, under [4, 8, 16], to train seeds 4-7 with the baseline; a clear case keeps its 4 seeds."""
    # Mean ΔF1 -0.001 with a standard error of 0.00115 on 4 seeds: the low end of the interval is above -0.005
    # at t(0.975, 3) = 3.18 (alpha / 2 per side) and below it at t(0.983, 3) = 3.90 (alpha / 3).
    z = np.array([-1.5, -0.5, 0.5, 1.5]) / np.std([-1.5, -0.5, 0.5, 1.5], ddof=1)
    base = np.array([0.960, 0.955, 0.965, 0.958])
    f1 = {"baseline": base, "near": base - 0.001 + 0.0023 * z, "clear": base + np.array([0.0, 1e-4, -1e-4, 0.0])}
    paths = []
    for case, values in f1.items():
        for seed, value in enumerate(values):
            path = tmp_path / f"{case}{seed}.json"
            write_json(path, {"stage": "train", "case": case, "seed": seed, "macro_f1": float(value)})
            paths.append(path)

    def first_look(looks, name):
        return sequential.judge_look(
            metrics=paths,
            previous=[],
            record=tmp_path / name,
            look=1,
            baseline="baseline",
            cases=list(f1),
            looks=looks,
            analysis={"margin": MARGIN, "confidence": 0.95},
        )

    two = first_look([4, 8], "two.json")
    assert two["cases"]["near"]["verdict"] == paired.SMALLER and two["next"] is None
    three = first_look([4, 8, 16], "three.json")
    assert three["look_alpha"] == pytest.approx(ALPHA / 3)
    assert (
        three["cases"]["near"]["verdict"] == paired.UNDECIDED and three["cases"]["clear"]["verdict"] == paired.SMALLER
    )
    assert three["open"] == ["near"] and three["next"] == {"baseline": 8, "near": 8, "clear": 4}


def test_looks_must_rise_one_line_naming_the_key():
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    for looks, problem in (([20, 10], "not a rising list"), ([1, 10], "less than the minimum of 2"), ([], "")):
        with pytest.raises(PoolupError) as error:
            validate_config({"analysis": {"sequential": {"looks": looks}}}, schema)
        assert "analysis.sequential.looks" in str(error.value) and problem in str(error.value)
        assert "\n" not in str(error.value)
    config = validate_config({}, schema)
    assert config["analysis"]["sequential"]["looks"] is None  # off by default


def test_a_look_judges_the_open_cases_and_plans_the_next(tmp_path):
    """judge_look on written run records: the decided case keeps its seeds, the open one and the baseline go on."""
    rng = np.random.default_rng(6)
    base = rng.uniform(0.95, 0.97, size=8)
    f1 = {"baseline": base, "same": base + 0.0, "noisy": base + rng.normal(-0.004, 0.02, size=8)}

    def runs(counts):
        paths = []
        for case, n in counts.items():
            for seed in range(n):
                path = tmp_path / f"{case}{seed}.json"
                write_json(path, {"stage": "train", "case": case, "seed": seed, "macro_f1": float(f1[case][seed])})
                paths.append(path)
        return paths

    cases, analysis = list(f1), {"margin": MARGIN, "confidence": 0.95}
    first = sequential.judge_look(
        metrics=runs(dict.fromkeys(cases, 4)),
        previous=[],
        record=tmp_path / "look1.json",
        look=1,
        baseline="baseline",
        cases=cases,
        looks=[4, 8],
        analysis=analysis,
    )
    assert first["open"] == ["noisy"] and first["cases"]["same"]["deciding_look"] == 1
    assert first["next"] == {"baseline": 8, "same": 4, "noisy": 8}
    second = sequential.judge_look(
        metrics=runs(first["next"]),
        previous=[tmp_path / "look1.json"],
        record=tmp_path / "look2.json",
        look="2",
        baseline="baseline",
        cases=cases,
        looks=[4, 8],
        analysis=analysis,
    )
    assert second["next"] is None and second["design"] == {"baseline": 8, "same": 4, "noisy": 8}
    # A case decided at look 1 keeps that look in every later look's record.
    assert second["cases"]["same"]["deciding_look"] == 1 and second["cases"]["same"]["looks_used"] == 1
    assert read_json(tmp_path / "look2.json", stage="look")["design"] == second["design"]
    with pytest.raises(PoolupError, match="not what the previous look planned"):
        sequential.judge_look(
            metrics=runs(dict.fromkeys(cases, 8)),
            previous=[tmp_path / "look1.json"],
            record=tmp_path / "bad.json",
            look=2,
            baseline="baseline",
            cases=cases,
            looks=[4, 8],
            analysis=analysis,
        )
    assert not (tmp_path / "bad.json").exists()


# --- the design run by Snakemake --------------------------------------------------

# The baseline, a copy of it (its ΔF1 is 0 on every seed: decided at the first look) and a
# case whose verdict 200 images cannot decide.
CASES = {"baseline": {"window": 1, "stride": 1}, "copy": {"window": 1, "stride": 1}, "w2s2": {"window": 2, "stride": 2}}
SUMMARY = "results/tiny/summary/summary.csv"


def design_config(path, looks):
    return write_config(
        path,
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 200}],
        cases=CASES,
        training=TINY_TRAINING,
        analysis={"sequential": {"looks": looks}, "bootstrap_resamples": 200},
    )


def planned_training(dry_run: str) -> set[tuple[str, int]]:
    """(case, seed) of every training job a dry run lists."""
    planned, rule = set(), None
    for line in dry_run.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("wildcards:") and rule and group_of(rule):
            case = re.search(r"case=([^,\s]+)", line).group(1)
            planned |= {(case, seed) for seed in group_of(rule)}
    return planned


def trained(workdir) -> dict[str, int]:
    """Each run's files and their modification times."""
    return {str(p): p.stat().st_mtime_ns for p in (workdir / "results/tiny").glob("*/seed*/*") if p.is_file()}


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_a_design_runs_look_after_look_resumes_and_extends_without_retraining(tmp_path):
    workdir = tmp_path / "design"
    workdir.mkdir()
    config = design_config(workdir / "design.yaml", [2, 3])
    # A dry run of a new design lists the first look's training only.
    dry = run_snakemake(workdir, "-n", "--cores", "1", SUMMARY, configfiles=[config]).stdout
    assert planned_training(dry) == {(case, seed) for case in CASES for seed in (0, 1)}
    assert "checkpoint" in dry

    # The first look only (a design interrupted after its first look), then the dry run of the rest.
    run_snakemake(workdir, "--cores", "2", "results/tiny/summary/looks/look1.json", configfiles=[config])
    first = read_json(workdir / "results/tiny/summary/looks/look1.json", stage="look")
    assert first["cases"]["copy"]["verdict"] == paired.SMALLER and first["open"] == ["w2s2"]
    dry = run_snakemake(workdir, "-n", "--cores", "1", SUMMARY, configfiles=[config]).stdout
    assert planned_training(dry) == {("baseline", 2), ("w2s2", 2)}, "the next look trains only the open case"

    # Resumed: one command finishes the design; the first look's runs are not trained again.
    before = trained(workdir)
    run_snakemake(workdir, "--cores", "2", SUMMARY, configfiles=[config])
    after = trained(workdir)
    assert {name: after[name] for name in before} == before
    assert not (workdir / "results/tiny/copy/seed2").exists(), "a case decided at the first look trains no seed"
    summary = pd.read_csv(workdir / SUMMARY)
    assert set(summary["test_images"]) == {"stored", "raw"}, "every run is evaluated on both kinds of test images"
    summary = summary[summary["test_images"] == "stored"].set_index("case")  # the kind the design judges
    assert summary.loc["copy", ["seeds", "looks_used", "deciding_look", "seeds_saved"]].tolist() == [2, 1, 1, 1]
    assert summary.loc["w2s2", ["seeds", "looks_used", "seeds_saved"]].tolist() == [3, 2, 0]
    assert summary.loc["w2s2", "verdict"] == paired.UNDECIDED and math.isnan(summary.loc["w2s2", "deciding_look"])
    assert summary.loc["baseline", "seeds"] == 3
    assert summary["look_alpha"].dropna().tolist() == pytest.approx([0.025, 0.025])
    result = pd.read_csv(workdir / "results/tiny/summary/result.csv")
    result = result[result["test_images"] == "stored"].set_index("case")
    assert result.loc["copy", "decided at"] == "look 1 of 2 (2 seeds)"
    assert result.loc["w2s2", "decided at"] == "undecided after look 2 of 2 (3 seeds)"
    markdown = (workdir / "results/tiny/summary/summary.md").read_text()
    assert "a fixed design of 3 seeds per case trains 9: 1 saved" in markdown
    # The looks: copy decided at look 1 and not trained to look 2; w2s2 judged at both.
    lines = markdown.splitlines()
    start = lines.index("| case | look 1 (2 seeds) | look 2 (3 seeds) |")
    rows = {cells[0]: cells[1:] for cells in (line.strip("|").split("|") for line in lines[start + 2 : start + 4])}
    assert [cell.strip() for cell in rows[" copy "]] == [rows[" copy "][0].strip(), ""]
    assert rows[" copy "][0].strip().startswith("[") and rows[" copy "][0].strip().endswith(f"] {paired.SMALLER}")
    assert all(cell.strip().startswith("[") and cell.strip().endswith("]") for cell in rows[" w2s2 "])
    assert "Nothing to be done" in run_snakemake(workdir, "-n", SUMMARY, configfiles=[config]).stdout

    # Extended to a third look: every look is judged again at alpha / 3, and only new seeds are trained.
    extended = design_config(workdir / "design.yaml", [2, 3, 4])
    before = trained(workdir)
    run_snakemake(workdir, "--cores", "2", SUMMARY, configfiles=[extended])
    after = trained(workdir)
    assert {name: after[name] for name in before} == before, "extending the looks retrains nothing"
    new = {tuple(name.split("/")[-3:-1]) for name in set(after) - set(before)}
    assert new == {("baseline", "seed3"), ("w2s2", "seed3")}
    summary = pd.read_csv(workdir / SUMMARY)
    summary = summary[summary["test_images"] == "stored"].set_index("case")
    assert summary.loc["copy", "seeds_saved"] == 2 and summary.loc["w2s2", "seeds"] == 4

    # A job process (a cluster job runs Snakemake for one job) builds the rule it is sent, whatever the files say.
    job = run_snakemake(
        workdir,
        "-n",
        "--force",
        "--mode",
        "remote",
        "--target-jobs",
        "train_seeds_3_4:dataset=tiny,case=w2s2",
        "--allowed-rules",
        "train_seeds_3_4",
        configfiles=[design_config(workdir / "five.yaml", [2, 3, 5])],
    ).stdout
    assert planned_training(job) == {("w2s2", 3), ("w2s2", 4)}


@pytest.mark.slow  # a whole design, killed and resumed (python -m pytest -m slow)
def test_a_design_killed_between_two_looks_resumes_with_the_same_decisions_and_trains_nothing_twice(tmp_path):
    """kill -9 of Snakemake and its jobs once the first look is judged, then the plain command: the first
    look's record and runs are kept as they were, and the design ends as its records say."""
    import os
    import signal
    import subprocess
    import time

    config = design_config(tmp_path / "design.yaml", [2, 3])
    command = snakemake_command(tmp_path, "--cores", "2", SUMMARY, configfiles=[config])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    look1 = tmp_path / "results/tiny/summary/looks/look1.json"
    deadline = time.time() + 600
    while time.time() < deadline and not look1.exists():
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert look1.exists(), "the first look was judged before the kill"
    record, before = look1.read_bytes(), trained(tmp_path)
    # A kill leaves Snakemake's lock: the documented remedy (docs/troubleshooting.md), then the plain command.
    run_snakemake(tmp_path, "--unlock", configfiles=[config])
    run_snakemake(tmp_path, "--cores", "2", SUMMARY, configfiles=[config])
    after = trained(tmp_path)
    assert look1.read_bytes() == record, "the first look is not judged again"
    assert {name: after[name] for name in before} == before, "no run finished before the kill is trained again"
    first = read_json(look1, stage="look")
    summary = pd.read_csv(tmp_path / SUMMARY)
    seeds = summary[summary["test_images"] == "stored"].set_index("case")["seeds"]
    for case, planned in (first["next"] or first["design"]).items():
        assert seeds[case] >= first["design"][case] and seeds[case] in (2, 3), (case, planned)
    decided = [case for case, row in first["cases"].items() if row["verdict"] != paired.UNDECIDED]
    assert all(seeds[case] == 2 for case in decided), "a case decided at the first look trains no further seed"


def test_adding_a_seed_to_a_partly_filled_block_retrains_nothing(tiny_run, tmp_path):
    """The tiny run trained seeds 0 and 1 in one job (block 0-4): a third seed is one new job per case."""
    workdir, config = tiny_run
    three = tmp_path / "three.yaml"
    three.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "seeds": 3}))
    dry = run_snakemake(workdir, "-n", "--cores", "1", configfiles=[three]).stdout
    assert planned_training(dry) == {(case, 2) for case in TINY_CASES}
    assert "train_seeds_2_2" in dry and "train_seeds_0_2" not in dry


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_runs_kept_without_model_and_predictions_are_finished_where_keep_leaves_them_out(tiny_run, tmp_path):
    """training.keep []: a run's history.csv and test_metrics.json are the whole run, so a results folder
    kept or moved without its models and predictions (8 kB a run) trains nothing again; asking for the
    models again trains those runs again (a fixed design's default target lists them)."""
    workdir, config = tiny_run
    lean = tmp_path / "lean"
    shutil.copytree(workdir, lean, symlinks=True)  # copy2: the files keep their modification times
    for name in ("model.keras", "predictions.h5"):
        for path in lean.glob(f"results/tiny/*/seed*/{name}"):
            path.unlink()
    settings = yaml.safe_load(config.read_text())
    keep_none = write_config(tmp_path / "keep.yaml", **{**settings, "training": {**settings["training"], "keep": []}})
    assert "Nothing to be done" in run_snakemake(lean, "-n", configfiles=[keep_none]).stdout
    dry = run_snakemake(lean, "-n", "--cores", "1", configfiles=[config]).stdout
    assert planned_training(dry) == {(case, seed) for case in TINY_CASES for seed in (0, 1)}

    # A real run under keep []: a third seed, trained with its two files only; a model an older run of the
    # seed left in its folder is deleted, so the folder holds nothing of another run.
    three = write_config(tmp_path / "three.yaml", **{**yaml.safe_load(keep_none.read_text()), "seeds": 3})
    stale = lean / "results/tiny/w2s2/seed2/model.keras"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older run's model")
    seed2 = [f"results/tiny/{case}/seed2/test_metrics.json" for case in TINY_CASES]  # the runs, not the summaries
    run_snakemake(lean, "--cores", "2", *seed2, configfiles=[three])
    for case in TINY_CASES:
        kept = sorted(path.name for path in (lean / f"results/tiny/{case}/seed2").iterdir())
        assert kept == ["history.csv", "test_metrics.json"], (case, kept)
    assert list(read_json(lean / "results/tiny/w2s2/seed2/test_metrics.json", stage="train")["outputs"]) == [
        "history.csv"
    ]
