"""Training runs and the jobs that train them: seeds grouped into jobs (one rule each), each run's files
and record, and what a job records about itself.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.h5files import write_h5
from poolup.job_inputs import TrainingData, TrainSettings
from poolup.loop import HISTORY_COLUMNS, FitResult, PreparedRun, Trainer
from poolup.provenance import file_sha256, library_versions, relative_name
from poolup.records import write_model, write_rows
from poolup.runtime import configure_tensorflow

# Keys of the config's training section that change no run's result (how runs are scheduled, which of
# their files are kept): the workflow leaves them out of the jobs' params, so changing them reruns nothing.
TRAINING_EXECUTION_KEYS = ("seeds_per_job", "keep")


# Training rules are named after the seeds they train (group_name).
TRAIN_RULE_PREFIX = "train_seeds_"
TRAIN_RULE = re.compile(re.escape(TRAIN_RULE_PREFIX) + r"(\d+_\d+)(_\d+_\d+)*")


def seed_block(seed: int, size: int) -> tuple[int, int]:
    """First and last seed number of the fixed block of ``size`` seeds that holds ``seed``."""
    first = seed // size * size
    return first, first + size - 1


def group_seeds(
    seeds: Iterable[int],
    size: int,
    boundaries: Sequence[int] = (),
    state: Callable[[int], Hashable] | None = None,
) -> list[list[int]]:
    """The seeds in groups of at most ``size``, one training job each, in seed order.

    A group is a fixed block of ``size`` seed numbers (:func:`seed_block`), cut
    at every ``boundaries`` count (the looks of a sequential design, so that no
    job trains seeds of two looks), and split by ``state`` (the cases and data
    sets whose runs of the seed are finished, say): every job's seeds are then
    all finished or all to train, so adding seeds to a partly filled block adds
    a job and never reruns the finished one. Groups do not depend on the list's
    order: adding seeds never moves a finished seed into another group.
    """
    marks = sorted(boundaries)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for seed in sorted(seeds):
        key = (bisect.bisect_right(marks, seed), seed_block(seed, size), state(seed) if state else None)
        groups.setdefault(key, []).append(seed)
    return sorted(groups.values())


def group_name(group: Sequence[int]) -> str:
    """The name of the rule that trains ``group``: ``train_seeds_`` and each run of consecutive seeds as
    ``first_last`` (``train_seeds_0_4``; ``train_seeds_0_1_3_4`` for seeds 0, 1, 3, 4). :func:`group_of` reads it."""
    runs: list[list[int]] = []
    for seed in sorted(group):
        if runs and seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    return TRAIN_RULE_PREFIX + "_".join(f"{first}_{last}" for first, last in runs)


def groups_sent(argv: Sequence[str]) -> list[list[int]]:
    """The seeds of the training jobs named by a job process's command line (Snakemake's ``--target-jobs
    RULE:WILDCARDS ...``, which a cluster job gets to run one job): that process builds only their rules."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--target-jobs", nargs="+", default=[])
    sent, _ = parser.parse_known_args(list(argv))
    return [group for spec in sent.target_jobs if (group := group_of(spec.partition(":")[0]))]


def group_of(name: str) -> list[int] | None:
    """The seeds of the training rule called ``name`` (:func:`group_name`), or None for another rule's name."""
    if not TRAIN_RULE.fullmatch(name):
        return None
    bounds = list(map(int, name[len(TRAIN_RULE_PREFIX) :].split("_")))
    return [seed for first, last in zip(bounds[::2], bounds[1::2]) for seed in range(first, last + 1)]


# Each run's files by name (the training rules' outputs, rules/train.smk). The analysis reads the
# history and the record; the others are kept where training.keep lists them (OPTIONAL_RUN_FILES).
RUN_FILE_NAMES = {
    "model": "model.keras",
    "history": "history.csv",
    "metrics": "test_metrics.json",
    "predictions": "predictions.h5",
}
OPTIONAL_RUN_FILES = ("model", "predictions")


def kept_run_files(keep: Sequence[str] = ()) -> dict[str, str]:
    """The files a run writes, by name, when ``training.keep`` is ``keep``: the history and the record
    (all that the analysis reads, and what makes a run finished) and the optional files listed."""
    return {name: file for name, file in RUN_FILE_NAMES.items() if name not in OPTIONAL_RUN_FILES or name in keep}


@dataclass(frozen=True)
class RunPaths:
    """The files one training run writes: always its learning curve and record (what the analysis
    reads); the trained model and the test predictions unless ``training.keep`` leaves them out (None)."""

    model: str | None
    history: str
    metrics: str
    predictions: str | None


