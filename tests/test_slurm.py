"""The tiny end-to-end workflow submitted to a real single-node SLURM (tests/cluster/start-slurm.sh)."""

import json
import shutil
import subprocess
import time

import h5py
import pytest
from conftest import REPO, run_snakemake, write_config

from poolup.runs import reproducible

pytestmark = pytest.mark.slurm
CASES = {"baseline": {"window": 1, "stride": 1}, "w2s2": {"window": 2, "stride": 2}}
SLURM = ["--workflow-profile", str(REPO / "profiles/slurm")]


def slurm_problem() -> str | None:
    """Why SLURM cannot be used here, or None when a node is idle and sacct answers."""
    if not shutil.which("sbatch"):
        return "sbatch not found; start it with tests/cluster/start-slurm.sh (as root)"
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
    if nodes.returncode != 0 or "idle" not in nodes.stdout.split():
        return f"no idle SLURM node ({nodes.stdout.strip() or nodes.stderr.strip()}); run tests/cluster/start-slurm.sh"
    if subprocess.run(["sacct", "-n", "-X"], capture_output=True).returncode != 0:
        return "sacct fails (no accounting); start-slurm.sh starts slurmdbd"
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = slurm_problem()
    if problem:
        pytest.skip(problem)


def tiny(path):
    return write_config(
        path,
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 200}],
        cases=CASES,
        seeds=2,
        training={"history_every": 3, "monitor_samples": 20},
    )


def outputs(workdir):
    """What must not depend on where a job ran: metrics less timing, and every HDF5 content checksum."""
    result = {}
    for path in sorted((workdir / "results/tiny").rglob("*")):
        key = str(path.relative_to(workdir))
        if path.name == "test_metrics.json":
            record = reproducible(json.loads(path.read_text()))
            record.pop("threads", None)
            result[key] = record
        elif path.suffix == ".h5":
            with h5py.File(path) as file:
                result[key] = file.attrs["content_sha256"]
    return result


def test_workflow_runs_through_sbatch_and_matches_a_local_run(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir(), remote.mkdir()
    run_snakemake(local, "--cores", "2", configfiles=[tiny(local / "tiny.yaml")])
    started = time.time()
    # One training thread (rules/train.smk), as locally: the numbers must match the local run bit for bit.
    result = run_snakemake(remote, *SLURM, configfiles=[tiny(remote / "tiny.yaml")], timeout=1200)
    job_ids = sorted(
        {
            line.split("SLURM jobid ")[1].split()[0].rstrip(")")
            for line in result.stderr.splitlines()
            if "SLURM jobid " in line
        }
    )
    assert len(job_ids) >= 10, result.stderr[-3000:]
    states = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert {line.split("|")[1] for line in states.stdout.split()} == {"COMPLETED"}, states.stdout
    logs = list((remote / ".snakemake/slurm_logs").rglob("*.log"))
    assert len(logs) >= len(job_ids)
    assert outputs(remote) == outputs(local)
    print(f"{len(job_ids)} SLURM jobs in {time.time() - started:.0f} s")


def test_failing_job_stops_snakemake_in_bounded_time(cluster, tmp_path):
    bad = tmp_path / "not-an-archive.npz"
    bad.write_text("this is not an npz archive")
    config = write_config(
        tmp_path / "bad.yaml",
        datasets=[{"name": "bad", "source": "npz", "path": str(bad)}],
        cases={"baseline": {"window": 1, "stride": 1}},
        seeds=1,
    )
    started = time.time()
    result = run_snakemake(tmp_path, *SLURM, "--retries", "0", configfiles=[config], check=False, timeout=300)
    assert result.returncode != 0
    assert time.time() - started < 300
    assert "Error in rule fetch" in result.stderr
