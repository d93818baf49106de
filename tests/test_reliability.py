"""Faults, one section per class: killed jobs, interrupted writes, concurrent runs, tampering, determinism."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import (
    SMALL_DISK_MARKER,
    TINY_CASES,
    TINY_TRAINING,
    on_small_disk,
    run_snakemake,
    scheduled_jobs,
    snakemake_command,
    tiny_config,
)
from run_identity import run_outputs

from poolup import preprocess
from poolup.cli import main as cli_main
from poolup.h5files import read_image_set
from poolup.provenance import file_sha256
from poolup.records import write_json

# --- helpers ----------------------------------------------------------------


def mtimes(workdir: Path) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}


# --- kill -9 of a training job ----------------------------------------------


@pytest.mark.slow  # a whole second tiny run: minutes; CI runs it (`pytest -m slow`)
def test_killed_training_job_is_the_only_one_redone(tiny_run, tmp_path):
    reference, _ = tiny_run
    workdir = tmp_path / "killed"
    workdir.mkdir()
    # One seed per training job, so that killing a job interrupts exactly one run (the
    # reference run trained both seeds of a case in one job: the results must not differ).
    config = tiny_config(workdir / "tiny.yaml", training={**TINY_TRAINING, "seeds_per_job": 1})
    command = snakemake_command(workdir, "--cores", "1", configfiles=[config])
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    # Wait until one training run has finished and another is running, then kill that job's process.
    victim = None
    deadline = time.time() + 300
    while time.time() < deadline and victim is None:
        done = list((workdir / "results/tiny").glob("*/seed*/test_metrics.json"))
        jobs = subprocess.run(
            ["pgrep", "-f", f"{workdir}/.snakemake/scripts/.*train.py"], capture_output=True, text=True
        ).stdout.split()
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
from poolup import preprocess
preprocess.pool_and_store(sys.argv[1], sys.argv[2], sys.argv[3], "w2s1", 2, 1, "float32", "gzip", 9)
"""


