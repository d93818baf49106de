"""The one-line hints: where a run's answer is and the report command for the same config."""

from __future__ import annotations

from poolup.hints import answer_lines, config_options, report_command, report_hint


def test_the_report_command_repeats_the_runs_config_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    (tmp_path / "my.yaml").write_text("seeds: 2\n")
    options = config_options([tmp_path / "my.yaml", "/elsewhere/more.yaml"], True, ["seeds=3"])
    assert options == [
        "--replace-workflow-config",
        "--configfile",
        "my.yaml",
        "/elsewhere/more.yaml",
        "--config",
        "seeds=3",
    ]
    assert report_command(options, tmp_path / "Snakefile") == (
        "snakemake --report results/report.html --replace-workflow-config --configfile my.yaml /elsewhere/more.yaml"
        " --config seeds=3"
    )
    assert report_command([]) == "snakemake --report results/report.html"


def test_a_run_started_elsewhere_gets_the_folder_and_the_snakefile(tmp_path, monkeypatch):
    work = tmp_path / "my experiment"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PWD", str(tmp_path))
    command = report_command([], "/opt/poolup/Snakefile")
    assert command == f"cd '{work}' && snakemake --snakefile /opt/poolup/Snakefile --report results/report.html"


def test_the_answer_lines_name_every_data_set_this_run_answered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    assert answer_lines(["mnist"], "x") == [], "no result.csv: no answer to point at"
    for name in ("mnist", "fashion"):
        (tmp_path / f"results/{name}/summary").mkdir(parents=True)
        (tmp_path / f"results/{name}/summary/result.csv").write_text("case\n")
    (tmp_path / "results/fashion/summary/summary.md").write_text("This run cannot decide 1 of 2 cases (w2s2): ...\n")
    lines = answer_lines(["mnist", "fashion"], "snakemake --report results/report.html")
    assert lines[0] == (
        "poolup: mnist: the answer (every case against the baseline) in results/mnist/summary/result.csv; frontier.md"
        " and summary.md beside it, figures in results/mnist/figures/"
    )
    assert lines[2] == "poolup: fashion: This run cannot decide 1 of 2 cases (w2s2): ..."
    assert lines[3] == "poolup: every data set side by side: results/summary/datasets.md"
    assert lines[-1] == "poolup: the report of this run: snakemake --report results/report.html"
    assert answer_lines(["mnist"], "x", since=2e9) == [], "written before the run started: not this run's answer"


def test_a_report_hint_only_when_results_are_missing():
    assert report_hint([]) is None
    hint = report_hint(["results/a/summary/summary.csv", "results/a/summary/summary.md"])
    assert hint.startswith("poolup: results/a/summary/summary.csv and 1 more missing:") and "\n" not in hint


def test_looks_that_decide_the_seeds_say_that_seeds_is_not_used():
    from poolup.hints import seeds_notice

    assert seeds_notice([0, 1, 2], [2, 50], 3) == (
        "poolup: analysis.sequential.looks [2, 50] decides the seeds: 2 per case, up to 50 while a verdict is open;"
        " seeds: 3 is not used (drop it, or set the looks)"
    )
    assert seeds_notice(list(range(10)), [10, 20], 10) is None  # the same seeds: nothing to say
    assert seeds_notice([0, 1, 2], None, 3) is None  # a fixed design: seeds stands


def test_the_workflow_says_which_seeds_stand_before_any_job(tmp_path):
    from conftest import run_snakemake, write_config

    config = write_config(
        tmp_path / "c.yaml",
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 200}],
        seeds=3,
        analysis={"sequential": {"looks": [2, 4]}},
    )
    said = run_snakemake(tmp_path, "-n", configfiles=[config]).stderr
    assert "poolup: analysis.sequential.looks [2, 4] decides the seeds: 2 per case, up to 4" in said
