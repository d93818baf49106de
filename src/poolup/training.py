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
from typing import Any

from poolup.errors import CONSOLE_LOGGER, PoolupError
from poolup.eval_images import RAW_TEST_KEY
from poolup.job_inputs import TrainSettings, image_count, load_training_data, with_raw_images
from poolup.loop import Clock, Trainer, fit, prepare
from poolup.metrics import classification_report
from poolup.model import make_model
from poolup.model import model_sha256 as model_sha256_of
from poolup.provenance import relative_name
from poolup.records import write_json
from poolup.runs import RunPaths, run_record, seed_of, start_job, write_run_files
from poolup.runtime import check_memory, seed_everything
from poolup.splits import SplitCheck, check_split

log = logging.getLogger("poolup")


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
    raw: str | os.PathLike[str] | None = None,
    model_sha256: str | None = None,
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
    raw : path-like, optional
        The data set's ``raw.h5``: each run is then evaluated on its test
        images twice, as stored (the case's images) and raw (the same test
        images from ``raw.h5``, scaled by the scaler fitted on the stored
        training images), recorded under ``raw_test``.
    model_sha256 : str, optional
        The digest of ``settings.model``'s file when the workflow planned the
        job (its params): a file edited since is refused.

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
    if image_shape:  # before the images are made in memory: a job that cannot hold them says so first
        check_memory(image_count(images), tuple(image_shape))
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
        if raw is not None:
            data = with_raw_images(data, raw)
        digest = model_sha256_of(settings.model)
        if model_sha256 is not None and digest != model_sha256:
            raise PoolupError(
                f"training.model {settings.model!r}: the file changed after the workflow planned this job; rerun "
                "snakemake (it plans the training again)"
            )
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
            model = make_model(settings.model, run.images.shape[1:], data.n_classes)
            if trainer is None:
                trainer = Trainer(model, data.n_classes, settings.learning_rate)
            else:
                trainer.start(model.get_weights())
        result = fit(trainer, run, data.labels, settings, clock, Progress(seed, index, len(seeds), settings.batch_size))
        with clock("evaluate"):
            probabilities = trainer.probabilities(run.images[run.test])
            report = classification_report(data.labels[run.test], probabilities.argmax(axis=1), data.n_classes)
            raw_probabilities = None
            if run.raw_test is not None:
                raw_probabilities = trainer.probabilities(run.raw_test)
                report[RAW_TEST_KEY] = classification_report(
                    data.labels[run.test], raw_probabilities.argmax(axis=1), data.n_classes
                )
        with clock("write"):
            outputs = write_run_files(runs[seed], trainer, data, run, result, probabilities, case, raw_probabilities)
        report["parameters"] = int(trainer.model.count_params())
        report["model"] = {"name": settings.model, "sha256": digest, "parameters": report["parameters"]}
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
        elapsed = time.perf_counter() - started
        logging.getLogger(CONSOLE_LOGGER).info(
            "%s seed %d (%d of %d in this job): macro F1 %.4f; %.0f s so far, about %.0f s to go",
            f"{dataset}/{case}" if dataset else case,
            seed,
            index + 1,
            len(seeds),
            report["macro_f1"],
            elapsed,
            elapsed / (index + 1) * (len(seeds) - index - 1),
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
    raw: str | os.PathLike[str] | None = None,
    model_sha256: str | None = None,
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
    return train_seeds(pooled, runs, case, settings, tuple(image_shape), threads, recipe, dataset, raw, model_sha256)


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
