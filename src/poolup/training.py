"""The train rule (``rules/train.smk``): the paper's CNN trained on one case, once per seed, with learning
curves and test metrics.

A job loads and checks the case's images once (:func:`load_training_data`),
starts TensorFlow once (:func:`poolup.runs.start_job`), then trains each of its
seeds as its own run (:func:`poolup.loop.fit`) and writes the run's files
(:func:`poolup.runs.write_run_files`, :func:`poolup.runs.run_record`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.h5files import read_image_set
from poolup.loop import Clock, Trainer, fit, prepare
from poolup.metrics import classification_report
from poolup.model import build_model
from poolup.provenance import check_made_for, relative_name
from poolup.records import write_json
from poolup.runs import RunPaths, run_record, seed_of, start_job, write_run_files
from poolup.runtime import seed_everything
from poolup.splits import SplitCheck, check_split

log = logging.getLogger("poolup")


@dataclass(frozen=True)
class TrainSettings:
    """Training settings (the config's ``training`` section, ``early_stopping`` flattened).

    Defaults are the authors': 1 epoch, batch 32, Adam at 1e-3, an 80/20
    split that is not stratified, no early stopping; bfloat16 compute where
    the hardware has it (within noise of float32, docs/training.md "Precision"), on
    TensorFlow's oneDNN kernels (:func:`poolup.runtime.configure_tensorflow`). The schema
    (``workflow/schemas/config.schema.yaml``) holds the same defaults;
    ``tests/test_training.py`` checks that they agree.
    """

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-3
    train_size: float = 0.8
    stratify: bool = False
    scaling: str = "standard"
    scaling_fit_on: str = "train"
    history_every: int = 100
    monitor_samples: int = 500
    precision: str = "mixed_bfloat16"
    onednn: bool = True
    early_stopping: bool = False
    validation_size: float = 0.1
    patience: int = 2
    restore_best_weights: bool = True

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> TrainSettings:
        """Settings from the validated ``training`` section (keys that change no result are ignored)."""
        flat = {key: value for key, value in section.items() if key != "early_stopping"}
        stopping = section.get("early_stopping") or {}
        flat.update({("early_stopping" if key == "enabled" else key): value for key, value in stopping.items()})
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in flat.items() if key in names})


@dataclass(frozen=True)
class TrainingData:
    """One case's up-sampled images, made and checked once per job."""

    images: NDArray
    labels: NDArray[np.int32]
    n_classes: int
    source_sha256: str
    source: str  # the file's path, named relative to each output (source_file)


# The keys of a case's recipe (the train rule's params) that say how its images come back to
# full size; pooled.h5 records the others.
INTERPOLATION_KEYS = ("method", "grid")


def load_training_data(
    pooled: str | os.PathLike[str],
    image_shape: tuple[int, ...] | None = None,
    made_for: Mapping[str, Any] | None = None,
) -> TrainingData:
    """The up-sampled images of a case, made in memory from its ``pooled.h5``, checked to be classifiable.

    They are what ``upsampled.h5`` holds, bit for bit (:func:`poolup.preprocess.reconstruct`),
    without its float32 copy of every image on disk. A file given with ``stage: upsample`` (an
    ``upsampled.h5``) is read as it is. ``made_for`` is what the case's recipe says
    (:func:`poolup.provenance.check_made_for`): the case, window, stride and later steps, which the
    file must record, and ``method`` and ``grid``, which interpolate it back (an ``upsampled.h5``
    must record them too). Another case's file, or one made with other settings, is refused before
    any training.
    """
    from poolup.h5files import H5_ERRORS, open_h5
    from poolup.preprocess import reconstruct
    from poolup.provenance import decode_attr

    expected = dict(made_for or {})
    try:  # which kind of file it is; reading it checks it (a damaged file is named there)
        with open_h5(pooled, verify=False) as file:
            stage = decode_attr(file.attrs.get("stage", ""))
    except (PoolupError, *H5_ERRORS):
        stage = ""
    if stage == "upsample":
        data = read_image_set(pooled, image_shape=image_shape, stage="upsample")
        check_made_for(pooled, data.attrs, expected)
        digest = str(data.attrs.get("content_sha256", ""))
    else:
        interpolation = {key: expected.pop(key) for key in INTERPOLATION_KEYS if key in expected}
        data = reconstruct(pooled, **interpolation, made_for=expected, stage="pool")
        if image_shape is not None and tuple(data.images.shape[1:]) != tuple(image_shape):
            raise PoolupError(
                f"{pooled}: images come back as {tuple(data.images.shape[1:])}, expected {tuple(image_shape)}; "
                "check the data set's image_shape and the case settings"
            )
        digest = str(data.attrs["source_sha256"])
    labels = data.labels.astype(np.int32)
    n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise PoolupError(f"{pooled}: all labels are {labels.max()}; classification needs at least two classes")
    return TrainingData(data.images, labels, n_classes, digest, str(pooled))


class Progress:
    """A log line per learning-curve point: loss, images/s, elapsed, and the job's ETA (for ``tail -f``)."""

    def __init__(self, seed: int, index: int, seeds_in_job: int, batch_size: int) -> None:
        self.seed, self.index, self.seeds_in_job, self.batch_size = seed, index, seeds_in_job, batch_size
        self.started = time.perf_counter()

    def __call__(self, step: int, total: int, loss: float) -> None:
        elapsed = time.perf_counter() - self.started
        remaining = (total - step + (self.seeds_in_job - self.index - 1) * total) * elapsed / step
        log.info(
            "seed %d (%d/%d) step %d/%d: loss %.4f, %.0f images/s, %.0f s elapsed, ETA %.0f s",
            *(self.seed, self.index + 1, self.seeds_in_job, step, total, loss),
            *(step * self.batch_size / elapsed, elapsed, remaining),
        )


def train_seeds(
    images: str | os.PathLike[str],
    runs: Mapping[int, RunPaths],
    case: str,
    settings: TrainSettings,
    image_shape: tuple[int, ...] | None = None,
    threads: int = 1,
    recipe: Mapping[str, Any] | None = None,
    dataset: str = "",
) -> list[dict[str, Any]]:
    """Train the paper's CNN on one case, once per seed, and write each run's files (:class:`poolup.runs.RunPaths`).

    The fixed costs are paid once per call: TensorFlow's start and graph
    tracing, making and checking the up-sampled images. Each seed is its own
    run, with the same split, initial weights, batch order and results as
    when it is trained alone (:func:`poolup.runtime.seed_everything`).

    Parameters
    ----------
    images : path-like
        The case's ``pooled.h5``, up-sampled in memory (:func:`load_training_data`),
        or an ``upsampled.h5`` made from it.
    runs : mapping of int to RunPaths
        Each seed and its ``model.keras``, ``history.csv``,
        ``test_metrics.json``, ``predictions.h5``.
    case : str
        Case name, recorded in the outputs.
    settings : TrainSettings
        Epochs, batch size, learning rate, split, scaling, early stopping.
    image_shape : tuple of int, optional
        Expected shape of one image; a mismatch is an error.
    threads : int
        TensorFlow's intra-op threads (the job's Snakemake ``threads``).
    recipe : mapping, optional
        What ``images`` must record besides ``case`` (``window``, ``stride``,
        ``method``, ``grid``: the case's settings in the config); a file made
        for another case or with other settings is refused.
    dataset : str
        The data set's name, for messages.

    Returns
    -------
    list of dict
        The content of each seed's ``test_metrics.json``.

    Notes
    -----
    ``history.csv`` has one row every ``history_every`` batches and one at
    each epoch's end. ``train_*`` columns are over the training batches of
    that interval; ``val_*`` columns are on a fixed seeded sample of
    ``monitor_samples`` held-out images, for monitoring only: nothing is
    selected on them. Inputs are checked before any output is written, and
    every output is written atomically.
    """
    started = time.perf_counter()
    seeds = list(runs)
    job_clock = Clock()
    with job_clock("load"):
        data = load_training_data(images, image_shape, {"case": case, **(recipe or {})})
        split = SplitCheck(
            dataset or case,
            settings.train_size,
            settings.stratify,
            settings.early_stopping,
            settings.validation_size,
            tuple(seeds),
        )
        check_split(data.labels, split)
    with job_clock("setup"):
        job = start_job(case, threads, settings, len(seeds))
    trainer: Trainer | None = None
    records = []
    for index, seed in enumerate(seeds):
        seed_started = time.perf_counter()
        clock = Clock()
        with clock("prepare"):
            run = prepare(data, seed, settings)
            seed_everything(seed)
            model = build_model(run.images.shape[1:], data.n_classes)
            if trainer is None:
                trainer = Trainer(model, data.n_classes, settings.learning_rate)
            else:
                trainer.start(model.get_weights())
        result = fit(trainer, run, data.labels, settings, clock, Progress(seed, index, len(seeds), settings.batch_size))
        with clock("evaluate"):
            probabilities = trainer.probabilities(run.images[run.test])
            report = classification_report(data.labels[run.test], probabilities.argmax(axis=1), data.n_classes)
        with clock("write"):
            outputs = write_run_files(runs[seed], trainer, data, run, result, probabilities, case)
        report["parameters"] = int(trainer.model.count_params())
        seconds = {**clock.seconds, **(job_clock.seconds if index == 0 else dict.fromkeys(job_clock.seconds, 0.0))}
        seconds["total_seconds"] = time.perf_counter() - (started if index == 0 else seed_started)
        source_file = relative_name(data.source, runs[seed].metrics)
        metrics = run_record(job, data, run, settings, result, report, seconds, outputs, source_file)
        write_json(runs[seed].metrics, metrics)
        records.append(metrics)
        log.info(
            "seed %d: test accuracy %.4f, macro F1 %.4f (%d images); seconds %s",
            seed,
            report["accuracy"],
            report["macro_f1"],
            run.test.shape[0],
            {k: round(v, 2) for k, v in clock.seconds.items()},
        )
    log.info("%d seeds in %.1f s", len(seeds), time.perf_counter() - started)
    return records


def train(
    *,
    pooled: str | os.PathLike[str],
    model: Sequence[str],
    history: Sequence[str],
    metrics: Sequence[str],
    predictions: Sequence[str],
    case: str,
    training: dict[str, Any],
    image_shape: Sequence[int],
    recipe: Mapping[str, Any] | None = None,
    dataset: str = "",
    threads: int = 1,
) -> list[dict[str, Any]]:
    """The training rule: :func:`train_seeds` for the seeds whose files the rule writes.

    ``model``, ``history``, ``metrics`` and ``predictions`` list each seed's
    files, in the same order, each in its folder ``seed{n}``: the seeds come
    from there, not from a parameter, so a new ``seeds_per_job`` (other jobs,
    the same runs) reruns nothing. ``model`` and ``predictions`` are empty
    where ``training.keep`` leaves them out. ``training`` is the config
    section; ``recipe`` the case's recipe, which ``pooled`` must record (see
    :func:`train_seeds`).
    """
    not_kept = [None] * len(metrics)
    run_files = [
        RunPaths(*files) for files in zip(model or not_kept, history, metrics, predictions or not_kept, strict=True)
    ]
    runs = {seed_of(paths.metrics): paths for paths in run_files}
    settings = TrainSettings.from_config(training)
    return train_seeds(pooled, runs, case, settings, tuple(image_shape), threads, recipe, dataset)


def train_run(
    images: str | os.PathLike[str],
    paths: RunPaths,
    case: str,
    seed: int,
    settings: TrainSettings,
    image_shape: tuple[int, ...] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """One seed: :func:`train_seeds` with a single run."""
    return train_seeds(images, {seed: paths}, case, settings, image_shape, threads)[0]
