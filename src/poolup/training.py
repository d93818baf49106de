"""The paper's CNN, trained once per case and seed, with learning curves and test metrics.

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

import csv
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.artifacts import atomic_path, file_sha256, library_versions, read_image_set, write_h5, write_json
from poolup.errors import PoolupError
from poolup.metrics import classification_report, confusion, macro_scores

log = logging.getLogger("poolup")

PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16")
# Adam's constants: Keras' defaults, which the authors used.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
# Images per forward pass when evaluating (no gradients, so larger is fine).
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainSettings:
    """Training settings (the config's ``training`` section).

    Defaults are the authors': 1 epoch, batch 32, Adam at 1e-3, an 80/20
    split that is not stratified.
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
    precision: str = "float32"

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> TrainSettings:
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in section.items() if key in names})


@dataclass(frozen=True)
class RunPaths:
    """The four files one training run writes."""

    model: str
    history: str
    metrics: str
    predictions: str


def split_indices(
    labels: NDArray, train_size: float, random_state: int, stratify: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Training and held-out indices, exactly as the authors split.

    ``train_test_split(X, y, train_size=0.8, random_state=seed)`` shuffles
    with a permutation that depends only on the number of samples and the
    seed, so splitting the indices gives the same partition as splitting
    the arrays.
    """
    from sklearn.model_selection import train_test_split

    indices = np.arange(labels.shape[0])
    train, test = train_test_split(
        indices, train_size=train_size, random_state=random_state, stratify=labels if stratify else None
    )
    return np.asarray(train), np.asarray(test)


def fit_scaler(images: NDArray) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-pixel mean and scale, as ``sklearn.preprocessing.StandardScaler``.

    A pixel with zero variance (always blank, like MNIST's corners) gets
    scale 1, so it maps to 0 rather than to a division by zero.
    """
    flat = images.reshape(images.shape[0], -1)
    # float64 accumulation without a float64 copy of the images.
    mean = flat.mean(axis=0, dtype=np.float64)
    scale = np.sqrt(flat.var(axis=0, dtype=np.float64))
    scale[scale == 0] = 1.0
    return mean.astype(np.float32).reshape(images.shape[1:]), scale.astype(np.float32).reshape(images.shape[1:])


def scale_images(
    images: NDArray, train: NDArray[np.int64], scaling: str, fit_on: str
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Apply the configured scaling to every image.

    Parameters
    ----------
    images : ndarray (n, h, w[, c])
        Full-size images (0-255 values).
    train : ndarray of int
        Indices of the training split.
    scaling : {"standard", "none"}
        ``standard``: per-pixel zero mean and unit variance, as the paper
        says. ``none``: the raw values, as the authors' code trained (it
        fitted a StandardScaler and never applied it).
    fit_on : {"train", "all"}
        Fit the scaler on the training split only (no information from the
        held-out images) or on all images before the split, as the paper
        describes.
    """
    if scaling == "none":
        return images.astype(np.float32, copy=False), {"scaling": "none"}
    if scaling != "standard":
        raise PoolupError(f"training.scaling {scaling!r} is unknown; use 'standard' or 'none'")
    if fit_on not in ("train", "all"):
        raise PoolupError(f"training.scaling_fit_on {fit_on!r} is unknown; use 'train' or 'all'")
    mean, scale = fit_scaler(images[train] if fit_on == "train" else images)
    scaled = images.astype(np.float32)  # a copy: the caller's images stay unscaled
    scaled -= mean
    scaled /= scale
    return scaled, {"scaling": "standard", "fit_on": fit_on}


def configure_tensorflow(threads: int, seed: int, precision: str) -> None:
    """Threads, seeds, op determinism and precision, before any model exists."""
    import keras
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise PoolupError(f"training.precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        # Already initialised in this process (several runs in one program): keep its threads.
        log.info("TensorFlow threads were already set in this process; keeping them")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)


def build_model(input_shape: tuple[int, ...], n_classes: int = 10) -> Any:
    """The paper's CNN (section IV.B), `valid` padding throughout.

    Conv2D 32 3x3 ReLU, Conv2D 32 3x3 ReLU, MaxPool 2x2, Conv2D 32 3x3 ReLU,
    Conv2D 32 3x3 ReLU, MaxPool 2x2, Flatten, Dense 64, 64, 32, 32 ReLU,
    Dense ``n_classes`` softmax. 68,522 parameters for 28x28x1 and 10 classes.
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.Conv2D(32, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, activation="relu", name="conv3"),
            layers.Conv2D(32, 3, activation="relu", name="conv4"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(64, activation="relu", name="dense2"),
            layers.Dense(32, activation="relu", name="dense3"),
            layers.Dense(32, activation="relu", name="dense4"),
            # Probabilities in float32 also under mixed precision.
            layers.Dense(n_classes, activation="softmax", dtype="float32", name="output"),
        ],
        name="paper_cnn",
    )


