"""Faults, one section per class: killed jobs, interrupted writes, concurrent runs, tampering, determinism."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from conftest import REPO, SNAKEMAKE, TINY_CASES, TINY_TRAINING, run_snakemake, tiny_config
from poolup.cli import main as cli_main
from poolup.training import reproducible

# --- helpers ----------------------------------------------------------------


def mtimes(workdir: Path) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}


def run_outputs(workdir: Path) -> dict[str, object]:
    """Every artifact's identity, less what legitimately varies between runs.

    Varies, and why: wall-clock timings (``*_seconds``, ``images_per_second``
    in ``test_metrics.json`` and ``runs.csv``/``summary.csv``/``datasets.csv``; encode and
    decode times in ``storage_codecs.*``); ``model.keras``
    archives (Keras stamps the save date; their weights are compared instead);
    logs and benchmark files. (PDF figures are compared: they carry no creation date.)
    """
    identity: dict[str, object] = {}
    for path in sorted((workdir / "results").rglob("*")):
        name = str(path.relative_to(workdir))
        if "logs" in path.parts or "benchmarks" in path.parts or not path.is_file():
            continue
        if path.suffix == ".h5":
            with h5py.File(path) as file:
                identity[name] = file.attrs["content_sha256"]
        elif path.name == "test_metrics.json":
            identity[name] = reproducible(json.loads(path.read_text()))
        elif path.name in ("runs.csv", "summary.csv", "datasets.csv", "storage_codecs.csv"):
            import pandas as pd

            frame = pd.read_csv(path)
            timing = [c for c in frame.columns if "seconds" in c or c == "images_per_second" or c.endswith("_us_per_image")]
            identity[name] = frame.drop(columns=timing).to_csv()
        elif path.suffix in (".csv", ".png", ".pdf", ".md") or path.name == "storage.json":
            identity[name] = path.read_bytes()
    return identity


# --- kill -9 of a training job ----------------------------------------------


def test_killed_training_job_is_the_only_one_redone(tiny_run, tmp_path):
    reference, _ = tiny_run
    workdir = tmp_path / "killed"
    workdir.mkdir()
    # One seed per training job, so that killing a job interrupts exactly one run (the
    # reference run trained both seeds of a case in one job: the results must not differ).
    config = tiny_config(workdir / "tiny.yaml", training={**TINY_TRAINING, "seeds_per_job": 1})
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1", "--configfile", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # Wait until one training run has finished and another is running, then kill that job's process.
    victim = None
    deadline = time.time() + 300
    while time.time() < deadline and victim is None:
        done = list((workdir / "results/tiny").glob("*/seed*/test_metrics.json"))
        jobs = subprocess.run(["pgrep", "-f", f"{workdir}/.snakemake/scripts/.*train.py"], capture_output=True, text=True).stdout.split()
        if done and jobs:
            victim = int(jobs[0])
        time.sleep(0.2)
    assert victim is not None, "no training job to kill"
    os.kill(victim, signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode != 0, "Snakemake must report the killed job"
    expected = {workdir / f"results/tiny/{case}/seed{seed}" for case in TINY_CASES for seed in (0, 1)}
    killed = sorted(expected - {p.parent for p in (workdir / "results/tiny").glob("*/seed*/test_metrics.json")})
    assert len(killed) == 1, "exactly the killed run is incomplete"
    before = mtimes(workdir)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    after = mtimes(workdir)
    killed_run = "/".join(killed[0].parts[-2:])  # "case/seedN": its outputs, log and benchmark
    untouched = [name for name in before if "/seed" in name and killed_run not in name]
    assert untouched and [name for name in untouched if before[name] != after[name]] == []
    assert run_outputs(workdir) == run_outputs(reference)


# --- interrupted writes -----------------------------------------------------

WRITER = """
import sys
import numpy as np
from poolup import stages
stages.store(sys.argv[1], sys.argv[2], sys.argv[3], "w2s1", 2, 1, "float32", "gzip", 9)
"""


def test_kill_during_store_never_leaves_a_complete_looking_file(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(150_000, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", images=images, labels=np.arange(150_000) % 10)
    from poolup.stages import fetch

    fetch(tmp_path / "raw.h5", "npz", str(tmp_path / "big.npz"), filter_name="none")
    stored = tmp_path / "stored.h5"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "raw.h5"), str(stored), str(tmp_path / "storage.json")])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".tmp-*stored.h5")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".tmp-*stored.h5")), "the writer never started"
    process.kill()
    process.wait()
    assert not stored.exists() and not (tmp_path / "storage.json").exists()


# --- two snakemake processes on one directory -------------------------------


def test_second_snakemake_on_the_same_directory_is_refused(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml", cases={"baseline": {"window": 1, "stride": 1}})
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1", "--configfile", str(config)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / ".snakemake/locks").glob("*")):
        time.sleep(0.1)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    _, first_err = first.communicate(timeout=600)
    assert second.returncode != 0
    assert "cannot be locked" in second.stderr or "LockException" in second.stderr
    assert first.returncode == 0, first_err[-2000:]
    assert cli_main(["verify", str(tmp_path / "results")]) == 0


# --- tampering and broken links ---------------------------------------------


def test_verify_passes_on_a_clean_tree_and_finds_each_problem(tiny_run, tmp_path, capsys):
    source, _ = tiny_run
    assert cli_main(["verify", str(source / "results")]) == 0
    tree = tmp_path / "results"
    shutil.copytree(source / "results", tree)
    with h5py.File(tree / "tiny/w2s2/stored.h5", "r+") as file:
        file["images"][0, 0, 0] ^= 1
    metrics = tree / "tiny/baseline/seed1/test_metrics.json"
    record = json.loads(metrics.read_text())
    record["macro_f1"] = 1.0
    metrics.write_text(json.dumps(record))
    (tree / "tiny/baseline/seed0/history.csv").write_text("edited\n")
    (tree / "tiny/w2s2/seed0/predictions.h5").unlink()
    capsys.readouterr()
    assert cli_main(["verify", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "tiny/w2s2/stored.h5: content does not match" in out
    assert "tiny/w2s2/storage.json: made from a different stored.h5" in out
    assert "tiny/baseline/seed1/test_metrics.json: content does not match" in out
    assert "tiny/baseline/seed0/test_metrics.json: history.csv is not the file this run wrote" in out
    assert "tiny/w2s2/seed0/test_metrics.json: its predictions.h5 is missing" in out
    assert "summary/manifest.json: ../baseline/seed1/test_metrics.json changed since the aggregation" in out


# --- determinism --------------------------------------------------------------


def test_whole_run_twice_gives_identical_artifacts(tiny_run, tmp_path):
    reference, _ = tiny_run
    run_snakemake(tmp_path, "--cores", "2", configfiles=[tiny_config(tmp_path / "tiny.yaml")])
    first, second = run_outputs(reference), run_outputs(tmp_path)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