def write_run_files(
    paths: RunPaths,
    trainer: Trainer,
    data: TrainingData,
    run: PreparedRun,
    result: FitResult,
    probabilities: NDArray[np.float32],
    case: str,
    raw_probabilities: NDArray[np.float32] | None = None,
) -> dict[str, str]:
    """Write a run's predictions (where kept), history and model (where kept); return their digests for
    ``test_metrics.json``, in that order.

    A file not kept is deleted if an earlier run of the seed left one: Snakemake removes only a job's
    outputs before it runs, and the folder must not hold a model or predictions of another run.
    """
    folder = Path(paths.metrics).parent
    for name in OPTIONAL_RUN_FILES:
        if getattr(paths, name) is None:
            (folder / RUN_FILE_NAMES[name]).unlink(missing_ok=True)
    digests = {}
    if paths.predictions is not None:
        digests[Path(paths.predictions).name] = write_h5(
            paths.predictions,
            {
                "labels": data.labels[run.test].astype(np.uint8),
                "predicted": probabilities.argmax(axis=1).astype(np.uint8),
                "probabilities": probabilities.astype(np.float32),
                "test_indices": run.test.astype(np.int64),
                # The same test images as raw.h5 holds them (evaluation on raw test images).
                **(
                    {}
                    if raw_probabilities is None
                    else {
                        "raw_predicted": raw_probabilities.argmax(axis=1).astype(np.uint8),
                        "raw_probabilities": raw_probabilities.astype(np.float32),
                    }
                ),
            },
            {
                "stage": "train",
                "case": case,
                "seed": run.seed,
                "source_sha256": data.source_sha256,
                "source_file": relative_name(data.source, paths.predictions),
            },
        )
    write_rows(paths.history, result.history, HISTORY_COLUMNS)
    digests[Path(paths.history).name] = file_sha256(paths.history)
    if paths.model is not None:
        write_model(paths.model, trainer.model)
        digests[Path(paths.model).name] = file_sha256(paths.model)
    return digests


@dataclass(frozen=True)
class JobInfo:
    """What every run of one training job shares, recorded in each ``test_metrics.json``."""

    case: str
    threads: int
    device: str
    precision_used: str  # after any fallback to float32
    onednn_used: bool  # the kernels TensorFlow ran (see configure_tensorflow)
    seeds_in_job: int
    versions: dict[str, str]


def run_record(
    job: JobInfo,
    data: TrainingData,
    run: PreparedRun,
    settings: TrainSettings,
    result: FitResult,
    report: dict[str, Any],
    seconds: dict[str, float],
    outputs: dict[str, str],
    source_file: str = "",
) -> dict[str, Any]:
    """The content of one run's ``test_metrics.json`` (``source_file``: the input's path relative to it).

    The job's fixed costs (loading, TensorFlow's start) are in the first
    seed's ``seconds`` only; the others record them as 0.
    """
    return {
        "stage": "train",
        "case": job.case,
        "seed": run.seed,
        **report,
        "n_train": int(run.fit.shape[0]),
        "n_validation": int(run.validation.shape[0]),
        "n_test": int(run.test.shape[0]),
        "n_classes": data.n_classes,
        # A folder data set's class folders, class 0 first (raw.h5's class_names); [] for numbered classes.
        "class_names": list(data.class_names),
        "settings": {**asdict(settings), **run.scaling},
        "epochs_run": len(result.epochs),
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "threads": job.threads,
        "device": job.device,
        "precision_used": job.precision_used,
        "onednn_used": job.onednn_used,
        "seeds_in_job": job.seeds_in_job,
        "images_per_second": result.images_seen / seconds["train_seconds"],
        **seconds,
        "source_sha256": data.source_sha256,
        "source_file": source_file,
        "versions": job.versions,
        "outputs": outputs,
    }


def start_job(case: str, threads: int, settings: TrainSettings, seeds_in_job: int) -> JobInfo:
    """Start TensorFlow for a training job (threads, precision, kernels) and describe the job for its records."""
    onednn_used = configure_tensorflow(threads, settings.precision, settings.onednn)
    import keras
    import tensorflow as tf

    return JobInfo(
        case=case,
        threads=threads,
        device="GPU" if tf.config.list_logical_devices("GPU") else "CPU",
        precision_used=keras.mixed_precision.global_policy().name,
        onednn_used=onednn_used,
        seeds_in_job=seeds_in_job,
        versions={**library_versions(), "tensorflow": tf.__version__, "keras": keras.__version__},
    )


# The folder of one run's files: results/{dataset}/{case}/seed{seed}/ (rules/train.smk).
RUN_FOLDER = re.compile(r"seed(\d+)")


def seed_of(path: str | os.PathLike[str]) -> int:
    """The seed of a run's file, read from its folder name ``seed{n}``."""
    match = RUN_FOLDER.fullmatch(Path(path).parent.name)
    if match is None:
        raise PoolupError(
            f"{path}: not in a run folder named seed<number>; the train rule writes each seed's files there"
        )
    return int(match.group(1))


def reproducible(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``test_metrics.json`` record that a rerun reproduces exactly.

    Dropped, because they vary from run to run by nature: the wall-clock
    fields (``*_seconds``, ``images_per_second``); ``seeds_in_job`` (how the
    run was scheduled, not what it computed); the digest of ``model.keras``
    (Keras stamps the save date into the archive; the weights inside are
    identical); and the record's own ``content_sha256``, which covers those.
    """
    varying = ("images_per_second", "seeds_in_job", "content_sha256")
    kept = {k: v for k, v in metrics.items() if not (k.endswith("_seconds") or k in varying)}
    if "outputs" in kept:
        kept["outputs"] = {name: digest for name, digest in kept["outputs"].items() if not name.endswith(".keras")}
    return kept