def test_kill_during_store_never_leaves_a_complete_looking_file(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(150_000, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", images=images, labels=np.arange(150_000) % 10)
    from poolup.preprocess import fetch_source

    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "big.npz"), filter_name="none")
    stored = tmp_path / "stored.h5"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "raw.h5"), str(stored), str(tmp_path / "storage.json")]
    )
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
    # A target that holds the lock for a training job (fetch, pool, train), not the whole run's figures.
    target = "results/tiny/baseline/seed0/test_metrics.json"
    command = snakemake_command(tmp_path, "--cores", "1", target, configfiles=[config])
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / ".snakemake/locks").glob("*")):
        time.sleep(0.1)
    # The first run is paused (it and its job) while the second tries: on a fast machine it could
    # otherwise finish before the second has started, and the second would find nothing to do.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        assert list((tmp_path / ".snakemake/locks").glob("*")), "the first run never took its lock"
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
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
    codec_table = tree / "tiny/summary/storage_codecs.csv"
    codec_table.write_text(codec_table.read_text().replace("hdf5-gzip", "hdf5-gzip-edited", 1))
    figure = tree / "tiny/figures/tradeoff.png"
    figure.write_bytes(figure.read_bytes()[:100])
    (tree / "tiny/w2s2/.tmp-a1b2c3-upsampled.h5").write_bytes(b"")
    capsys.readouterr()
    assert cli_main(["verify", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "tiny/w2s2/stored.h5: content does not match" in out
    assert "tiny/w2s2/storage.json: records stored content " in out and "(stored_sha256), which " in out
    assert "tiny/baseline/seed1/test_metrics.json: content does not match" in out
    assert "tiny/baseline/seed0/test_metrics.json: history.csv is not the file this run wrote" in out
    assert "summary/manifest.json: ../baseline/seed1/test_metrics.json changed since the aggregation" in out
    assert "tiny/summary/storage_codecs.csv: does not match the storage_codecs.json files it is made from" in out
    assert "tiny/figures/tradeoff.png: not a readable PNG image" in out
    assert "tiny/w2s2/.tmp-a1b2c3-upsampled.h5: a temporary file left by an interrupted job" in out
    assert "tiny/w2s2/seed0: predictions.h5 deleted after the run (its test_metrics.json lists what it wrote)" in out


# --- determinism --------------------------------------------------------------


@pytest.mark.slow  # a whole second tiny run: minutes; CI runs it (`pytest -m slow`)
def test_whole_run_twice_gives_identical_artifacts(tiny_run, tmp_path):
    reference, _ = tiny_run
    run_snakemake(tmp_path, "--cores", "2", configfiles=[tiny_config(tmp_path / "tiny.yaml")])
    first, second = run_outputs(reference), run_outputs(tmp_path)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


# --- kill -9 of the whole Snakemake process group, then a rerun -------------


@pytest.mark.slow  # a whole second tiny run: minutes; CI runs it (`pytest -m slow`)
def test_kill_9_of_the_whole_run_then_a_rerun_leaves_no_temporary_file(tiny_run, tmp_path):
    reference, _ = tiny_run
    workdir = tmp_path / "group"
    workdir.mkdir()
    config = tiny_config(workdir / "tiny.yaml")
    command = snakemake_command(workdir, "--cores", "2", configfiles=[config])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((workdir / "results/tiny").glob("*/seed*/test_metrics.json")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and every job it started, mid-run
    process.wait()
    # What a kill in the middle of a write leaves: a temporary file beside an output (here,
    # the aggregation's, which cannot have run yet, so the rerun is sure to redo that job).
    leftover = workdir / "results/tiny/summary/.tmp-k1ll3d-summary.csv"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("half a table")
    assert cli_main(["verify", str(workdir / "results")]) == 1
    subprocess.run([*command, "--unlock"], capture_output=True, check=True, timeout=120)  # kill -9 leaves the lock
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((workdir / "results").rglob(".tmp-*")) == []
    assert cli_main(["verify", str(workdir / "results")]) == 0
    assert run_outputs(workdir) == run_outputs(reference)


# --- verify and inspect on hostile files: a finding line, never a traceback ---


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    """A results tree written by the real stages: raw, pooled, up-sampled, one run folder, a summary, figures."""
    base = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    np.savez(base / "d.npz", images=rng.integers(0, 256, (40, 12, 12), dtype=np.uint8), labels=np.arange(40) % 10)
    tree = base / "results"
    preprocess.fetch_source(tree / "tiny/raw.h5", "npz", str(base / "d.npz"))
    preprocess.pool(tree / "tiny/raw.h5", tree / "tiny/w2s2/pooled.h5", "w2s2", 2, 2)
    preprocess.upsample(tree / "tiny/w2s2/pooled.h5", tree / "tiny/w2s2/upsampled.h5")
    summary = tree / "tiny/summary"
    summary.mkdir()
    (summary / "runs.csv").write_text("case,seed,macro_f1\nw2s2,0,0.5\n")
    write_json(
        summary / "manifest.json",
        {"stage": "aggregate", "inputs": {}, "outputs": {"runs.csv": file_sha256(summary / "runs.csv")}},
    )
    figures = tree / "tiny/figures"
    figures.mkdir()
    from PIL import Image

    Image.new("L", (4, 4)).save(figures / "tradeoff.png")
    (figures / "tradeoff.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    assert list(__import__("poolup.verify", fromlist=["verify_tree"]).verify_tree(tree)) == []
    return tree


def _first_chunk(path: Path) -> int:
    """Byte offset of the first chunk of images in the file."""
    with h5py.File(path) as file:
        return file["images"].id.get_chunk_info(0).byte_offset


def _flip(path: Path, offset: int = -200) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


HOSTILE = {
    "byte-flipped HDF5 data": (
        lambda t: _flip(t / "tiny/w2s2/upsampled.h5", _first_chunk(t / "tiny/w2s2/upsampled.h5") + 5),
        "upsampled.h5: content does not match its recorded sha256",
    ),
    "byte-flipped HDF5 metadata": (
        lambda t: _flip(t / "tiny/w2s2/upsampled.h5", 100),
        "upsampled.h5: not a readable HDF5 file",
    ),
    "truncated HDF5": (
        lambda t: (t / "tiny/raw.h5").write_bytes((t / "tiny/raw.h5").read_bytes()[:300]),
        "raw.h5: not a readable HDF5 file",
    ),
    "JSON of the wrong type": (
        lambda t: (t / "tiny/w2s2/storage.json").write_text("[1, 2]"),
        "storage.json: holds a JSON list, not an object",
    ),
    "invalid UTF-8": (
        lambda t: (t / "tiny/w2s2/storage.json").write_bytes(b'{"a": "\xff"}'),
        "storage.json: not valid JSON",
    ),
    "NaN in JSON": (lambda t: (t / "tiny/w2s2/storage.json").write_text('{"a": NaN}'), "NaN is not strict JSON"),
    "edited manifest output": (
        lambda t: (t / "tiny/summary/runs.csv").write_text("case,seed,macro_f1\nw2s2,0,0.9\n"),
        "runs.csv changed since the aggregation",
    ),
    "summary file no stage wrote": (
        lambda t: (t / "tiny/summary/extra.csv").write_text("a\n1\n"),
        "extra.csv: not recorded in manifest.json",
    ),
    "leftover temporary file": (
        lambda t: (t / "tiny/w2s2/.tmp-x1y2z3-upsampled.h5").write_bytes(b"half"),
        "a temporary file left by an interrupted job",
    ),
    "leftover temporary folder": (
        lambda t: (t / "tiny/.tmp-abc-summary").mkdir(),
        "a temporary file left by an interrupted job",
    ),
    "symbolic link out of the tree": (
        lambda t: (t / "tiny/w2s2/evil.json").symlink_to("/etc/passwd"),
        "evil.json: a symbolic link (to /etc/passwd)",
    ),
    "half-finished run": (
        lambda t: (t / "tiny/w2s2/seed0").mkdir() or (t / "tiny/w2s2/seed0/history.csv").write_text("a\n1\n"),
        "a half-finished training job (has history.csv, lacks test_metrics.json)",
    ),
    "half-finished figure": (
        lambda t: (t / "tiny/figures/tradeoff.pdf").unlink(),
        "tradeoff.png: a half-finished figure (no tradeoff.pdf)",
    ),
    "corrupt PNG": (lambda t: _flip(t / "tiny/figures/tradeoff.png", 40), "tradeoff.png: not a readable PNG image"),
    "truncated PDF": (
        lambda t: (t / "tiny/figures/tradeoff.pdf").write_bytes(b"%PDF-1.4\n"),
        "tradeoff.pdf: not a complete PDF file",
    ),
    "ragged CSV": (
        lambda t: (t / "tiny/summary/runs.csv").write_text("a,b\n1\n"),
        "runs.csv: not a well-formed CSV table",
    ),
    "manifest naming a path outside": (
        lambda t: write_json(
            t / "tiny/summary/manifest.json", {"inputs": {"../../../../../../etc/passwd": "00"}, "outputs": {}}
        ),
        "names ../../../../../../etc/passwd, outside the results tree",
    ),
    "manifest naming an absolute path": (
        lambda t: write_json(t / "tiny/summary/manifest.json", {"inputs": {"/etc/passwd": "00"}, "outputs": {}}),
        "names the absolute path /etc/passwd",
    ),
    "record of the wrong shape": (
        lambda t: write_json(t / "tiny/summary/manifest.json", {"inputs": [1], "outputs": "x"}),
        "'inputs' and 'outputs' must be mappings",
    ),
}


@pytest.mark.parametrize("fault", sorted(HOSTILE))
def test_verify_reports_every_hostile_file_with_a_line(small_tree, tmp_path, capsys, fault):
    tree = tmp_path / "results"
    shutil.copytree(small_tree, tree, symlinks=True)
    mutate, expected = HOSTILE[fault]
    mutate(tree)
    capsys.readouterr()
    assert cli_main(["verify", str(tree)]) == 1
    out = capsys.readouterr().out
    assert expected in out, out
    assert "Traceback" not in out


def test_inspect_and_verify_exit_codes(small_tree, tmp_path, capsys):
    raw, pooled = small_tree / "tiny/raw.h5", small_tree / "tiny/w2s2/pooled.h5"
    assert cli_main(["inspect", str(raw), str(small_tree / "tiny/summary/manifest.json")]) == 0
    assert cli_main(["verify", str(small_tree)]) == 0
    copy = tmp_path / "pooled.h5"
    shutil.copy(pooled, copy)
    with h5py.File(copy, "r+") as file:
        file.attrs["window"] = 3
    assert cli_main(["inspect", str(copy)]) == 1  # a problem found
    assert "checksum: MISMATCH" in capsys.readouterr().out
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe")
    for unusable in (tmp_path / "missing.h5", tmp_path, tmp_path / "list.json", tmp_path / "bad.json"):
        assert cli_main(["inspect", str(unusable)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("poolup: error: ") and err.count("\n") == 1, err
    assert cli_main(["verify", str(tmp_path / "missing")]) == 2
    assert cli_main(["verify", str(copy)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert cli_main(["inspect", str(raw), str(tmp_path / "missing.h5")]) == 2  # the worst of the arguments
    assert cli_main(["frobnicate"]) == 2


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    assert cli_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"poolup {version('poolup')}"


# --- logs: the job's log holds the traceback of an unexpected exception -------

JOB = """
import sys, types
from poolup.errors import PoolupError
from poolup.scripting import logged_job

job = types.SimpleNamespace(log=[sys.argv[1]], output=[sys.argv[2]], rule="demo", wildcards={"case": "w2s2"})
with logged_job(job) as log:
    log.info("working")
    if sys.argv[3] == "bug":
        {}["missing"]
    raise PoolupError("input.h5: bad input; fix it")
"""


@pytest.mark.parametrize("kind", ["bug", "input"])
def test_the_job_log_holds_what_went_wrong(tmp_path, kind):
    log, output = tmp_path / "job.log", tmp_path / "out" / "result.csv"
    output.parent.mkdir()
    (output.parent / ".tmp-stale1-result.csv").write_text("left by a killed attempt")
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(log), str(output), kind],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    text = log.read_text()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "removed" in text and not list(output.parent.iterdir()), "the stale temporary file is gone"
    if kind == "bug":
        assert "Traceback (most recent call last)" in text and "KeyError: 'missing'" in text
        assert f"poolup: unexpected error: KeyError: 'missing'; the traceback is in {log}" in result.stderr
    else:
        assert "ERROR input.h5: bad input; fix it" in text and "Traceback" not in text
        assert result.stderr == "poolup: error: input.h5: bad input; fix it\n"


# --- an input made for another case -----------------------------------------------


def finished_copy(tiny_run, folder: Path) -> tuple[Path, Path]:
    """A copy of the finished tiny run's working directory (results and Snakemake's records), and its config."""
    source, config = tiny_run
    shutil.copytree(source, folder, symlinks=True)
    return folder, folder / config.name


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_another_cases_input_is_refused_named_by_verify_and_the_advice_restores_the_run(tiny_run, tmp_path):
    """The baseline's pooled.h5 copied over w2s2's: nothing trains on it, verify names the copy, and deleting it
    (the advice) gives back the run."""
    reference, _ = tiny_run
    workdir, config = finished_copy(tiny_run, tmp_path / "swapped")
    case = workdir / "results/tiny/w2s2"
    shutil.copy(workdir / "results/tiny/baseline/pooled.h5", case / "pooled.h5")
    result = run_snakemake(workdir, "--cores", "2", configfiles=[config], check=False)
    assert result.returncode != 0
    # The first stages that read it (store, upsample, codecs) refuse it: nothing is made from it.
    assert (
        "poolup: error: results/tiny/w2s2/pooled.h5: made for case 'baseline', expected case 'w2s2'; a file made for "
        "another one (or from one) is in its place" in result.stderr
    ), result.stderr[-3000:]
    assert "unexpected error" not in result.stderr
    runs = sorted(path.relative_to(workdir) for path in case.glob("seed*/test_metrics.json"))
    assert all((workdir / run).read_bytes() == (reference / run).read_bytes() for run in runs), (
        "no run was trained on the baseline's images (the ones left are the original runs)"
    )
    findings = subprocess.run(
        [sys.executable, "-m", "poolup", "verify", "results"], cwd=workdir, capture_output=True, text=True, check=False
    ).stdout
    assert (
        "results/tiny/w2s2/pooled.h5: the same file as results/tiny/baseline/pooled.h5, made for case 'baseline': "
        "one case's file was copied into another case's folder" in findings
    ), findings
    (case / "pooled.h5").unlink()
    run_snakemake(workdir, "--cores", "2", configfiles=[config])
    assert cli_main(["verify", str(workdir / "results")]) == 0
    assert run_outputs(workdir) == run_outputs(reference)


# --- a deleted file -------------------------------------------------------------------


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_a_deleted_run_record_is_redone_by_the_plain_command(tiny_run, tmp_path):
    reference, _ = tiny_run
    workdir, config = finished_copy(tiny_run, tmp_path / "deleted")
    for name in ("w2s2/seed0/test_metrics.json", "baseline/storage.json", "summary/runs.csv", "figures/forest.pdf"):
        (workdir / "results/tiny" / name).unlink()
    assert cli_main(["verify", str(workdir / "results")]) == 1
    run_snakemake(workdir, "--cores", "2", configfiles=[config])
    assert cli_main(["verify", str(workdir / "results")]) == 0
    assert run_outputs(workdir) == run_outputs(reference)


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_a_deleted_intermediate_is_named_with_the_command_that_remakes_exactly_it(tiny_run, tmp_path, capsys):
    """raw.h5 and pooled.h5 feed other jobs only: deleting them reruns nothing, and verify gives,
    for each, the command that remakes it; run, it gives back the same bytes, and nothing reruns after."""
    workdir, config = finished_copy(tiny_run, tmp_path / "intermediates")
    results = workdir / "results"
    deleted = [results / "tiny/raw.h5", results / "tiny/baseline/pooled.h5", results / "tiny/w2s2/pooled.h5"]
    before = {path: path.read_bytes() for path in deleted}
    for path in deleted:
        path.unlink()
    assert "Nothing to be done" in run_snakemake(workdir, "-n", configfiles=[config]).stdout
    capsys.readouterr()
    assert cli_main(["verify", str(results)]) == 1
    findings = capsys.readouterr().out.splitlines()[:-1]
    assert len(findings) == 3, findings
    by_file = {finding.split(": missing (deleted)")[0]: finding for finding in findings}
    assert sorted(by_file) == sorted(map(str, deleted)), findings
    for path in deleted:
        target, finding = path.relative_to(workdir), by_file[str(path)]
        assert finding.endswith(
            f"were made from it; `snakemake --cores 1 {target}` in {workdir} (with the run's --configfile options) "
            "remakes exactly it"
        ) or finding.endswith(
            f"was made from it; `snakemake --cores 1 {target}` in {workdir} (with the run's --configfile options) "
            "remakes exactly it"
        ), finding
        run_snakemake(workdir, "--cores", "1", str(target), configfiles=[config])
    assert cli_main(["verify", str(results)]) == 0
    assert {path: path.read_bytes() for path in deleted} == before
    assert "Nothing to be done" in run_snakemake(workdir, "-n", configfiles=[config]).stdout


def test_upsampled_images_are_written_on_request_and_rerun_nothing(tiny_run, tmp_path):
    """A run keeps no float32 copy of the up-sampled images; asked for, upsampled.h5 is made (the arrays
    training made in memory, linked to its pooled.h5), and afterwards nothing reruns: adding it costs no retraining."""
    workdir, config = finished_copy(tiny_run, tmp_path / "on-request")
    target = workdir / "results/tiny/w2s2/upsampled.h5"
    assert not target.exists()
    asked = str(target.relative_to(workdir))
    planned = scheduled_jobs(run_snakemake(workdir, "-n", "--cores", "1", asked, configfiles=[config]).stdout)
    assert {rule for rule, _ in planned} == {"upsample"}, planned
    run_snakemake(workdir, "--cores", "1", asked, configfiles=[config])
    made = preprocess.reconstruct(workdir / "results/tiny/w2s2/pooled.h5", case="w2s2")
    assert read_image_set(target).images.tobytes() == made.images.tobytes()
    assert cli_main(["verify", str(workdir / "results")]) == 0
    assert "Nothing to be done" in run_snakemake(workdir, "-n", configfiles=[config]).stdout


# --- a full disk, a read-only folder ----------------------------------------------------

FIGURES = [
    "results/tiny/figures/examples.png",
    "results/tiny/figures/tradeoff.png",
    "results/tiny/figures/curve_f1.png",
]


def test_figures_on_a_full_disk_fail_with_one_line_each_and_leave_nothing(tiny_run, tmp_path):
    """The issue's run: the figures' folder on a full disk (a real 16 KB tmpfs). (A read-only folder is refused
    by Snakemake itself, which removes a job's old outputs before the job: see test_artifacts.py for poolup's
    own writes into one.)"""
    workdir, config = finished_copy(tiny_run, tmp_path / "disk")
    figures = workdir / "results/tiny/figures"
    for path in figures.iterdir():
        path.unlink()
    command = " ".join(map(shlex.quote, snakemake_command(workdir, "--cores", "1", *FIGURES, configfiles=[config])))
    # What the jobs left on the small disk, seen from inside (the mount ends with the command).
    script = f"{command}; echo left:; ls -A {shlex.quote(str(figures))}"
    result = on_small_disk(figures, ["sh", "-c", script], size="16k", timeout=900)
    errors = [line for line in result.stderr.splitlines() if line.startswith(("poolup: error", "poolup: unexpected"))]
    assert sorted(errors) == sorted(
        f"poolup: error: {figure}: cannot be written (No space left on device); nothing was written, free space on "
        "that disk and rerun"
        for figure in FIGURES
    ), result.stderr[-4000:]
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout.split("left:")[-1].split() == [SMALL_DISK_MARKER]


# --- poolup inspect: a model, a listed file, a closed pipe ---------------------------------


def test_inspect_shows_a_model_and_checks_it_against_its_runs_record(tiny_run, tmp_path, capsys):
    model = tiny_run[0] / "results/tiny/w2s2/seed0/model.keras"
    capsys.readouterr()
    assert cli_main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "Keras archive members:\n  metadata.json:" in out and "model.weights.h5" in out
    assert "model: Sequential 'paper_cnn', 13 layers, input [None, 28, 28, 1]; saved by Keras 3." in out
    assert f"checksum: OK (recorded in test_metrics.json {file_sha256(model)}" in out
    alone = tmp_path / "model.keras"
    shutil.copy(model, alone)
    assert cli_main(["inspect", str(alone)]) == 1  # no run record beside it: nothing to check it against
    assert "checksum: none recorded (no test_metrics.json beside it lists model.keras)" in capsys.readouterr().out
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    table = tiny_run[0] / "results/tiny/summary/runs.csv"
    for unusable, message in (
        (tmp_path / "broken.keras", "not a Keras archive (not a zip file)"),
        (table, "a .csv file, not an artifact `poolup inspect` reads"),
    ):
        assert cli_main(["inspect", str(unusable)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"poolup: error: {unusable}: {message}") and err.count("\n") == 1, err


def test_inspect_into_a_pipe_closed_early_ends_quietly(small_tree):
    raw = str(small_tree / "tiny/raw.h5")
    process = subprocess.Popen(
        [sys.executable, "-m", "poolup", "inspect", *[raw] * 2000],  # far more than a pipe holds
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith(raw)  # `| head -1`: one line read, then the reader is gone
    process.stdout.close()
    assert process.wait(timeout=120) == 141
    assert process.stderr.read() == ""
