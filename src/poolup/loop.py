"""The training loop of one run: its split and scaled images, the batches, Adam's steps, the learning curve.

TensorFlow is imported inside the functions that need it, so the rest of the
package (and the workflow's other jobs) never pay its import time.

Speed on CPU comes from three measured levers (see bench/train.py): the
optimizer update is TensorFlow's fused Adam kernel (one op per variable
instead of Keras' dozen); ``history_every`` training steps run inside one
``tf.function`` call, fed by a shuffling, prefetching ``tf.data`` pipeline;
and the training-side learning-curve metrics come from a confusion matrix
accumulated inside that graph, so they cost nothing extra.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.job_inputs import TrainingData, TrainSettings
from poolup.metrics import confusion, macro_scores
from poolup.scaling import fitted_scaler
from poolup.splits import carve_validation, split_indices

log = logging.getLogger("poolup")

# Adam's constants: Keras' defaults, which the authors used.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
# Images per forward pass when evaluating (no gradients, so larger is fine).
EVAL_BATCH = 1024


class Trainer:
    """Adam (fused kernel) on categorical cross-entropy, several steps per graph call.

    One trainer serves every seed of a job: :meth:`start` loads a seed's
    initial weights and zeroes the optimizer state, so the traced graphs are
    built once per job rather than once per seed.
    """

    def __init__(self, model: Any, n_classes: int, learning_rate: float) -> None:
        import keras
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.n_classes = n_classes
        self.learning_rate = float(learning_rate)
        self.weights = model.trainable_variables
        self.first_moments = [tf.Variable(tf.zeros_like(w), trainable=False) for w in self.weights]
        self.second_moments = [tf.Variable(tf.zeros_like(w), trainable=False) for w in self.weights]
        self.iterations = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.loss = keras.losses.CategoricalCrossentropy()
        self.run_steps = tf.function(self._run_steps)
        self.predict = tf.function(lambda x: model(x, training=False))

    def start(self, initial_weights: list[NDArray]) -> None:
        """Begin a new run: these weights, fresh Adam moments, step 0."""
        self.model.set_weights(initial_weights)
        for moment in (*self.first_moments, *self.second_moments):
            moment.assign(self.tf.zeros_like(moment))
        self.iterations.assign(0.0)

    def _step(self, images: Any, labels: Any) -> tuple[Any, Any]:
        tf = self.tf
        with tf.GradientTape() as tape:
            probabilities = self.model(images, training=True)
            loss = self.loss(tf.one_hot(labels, self.n_classes), probabilities)
        gradients = tape.gradient(loss, self.weights)
        self.iterations.assign_add(1.0)
        beta_1_power = tf.pow(BETA_1, self.iterations)
        beta_2_power = tf.pow(BETA_2, self.iterations)
        for weight, gradient, m, v in zip(self.weights, gradients, self.first_moments, self.second_moments):
            tf.raw_ops.ResourceApplyAdam(
                var=weight.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=self.learning_rate,
                beta1=BETA_1,
                beta2=BETA_2,
                epsilon=EPSILON,
                grad=gradient,
            )
        return loss, tf.argmax(probabilities, axis=1, output_type=tf.int32)

    def _run_steps(self, iterator: Any, steps: Any) -> tuple[Any, Any, Any]:
        """Run ``steps`` training steps; return summed loss, image count and confusion matrix."""
        tf = self.tf
        cells = self.n_classes * self.n_classes
        loss_sum = tf.constant(0.0, tf.float64)
        seen = tf.constant(0, tf.int32)
        # Confusion counts as a flat histogram of true * n + predicted: one cheap op a step.
        counts = tf.zeros((cells,), tf.int32)
        for _ in tf.range(steps):
            images, labels = next(iterator)
            loss, predicted = self._step(images, labels)
            batch = tf.shape(labels)[0]
            loss_sum += tf.cast(loss, tf.float64) * tf.cast(batch, tf.float64)
            seen += batch
            counts += tf.math.bincount(labels * self.n_classes + predicted, minlength=cells, maxlength=cells)
        return loss_sum, seen, tf.reshape(counts, (self.n_classes, self.n_classes))

    def probabilities(self, images: NDArray) -> NDArray[np.float32]:
        return np.concatenate(
            [
                # float32 whatever the model's output dtype (a user's model may end in bfloat16)
                self.predict(images[i : i + EVAL_BATCH]).numpy().astype(np.float32, copy=False)
                for i in range(0, images.shape[0], EVAL_BATCH)
            ]
        )


def _with_channel(images: NDArray) -> NDArray:
    """Grayscale (n, h, w) gets a channel axis; colour (n, h, w, c) is kept."""
    return images[..., None] if images.ndim == 3 else images


def _evaluate(probabilities: NDArray, labels: NDArray, n_classes: int) -> dict[str, float]:
    picked = np.clip(probabilities[np.arange(labels.shape[0]), labels], 1e-7, 1.0)
    scores = macro_scores(confusion(labels, probabilities.argmax(axis=1), n_classes))
    return {"loss": float(-np.log(picked).mean()), **scores}


# The learning-curve metrics of history.csv, on the training batches and on the fixed held-out sample.
HISTORY_METRICS: tuple[str, ...] = tuple(
    f"{side}_{name}" for side in ("train", "val") for name in ("loss", "accuracy", "precision", "recall", "f1")
)
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "step", "progress", "images_seen", *HISTORY_METRICS)


class Clock:
    """Wall seconds per named phase: ``with clock("fit"): ...`` adds to ``clock.seconds["fit_seconds"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            key = f"{phase}_seconds"
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - tick


@dataclass(frozen=True)
class PreparedRun:
    """One seed's split and scaled images.

    ``fit`` is what the weights are trained on, ``validation`` (empty
    without early stopping) is carved from the training part and only
    decides when to stop, ``test`` is the authors' held-out 20 % and
    ``monitor`` a fixed sample of it for the learning curves. ``raw_test``:
    the test images as ``raw.h5`` holds them (the images before the recipe),
    scaled by the scaler fitted on the stored training images, where the job
    was given them (None otherwise).
    """

    seed: int
    fit: NDArray[np.int64]
    validation: NDArray[np.int64]
    test: NDArray[np.int64]
    monitor: NDArray[np.int64]
    images: NDArray[np.float32]
    scaling: dict[str, Any]
    raw_test: NDArray[np.float32] | None = None


def prepare(data: TrainingData, seed: int, settings: TrainSettings) -> PreparedRun:
    """Split (as the authors), carve the validation part, scale, pick the monitor sample."""
    train, test = split_indices(data.labels, settings.train_size, seed, settings.stratify)
    validation = np.empty(0, dtype=np.int64)
    if settings.early_stopping:
        train, validation = carve_validation(train, data.labels, settings.validation_size, seed, settings.stratify)
    scale, scaling = fitted_scaler(data.images, train, settings.scaling, settings.scaling_fit_on)
    raw_test = None if data.raw_images is None else _with_channel(scale(data.raw_images[test]))
    rng = np.random.default_rng(seed)
    monitor = test[np.sort(rng.choice(test.shape[0], size=min(settings.monitor_samples, test.shape[0]), replace=False))]
    return PreparedRun(seed, train, validation, test, monitor, _with_channel(scale(data.images)), scaling, raw_test)


@dataclass
class FitResult:
    """What :func:`fit` leaves besides the trained weights."""

    history: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    best_epoch: int
    images_seen: int


class EarlyStopping:
    """The best epoch by validation loss, its weights, and when ``patience`` epochs passed without improvement."""

    def __init__(self, patience: int, restore_best_weights: bool) -> None:
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.best_loss, self.best_epoch, self.best_weights, self.stale = math.inf, 0, None, 0

    def stop_after(self, epoch: int, validation_loss: float, model: Any) -> bool:
        """Record an epoch's validation loss; True when training should stop."""
        if validation_loss < self.best_loss:
            self.best_loss, self.stale, self.best_epoch = validation_loss, 0, epoch
            self.best_weights = model.get_weights() if self.restore_best_weights else None
        else:
            self.stale += 1
        return self.stale > self.patience


def _train_steps(trainer: Trainer, iterator: Any, steps: int, clock: Clock) -> tuple[float, int, dict[str, float]]:
    """Train ``steps`` batches: their mean loss, the images seen, and the macro scores on those batches."""
    import tensorflow as tf

    with clock("train"):
        loss_sum, seen, matrix = trainer.run_steps(iterator, tf.constant(steps))
    return float(loss_sum) / int(seen), int(seen), macro_scores(matrix.numpy())


def _scores(trainer: Trainer, images: NDArray, labels: NDArray, prefix: str) -> dict[str, float]:
    """Loss and macro scores of the current weights on held-out images, keys prefixed."""
    return {f"{prefix}_{k}": v for k, v in _evaluate(trainer.probabilities(images), labels, trainer.n_classes).items()}


# Batches the pipeline keeps ready ahead of the training steps.
PREFETCH_BATCHES = 2


def training_batches(images: NDArray, labels: NDArray, seed: int, batch_size: int, epochs: int | None) -> Any:
    """The training batches of one run: a seeded shuffle of every image each epoch, in batches
    (``epochs=None``: without end).

    The order is the shuffle's alone (``seed``), so a run's batches are the
    same however the pipeline runs. Its prefetch buffer is fixed and tf.data's
    autotuning is off: the autotuning thread sleeps up to a minute between its
    rounds, and deleting the iterator at the end of a run waited for it (0 to
    57 s per run of 56,000 images, 6 s on average: 7 % of the run's time).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(images.shape[0], seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat(epochs)
        .prefetch(PREFETCH_BATCHES)
        .with_options(options)
    )


# Learning-curve points per epoch at least (where an epoch has that many batches): a curve, not a dot.
MIN_CURVE_POINTS = 3


def curve_interval(history_every: int, steps_per_epoch: int) -> int:
    """Batches between learning-curve points: ``training.history_every``, shortened so that an epoch has at
    least :data:`MIN_CURVE_POINTS` points (3,000 digits give 75 batches of 32: a point every 25, not one at 75)."""
    return max(1, min(history_every, math.ceil(steps_per_epoch / MIN_CURVE_POINTS)))


def fit(
    trainer: Trainer,
    run: PreparedRun,
    labels: NDArray[np.int32],
    settings: TrainSettings,
    clock: Clock,
    progress: Callable[[int, int, float], None] | None = None,
) -> FitResult:
    """Train one seed from the trainer's current weights.

    A learning-curve point every ``history_every`` batches and at each epoch
    end; with early stopping, the loss on ``run.validation`` after each epoch
    decides when to stop (``patience`` epochs without improvement) and, with
    ``restore_best_weights``, which epoch's weights are kept. A non-finite
    loss stops with one line naming the settings to change.
    """
    batches = training_batches(run.images[run.fit], labels[run.fit], run.seed, settings.batch_size, settings.epochs)
    iterator = iter(batches)
    steps_per_epoch = math.ceil(run.fit.shape[0] / settings.batch_size)
    result = FitResult([], [], settings.epochs, 0)
    stopping = EarlyStopping(settings.patience, settings.restore_best_weights)
    x_monitor, y_monitor = run.images[run.monitor], labels[run.monitor]
    interval = curve_interval(settings.history_every, steps_per_epoch)
    for epoch in range(1, settings.epochs + 1):
        done = 0
        while done < steps_per_epoch:
            steps = min(interval, steps_per_epoch - done)
            loss, seen, train_scores = _train_steps(trainer, iterator, steps, clock)
            done += steps
            result.images_seen += seen
            step = (epoch - 1) * steps_per_epoch + done
            if not math.isfinite(loss):
                raise PoolupError(
                    f"seed {run.seed}: the training loss became {loss} at step {step}; lower training.learning_rate "
                    f"(now {settings.learning_rate}) or use training.scaling: standard"
                )
            with clock("monitor"):
                monitored = _scores(trainer, x_monitor, y_monitor, "val")
            result.history.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "progress": step / steps_per_epoch,
                    "images_seen": result.images_seen,
                    "train_loss": loss,
                    **{f"train_{k}": v for k, v in train_scores.items()},
                    **monitored,
                }
            )
            if progress is not None:
                progress(step, steps_per_epoch * settings.epochs, loss)
        row = result.history[-1]
        record = {"epoch": epoch, "train_loss": row["train_loss"], "train_f1": row["train_f1"]}
        stop = False
        if settings.early_stopping:
            with clock("validation"):
                record.update(_scores(trainer, run.images[run.validation], labels[run.validation], "validation"))
            stop = stopping.stop_after(epoch, record["validation_loss"], trainer.model)
        result.epochs.append(record)
        log.info(
            "seed %d epoch %d/%d: %s",
            *(run.seed, epoch, settings.epochs),
            ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"),
        )
        if stop:
            log.info("seed %d: early stop after epoch %d (best epoch %d)", run.seed, epoch, stopping.best_epoch)
            break
    if stopping.best_weights is not None:
        trainer.model.set_weights(stopping.best_weights)
    result.best_epoch = stopping.best_epoch if settings.early_stopping else len(result.epochs)
    return result
