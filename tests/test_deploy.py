"""The workflow deployed the way Snakemake users deploy workflows: as a module, from another directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from conftest import REPO, SNAKEMAKE, TINY_CASES, TINY_TRAINING, write_config


def snakemake_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([*SNAKEMAKE, *args], cwd=folder, capture_output=True, text=True, timeout=900, env=env)


def test_deployed_as_a_module_runs_end_to_end(tmp_path):
    """What `snakedeploy deploy-workflow` writes, with a local path: an empty folder, its own config."""
    folder = tmp_path / "my-experiment"
    folder.mkdir()
    write_config(
        folder / "config.yaml",
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 100}],
        cases=TINY_CASES,
        seeds=1,
        training=TINY_TRAINING,
        codecs={"sample": 20},
        analysis={"bootstrap_resamples": 200},
    )
    (folder / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'module poolup:\n    snakefile:\n        "{REPO / "Snakefile"}"\n    config:\n        config\n\n\n'
        "use rule * from poolup\n"
    )
    result = snakemake_in(folder, "--cores", "2")
    assert result.returncode == 0, result.stderr[-6000:]
    summary = folder / "results/tiny/summary/summary.csv"
    assert summary.is_file() and (folder / "results/tiny/figures/tradeoff.png").is_file()
    assert {line.split(",")[0] for line in summary.read_text().splitlines()[1:]} >= set(TINY_CASES)
    report = snakemake_in(folder, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    assert (folder / "results/report.html").stat().st_size > 10_000


def test_a_directory_without_config_yaml_says_what_it_runs(tmp_path):
    """`--directory DIR --configfile my.yaml` with no DIR/config.yaml: one line says the schema's defaults fill in."""
    config = write_config(tmp_path / "my.yaml", datasets=[{"name": "tiny", "source": "bundled", "max_images": 100}])
    result = snakemake_in(REPO, "-n", "--directory", str(tmp_path), "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-4000:]
    notices = [line for line in result.stderr.splitlines() if line.startswith("poolup:")]
    assert notices == [
        f"poolup: no config.yaml in {tmp_path}: running {config} over the schema's defaults"
        " (the paper's experiment: workflow/schemas/config.schema.yaml)"
    ]


def test_no_config_at_all_stops_before_any_job(tmp_path):
    result = snakemake_in(REPO, "-n", "--directory", str(tmp_path))
    assert result.returncode != 0
    said = result.stdout + result.stderr  # Snakemake 9 logs its errors to stdout
    assert "Workflow defines configfile config.yaml but it is not present" in said and "Traceback" not in said
    assert not (tmp_path / "results").exists()


def test_conda_env_does_not_depend_on_the_checkout_location():
    env = yaml.safe_load((REPO / "workflow/envs/poolup.yaml").read_text())
    text = yaml.safe_dump(env)
    assert "../" not in text and "-e " not in text and "pip" not in text
    # every runtime dependency of the package is in the environment (module names as conda spells them)
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda_names = {spec.split()[0] for spec in env["dependencies"]}
    wanted = {dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]} - {
        "snakemake"
    }
    wanted = {"matplotlib-base" if name == "matplotlib" else name for name in wanted}
    assert wanted <= conda_names, wanted - conda_names


def test_the_ci_test_config_is_valid():
    """.test/config.yaml (what CI runs end to end) passes the config validation: a dry run plans every rule."""
    result = snakemake_in(REPO, "-n", "--directory", str(REPO / ".test"))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rule pool:" in result.stdout and "rule fetch:" in result.stdout
