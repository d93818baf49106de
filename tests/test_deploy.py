"""The workflow deployed the way Snakemake users deploy workflows: as a module, from another directory."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, TINY_CASES, TINY_TRAINING, write_config


def snakemake_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([*SNAKEMAKE, *args], cwd=folder, capture_output=True, text=True, timeout=900, env=env)


# A baseline and a pooling case: what is under test here is the deployment, not the recipes.
MODULE_CASES = {case: TINY_CASES[case] for case in ("baseline", "w2s2")}


def module_deployment(folder: Path) -> Path:
    """What `snakedeploy deploy-workflow` writes, with a local path: a folder of its own, its own config."""
    folder.mkdir()
    write_config(
        folder / "config.yaml",
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 100}],
        cases=MODULE_CASES,
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
    return folder


def planned_jobs(dry_run: str) -> list[str]:
    return sorted(line.strip() for line in dry_run.splitlines() if line.strip().startswith(("rule ", "localrule ")))


def test_a_module_deployment_plans_the_jobs_the_workflow_plans_and_runs_them(tmp_path):
    """Used as a module, the workflow plans every job it plans on its own (the same rules, as many times),
    and its scripts, found relative to the module's Snakefile, run for real (fetch, pool, store); the whole
    run through training, figures and the report is the slow test below."""
    folder = module_deployment(tmp_path / "my-experiment")
    as_module = snakemake_in(folder, "-n", "--cores", "2")
    assert as_module.returncode == 0, as_module.stderr[-4000:]
    direct = snakemake_in(REPO, "-n", "--cores", "2", "--directory", str(folder))
    assert direct.returncode == 0, direct.stderr[-4000:]
    assert planned_jobs(as_module.stdout) == planned_jobs(direct.stdout) and len(planned_jobs(direct.stdout)) > 20
    result = snakemake_in(folder, "--cores", "2", "results/tiny/w2s2/stored.h5")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (folder / "results/tiny/w2s2/storage.json").is_file()


@pytest.mark.slow
def test_deployed_as_a_module_runs_end_to_end(tmp_path):
    folder = module_deployment(tmp_path / "my-experiment")
    result = snakemake_in(folder, "--cores", "2")
    assert result.returncode == 0, result.stderr[-6000:]
    summary = folder / "results/tiny/summary/summary.csv"
    assert summary.is_file() and (folder / "results/tiny/figures/tradeoff.png").is_file()
    assert {line.split(",")[0] for line in summary.read_text().splitlines()[1:]} >= set(MODULE_CASES)
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


def test_min_version_is_the_lower_bound_pyproject_requires():
    """The Snakefile refuses the Snakemake versions pyproject.toml does not install."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = next(dep for dep in project["dependencies"] if dep.startswith("snakemake"))
    assert re.search(r'min_version\("([\d.]+)"\)', (REPO / "Snakefile").read_text()).group(1) == required.split(">=")[1]


def test_the_package_lists_every_module():
    """MODULES is what a workflow from a remote source copies: every module file, no other."""
    from poolup import MODULES

    assert sorted(MODULES) == sorted(path.stem for path in (REPO / "src/poolup").glob("*.py"))


def snapshot(folder: Path) -> Path:
    """The repository's files (tracked and new, not ignored) as a fresh git repository tagged v-test."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = REPO / name, folder / name
        if source.is_symlink() or source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"], ["tag", "v-test"]):
        subprocess.run([*git, *command], cwd=folder, check=True)
    return folder


def snakedeploy(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("snakedeploy")
    if tool is None:
        pytest.skip("snakedeploy is not installed (pip install -e '.[test]')")
    return subprocess.run([tool, "deploy-workflow", *args], capture_output=True, text=True, timeout=300)


def test_snakedeploy_from_a_local_clone_with_the_documented_edit(tmp_path):
    """snakedeploy copies config/ (the paper's experiment) and names the module "Snakefile", relative to the
    deployment itself; the documented one-line edit points it at the clone, and the deployment plans the experiment."""
    clone = snapshot(tmp_path / "poolup")
    deployed = tmp_path / "my-experiment"
    result = snakedeploy(str(clone), str(deployed), "--tag", "v-test")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (deployed / "config/config.yaml").read_text() == (REPO / "config.yaml").read_text()
    snakefile = deployed / "workflow/Snakefile"
    text = snakefile.read_text()
    assert '"Snakefile"' in text
    snakefile.write_text(text.replace('"Snakefile"', f'"{clone / "Snakefile"}"'))  # docs/cluster.md's one line
    result = snakemake_in(deployed, "-n")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    planned = {
        line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith(("rule ", "localrule "))
    }
    assert {"fetch", "pool", "fidelity", "aggregate"} <= planned
    assert result.stdout.count("rule pool:") == 5  # the paper's five cases


def test_snakedeploy_from_a_git_url_runs_as_a_remote_module(tmp_path):
    """From a git URL snakedeploy clones the repository and declares github(...); the module then runs
    from a source that is not a folder on disk, which here (offline) is the same tree over HTTP on 127.0.0.1.
    Its jobs import the package copied out of that source, not an installed one."""
    import http.server
    import threading

    clone = snapshot(tmp_path / "github.com/owner/poolup")
    deployed = tmp_path / "my-experiment"
    result = snakedeploy(f"file://{clone}", str(deployed), "--tag", "v-test")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (deployed / "config/config.yaml").read_text() == (REPO / "config.yaml").read_text()
    declaration = 'github("owner/poolup", path="Snakefile", tag="v-test")'
    assert declaration in (deployed / "workflow/Snakefile").read_text()

    served = tmp_path / "served"
    shutil.copytree(clone, served, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    init = served / "src/poolup/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.0+served"'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/Snakefile"
        snakefile = deployed / "workflow/Snakefile"
        snakefile.write_text(snakefile.read_text().replace(declaration, f'"{url}"'))
        write_config(
            deployed / "config/config.yaml",
            datasets=[{"name": "tiny", "source": "bundled", "max_images": 100}],
            cases=MODULE_CASES,
            seeds=1,
        )
        result = snakemake_in(deployed, "--cores", "2", "results/tiny/w2s2/pooled.h5")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from poolup.h5files import read_image_set

    versions = read_image_set(deployed / "results/tiny/w2s2/pooled.h5").attrs["versions"]
    assert versions["poolup"] == "0.1.0+served", versions