class _Trainer:
    """Adam (fused kernel) on categorical cross-entropy, several steps per graph call."""

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
                var=weight.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power, beta2_power=beta_2_power,
                lr=self.learning_rate, beta1=BETA_1, beta2=BETA_2, epsilon=EPSILON, grad=gradient,
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
            [self.predict(images[i : i + EVAL_BATCH]).numpy() for i in range(0, images.shape[0], EVAL_BATCH)]
        )


def _with_channel(images: NDArray) -> NDArray:
    """Grayscale (n, h, w) gets a channel axis; colour (n, h, w, c) is kept."""
    return images[..., None] if images.ndim == 3 else images


def _evaluate(probabilities: NDArray, labels: NDArray, n_classes: int) -> dict[str, float]:
    picked = np.clip(probabilities[np.arange(labels.shape[0]), labels], 1e-7, 1.0)
    scores = macro_scores(confusion(labels, probabilities.argmax(axis=1), n_classes))
    return {"loss": float(-np.log(picked).mean()), **scores}


HISTORY_COLUMNS = (
    "epoch", "step", "progress", "images_seen",
    "train_loss", "train_accuracy", "train_precision", "train_recall", "train_f1",
    "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
)


def train_run(
    upsampled: str | os.PathLike[str],
    paths: RunPaths,
    case: str,
    seed: int,
    settings: TrainSettings,
    image_shape: tuple[int, ...] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Train the paper's CNN on one case with one seed and write its four outputs.

    Parameters
    ----------
    upsampled : path-like
        ``upsampled.h5`` of the case.
    paths : RunPaths
        ``model.keras``, ``history.csv``, ``test_metrics.json``, ``predictions.h5``.
    case : str
        Case name, recorded in the outputs.
    seed : int
        Fixes the split, the weight initialisation and the shuffling.
    settings : TrainSettings
        Epochs, batch size, learning rate, split and scaling.
    image_shape : tuple of int, optional
        Expected shape of one image; a mismatch is an error.
    threads : int
        TensorFlow's intra-op threads (the job's Snakemake ``threads``).

    Returns
    -------
    dict
        The content of ``test_metrics.json``.

    Notes
    -----
    ``history.csv`` has one row every ``history_every`` batches and one at
    each epoch's end. ``train_*`` columns are over the training batches of
    that interval (what Keras' progress bar reports); ``val_*`` columns are
    on a fixed seeded sample of ``monitor_samples`` held-out images, for
    monitoring only: nothing is selected on them. Inputs are checked before
    any output is written, and every output is written atomically.
    """
    started = time.perf_counter()
    data = read_image_set(upsampled, image_shape=image_shape)
    labels = data.labels.astype(np.int32)
    n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise PoolupError(f"{upsampled}: all labels are {labels.max()}; classification needs at least two classes")
    train, test = split_indices(labels, settings.train_size, seed, settings.stratify)
    images, scaling = scale_images(data.images, train, settings.scaling, settings.scaling_fit_on)
    images = _with_channel(images)
    phases = {"load_seconds": time.perf_counter() - started}

    tick = time.perf_counter()
    configure_tensorflow(threads, seed, settings.precision)
    import keras
    import tensorflow as tf

    model = build_model(images.shape[1:], n_classes)
    trainer = _Trainer(model, n_classes, settings.learning_rate)
    rng = np.random.default_rng(seed)
    monitor = np.sort(rng.choice(test.shape[0], size=min(settings.monitor_samples, test.shape[0]), replace=False))
    x_monitor, y_monitor = images[test[monitor]], labels[test[monitor]]

    dataset = (
        tf.data.Dataset.from_tensor_slices((images[train], labels[train]))
        .shuffle(train.shape[0], seed=seed, reshuffle_each_iteration=True)
        .batch(settings.batch_size)
        .repeat(settings.epochs)
        .prefetch(tf.data.AUTOTUNE)
    )
    iterator = iter(dataset)
    phases["setup_seconds"] = time.perf_counter() - tick
    steps_per_epoch = math.ceil(train.shape[0] / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    progress_bar = keras.utils.Progbar(total_steps, unit_name="batch") if sys.__stderr__.isatty() else None
    history: list[dict[str, Any]] = []
    train_seconds = monitor_seconds = 0.0
    images_seen = 0
    for epoch in range(settings.epochs):
        done = 0
        while done < steps_per_epoch:
            steps = min(settings.history_every, steps_per_epoch - done)
            tick = time.perf_counter()
            loss_sum, seen, matrix = trainer.run_steps(iterator, tf.constant(steps))
            train_seconds += time.perf_counter() - tick
            done += steps
            images_seen += int(seen)
            tick = time.perf_counter()
            validation = _evaluate(trainer.probabilities(x_monitor), y_monitor, n_classes)
            monitor_seconds += time.perf_counter() - tick
            train_scores = macro_scores(matrix.numpy())
            step = epoch * steps_per_epoch + done
            history.append({
                "epoch": epoch + 1, "step": step, "progress": step / steps_per_epoch, "images_seen": images_seen,
                "train_loss": float(loss_sum) / int(seen), **{f"train_{k}": v for k, v in train_scores.items()},
                **{f"val_{k}": v for k, v in validation.items()},
            })
            if progress_bar is not None:
                progress_bar.update(step, values=[("loss", history[-1]["train_loss"]), ("val_f1", validation["f1"])])
        row = history[-1]
        log.info(
            "epoch %d/%d: train loss %.4f f1 %.4f, held-out sample loss %.4f f1 %.4f, %.0f images/s",
            epoch + 1, settings.epochs, row["train_loss"], row["train_f1"], row["val_loss"], row["val_f1"],
            images_seen / train_seconds,
        )

    tick = time.perf_counter()
    probabilities = trainer.probabilities(images[test])
    predicted = probabilities.argmax(axis=1)
    report = classification_report(labels[test], predicted, n_classes)
    phases["evaluate_seconds"] = time.perf_counter() - tick
    devices = [device.device_type for device in tf.config.list_logical_devices()]
    metrics = {
        "case": case,
        "seed": seed,
        **report,
        "n_train": int(train.shape[0]),
        "n_test": int(test.shape[0]),
        "n_classes": n_classes,
        "settings": {**asdict(settings), **scaling},
        "threads": threads,
        "device": "GPU" if "GPU" in devices else "CPU",
        "train_seconds": train_seconds,
        "monitor_seconds": monitor_seconds,
        **phases,
        "images_per_second": images_seen / train_seconds,
        "parameters": int(model.count_params()),
        "source_sha256": data.attrs.get("content_sha256", ""),
        "versions": {**library_versions(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    tick = time.perf_counter()
    predictions_sha = write_h5(
        paths.predictions,
        {
            "labels": labels[test].astype(np.uint8),
            "predicted": predicted.astype(np.uint8),
            "probabilities": probabilities.astype(np.float32),
            "test_indices": test.astype(np.int64),
        },
        {"stage": "train", "case": case, "seed": seed, "source_sha256": metrics["source_sha256"]},
    )
    _write_history(paths.history, history)
    with atomic_path(paths.model) as tmp:
        model.save(tmp)
    metrics["outputs"] = {
        Path(paths.predictions).name: predictions_sha,
        Path(paths.history).name: file_sha256(paths.history),
        Path(paths.model).name: file_sha256(paths.model),
    }
    metrics["write_seconds"] = time.perf_counter() - tick
    metrics["total_seconds"] = time.perf_counter() - started
    write_json(paths.metrics, metrics)
    log.info("test: accuracy %.4f, macro F1 %.4f (%d images)", report["accuracy"], report["macro_f1"], test.shape[0])
    log.info("seconds: %s", {k: round(v, 2) for k, v in metrics.items() if k.endswith("_seconds")})
    return metrics


def reproducible(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``test_metrics.json`` record that a rerun reproduces exactly.

    Dropped, because they vary from run to run by nature: the wall-clock
    fields (``*_seconds``, ``images_per_second``); the digest of
    ``model.keras`` (Keras stamps the save date into the archive; the weights
    inside are identical); and the record's own ``content_sha256``, which
    covers those.
    """
    kept = {k: v for k, v in metrics.items() if not (k.endswith("_seconds") or k in ("images_per_second", "content_sha256"))}
    if "outputs" in kept:
        kept["outputs"] = {name: digest for name, digest in kept["outputs"].items() if not name.endswith(".keras")}
    return kept


def _write_history(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a saved ``model.keras`` with Keras' safe mode (no arbitrary code)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise PoolupError(f"{path}: model file not found; rerun the train stage")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise PoolupError(f"{path}: not a loadable Keras model ({type(exc).__name__}); delete it and rerun the train stage") from None
