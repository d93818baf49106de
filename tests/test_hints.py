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


def test_the_answer_lines_name_every_data_set():
    lines = answer_lines(["mnist", "fashion"], "snakemake --report results/report.html")
    assert "results/mnist/summary/result.csv, results/fashion/summary/result.csv" in lines[0]
    assert lines[1] == "poolup: every data set side by side: results/summary/datasets.md"
    assert lines[-1] == "poolup: the report of this run: snakemake --report results/report.html"
    assert len(answer_lines(["mnist"], "x")) == 2


def test_a_report_hint_only_when_results_are_missing():
    assert report_hint([]) is None
    hint = report_hint(["results/a/summary/summary.csv", "results/a/summary/summary.md"])
    assert hint.startswith("poolup: results/a/summary/summary.csv and 1 more missing:") and "\n" not in hint
