"""Shared fixtures: the repository, real MNIST when present, and a real Snakemake runner."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The workflow trains on TensorFlow's oneDNN kernels (training.onednn, the default), and TensorFlow
# reads that switch once, when it is imported: tests that train in this process must match the
# training jobs they are compared with, whichever test imports TensorFlow first.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"


# The test files that take longest, first (in this order): pytest-xdist hands each worker whole files
# (--dist loadfile, pyproject.toml), and a long file handed out last would keep one worker busy while the
# other has nothing left to do. The rest keep their order; tests within a file keep theirs.
LONGEST_FILES = (
    "test_reliability.py",
    "test_search.py",
    "test_sequential.py",
    "test_datasets.py",
    "test_training.py",
    "test_deploy.py",
    "test_splits.py",
    "test_workflow.py",
    "test_options.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def write_idx(path: Path, array: np.ndarray, magic_dtype: int = 0x08, compress: bool = True) -> Path:
    """Write a uint8 array in IDX format (the MNIST file format)."""
    header = bytes([0, 0, magic_dtype, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(data)
    return path


def synthetic_digits(n: int, side: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images with a bright blob whose place depends on the label (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, side, side)).astype(np.uint8)
    for i, label in enumerate(labels):
        row, col = 4 + (label // 5) * 12, 2 + (label % 5) * 5
        images[i, row : row + 8, col : col + 4] = 250
    return images, labels


@pytest.fixture
def mnist_idx_folder(tmp_path: Path) -> Path:
    """A folder of the four MNIST IDX files: the real ones when ../shared has them, else small written ones."""
    if SHARED_MNIST.is_dir():
        return SHARED_MNIST
    return write_idx_folder(tmp_path / "idx", 120, 30)


def write_config(path: Path, **sections) -> Path:
    """A YAML config file built from keyword sections."""
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str, configfiles: list[Path] = ()) -> list[str]:
    """The command line that runs the repository's workflow in ``workdir`` with ``configfiles``."""
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return command + ["--configfile", *map(str, configfiles)] if configfiles else command


def write_idx_folder(folder: Path, train: int, test: int) -> Path:
    """The four MNIST IDX files of ``train`` + ``test`` learnable synthetic digits."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = synthetic_digits(n, seed=seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def run_snakemake(
    workdir: Path, *args: str, configfiles: list[Path] = (), check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run the real workflow in ``workdir`` with only ``configfiles`` (schema defaults fill the rest).

    ``workdir`` has no config.yaml, so the repository's paper config is not merged in.
    """
    command = snakemake_command(workdir, *args, configfiles=configfiles)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def rule_family(rule: str) -> str:
    """A rule's name, with the generated training rules (one per block of seeds) as one family, "train"."""
    return "train" if rule.startswith("train_seeds_") else rule


def scheduled_jobs(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job in a ``snakemake -n`` listing (checkpoints too)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in dry_run_output.splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")) and stripped.endswith(":"):
            jobs.append((rule_family(stripped.split()[1].rstrip(":")), {}))
        elif stripped.startswith("wildcards:") and jobs:
            for item in stripped[len("wildcards:") :].split(","):
                key, _, value = item.strip().partition("=")
                jobs[-1][1][key] = value
    return jobs


def same_storage(cases) -> dict:
    """storage.json records of cases that store the same bytes (for summaries built from hand-made runs)."""
    record = {"window": 1, "stride": 1, "stored_shape": [28, 28], "stored_pixels": 784, "pixel_ratio": 1.0}
    return {case: {**record, "stored_bytes": 100, "bytes_per_image": 1.0} for case in cases}


# The baseline, a pooling case, and a recipe that stores image files (so every end-to-end check meets an encoded store).
TINY_CASES = {
    "baseline": {"window": 1, "stride": 1},
    "w2s2": {"window": 2, "stride": 2},
    "w2webp": {"window": 2, "stride": 2, "codec": "webp", "quality": 50},
}
TINY_TRAINING = {"history_every": 3, "monitor_samples": 20}


def tiny_config(path: Path, cases: dict = TINY_CASES, training: dict = TINY_TRAINING, **extra) -> Path:
    """The tiny end-to-end config: 200 bundled real digits, 3 cases, 2 seeds."""
    return write_config(
        path,
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 200}],
        cases=cases,
        seeds=2,
        training=training,
        **extra,
    )


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that ``build`` fills once per test session, shared by every pytest-xdist worker.

    Each worker has a base temporary folder of its own; their parent is the
    session's. The first worker to ask builds under a file lock while the others
    wait for it, so a fixture of several minutes is paid once, not once per
    worker. A build that fails leaves no done-marker: the next worker to ask
    builds again (and meets the same failure, with its own message).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def _tiny_run(workdir: Path) -> None:
    config = tiny_config(workdir / "tiny.yaml")
    run_snakemake(workdir, "--cores", "2", configfiles=[config])
    run_snakemake(workdir, "--report", "results/report.html", configfiles=[config])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """The whole workflow (default target) run once for real, then its report (read-only: copy to change it)."""
    workdir = built_once(tmp_path_factory, "tiny", _tiny_run)
    return workdir, workdir / "tiny.yaml"


# The file on_small_disk leaves in its tmpfs (so that the mount point is never an empty folder).
SMALL_DISK_MARKER = ".small-disk"


def on_small_disk(
    folder: Path, command: list[str], size: str = "16k", read_only: bool = False, **run
) -> subprocess.CompletedProcess:
    """Run ``command`` with a real tmpfs of ``size`` (or a read-only one) mounted on ``folder``.

    In a user and mount namespace of its own (``unshare -rm``), so no root is
    needed and the mount disappears with the command. Skips, saying why, where
    the kernel lets no unprivileged user mount (the write-limit tests, which
    need no mount, still run there).
    """
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no tmpfs can be mounted here (unshare -rm: {probe.stderr.strip()[:100]})")
    # The marker keeps the mount point from looking empty (Snakemake removes empty output folders
    # after a failure, and a mount point cannot be removed); it is made before a read-only remount.
    script = (
        f'mount -t tmpfs -o size={size} tmpfs "$1" && : > "$1/{SMALL_DISK_MARKER}" && '
        + ('mount -o remount,ro "$1" && ' if read_only else "")
        + 'shift && exec "$@"'
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(folder), *command],
        capture_output=True,
        text=True,
        check=False,
        **run,
    )


def with_file_size_limit(limit: int, command: list[str], **run) -> subprocess.CompletedProcess:
    """Run ``command`` under a file size limit (``ulimit -f``): a write beyond ``limit`` bytes fails (EFBIG)."""
    import resource
    import signal

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(command, capture_output=True, text=True, check=False, preexec_fn=limit_files, **run)
