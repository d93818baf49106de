"""The paper's CNN, trained once per case and seed, with learning curves and test metrics (``rules/train.smk``).

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

import argparse
import bisect
import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.artifacts import (
    check_made_for,
    file_sha256,
    library_versions,
    read_image_set,
    relative_name,
    write_h5,
    write_json,
    write_model,
    write_rows,
)
from poolup.errors import PoolupError
from poolup.metrics import classification_report, confusion, macro_scores
from poolup.splits import SplitCheck, carve_validation, check_split, split_indices

log = logging.getLogger("poolup")

PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16")
# Adam's constants: Keras' defaults, which the authors used.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
# Images per forward pass when evaluating (no gradients, so larger is fine).
EVAL_BATCH = 1024
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


@dataclass(frozen=True)
class TrainSettings:
    """Training settings (the config's ``training`` section, ``early_stopping`` flattened).

    Defaults are the authors': 1 epoch, batch 32, Adam at 1e-3, an 80/20
    split that is not stratified, no early stopping; bfloat16 compute where
    the hardware has it (within noise of float32, docs/training.md "Precision"), on
    TensorFlow's oneDNN kernels (:func:`configure_tensorflow`). The schema
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


# Rows per block when fitting the scaler: a float64 block that stays in the CPU's cache (256 rows
# of 28x28 pixels are 1.6 MB); numpy's own var makes a float64 copy of every image, 5x slower.
SCALER_BLOCK = 256


def fit_scaler(
    images: NDArray, rows: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-pixel mean and scale of ``images[rows]`` (all images without ``rows``), as
    ``sklearn.preprocessing.StandardScaler``.

    A pixel with zero variance (always blank, like MNIST's corners) gets
    scale 1, so it maps to 0 rather than to a division by zero. The sums run
    in float64 over a block of rows at a time, adding the rows one after
    another as numpy's ``mean`` and ``var`` along the first axis do, so the
    result equals theirs bit for bit (``tests/test_training.py``) without a
    float64 copy of the images or of the rows picked.
    """
    flat = images.reshape(images.shape[0], -1)
    count = flat.shape[0] if rows is None else rows.shape[0]
    if count == 0:
        raise PoolupError("the scaler has no images to fit; check training.train_size and the data set's size")
    buffer = np.empty((SCALER_BLOCK + 1, flat.shape[1]), np.float64)

    def summed(centre: NDArray[np.float64] | None) -> NDArray[np.float64]:
        total = np.zeros(flat.shape[1], np.float64)
        for start in range(0, count, SCALER_BLOCK):
            stop = min(start + SCALER_BLOCK, count)
            block = buffer[1 : stop - start + 1]
            block[...] = flat[start:stop] if rows is None else flat[rows[start:stop]]
            if centre is not None:
                block -= centre
                np.multiply(block, block, out=block)
            buffer[0] = total  # the running sum first, then the block's rows in order
            np.add.reduce(buffer[: stop - start + 1], axis=0, out=total)
        return total

    mean = summed(None) / count
    scale = np.sqrt(summed(mean) / count)
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
    mean, scale = fit_scaler(images, train if fit_on == "train" else None)
    scaled = np.subtract(images, mean, dtype=np.float32)  # a new array: the caller's images stay unscaled
    scaled /= scale
    return scaled, {"scaling": "standard", "fit_on": fit_on}


def configure_tensorflow(threads: int, precision: str, onednn: bool = True) -> bool:
    """Threads, kernels, op determinism and precision: once per process, before any model exists.

    Threads can be set only before TensorFlow starts its thread pools; a
    second call in the same process keeps the first call's threads. Without
    bfloat16 hardware (AVX512_BF16, AMX or a GPU that has it), a
    ``mixed_bfloat16`` request falls back to float32 with a log line, since
    emulated bfloat16 is several times slower than float32.

    ``onednn`` picks TensorFlow's CPU kernels. TensorFlow reads its switch
    (``TF_ENABLE_ONEDNN_OPTS``) once, when it is first imported, and by
    default uses oneDNN only on CPUs with AVX-512 VNNI or BF16 or AMX; on an
    AVX2 CPU its own kernels train 1.3x slower (docs/training.md, "Kernels"). So the switch
    is set here when this call imports TensorFlow. Where TensorFlow was
    imported before, or was built without oneDNN, the kernels it has stay,
    with a log line. Returns whether oneDNN kernels are in use (each run
    records it as ``onednn_used``).
    """
    if precision not in PRECISIONS:
        raise PoolupError(f"training.precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if "tensorflow" not in sys.modules:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        log.info("TensorFlow threads were already set in this process; keeping them")
    used = onednn_kernels()
    if used != onednn:
        log.warning(
            "training.onednn %s: TensorFlow in this process runs with oneDNN kernels %s (it was imported before, "
            "with TF_ENABLE_ONEDNN_OPTS=%s, or has no oneDNN); keeping them",
            str(onednn).lower(),
            "on" if used else "off",
            os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        )
    tf.config.experimental.enable_op_determinism()
    if precision == "mixed_bfloat16" and not bfloat16_hardware():
        log.warning(
            "training.precision mixed_bfloat16: no bfloat16 hardware found (CPU flags avx512_bf16/amx_bf16, "
            "or a GPU); training in float32"
        )
        precision = "float32"
    keras.mixed_precision.set_global_policy(precision)
    return used


def onednn_kernels() -> bool:
    """Whether this process's TensorFlow runs its CPU ops on oneDNN (``TF_ENABLE_ONEDNN_OPTS``)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own probe; no public API has it
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def bfloat16_hardware() -> bool:
    """Whether this machine computes bfloat16 natively (a GPU, or x86 AVX512_BF16 / AMX)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def seed_everything(seed: int) -> None:
    """Python's, NumPy's, TensorFlow's and Keras' global seeds, right before a run's model and pipeline.

    Everything random in a run (initial weights, the shuffle's seed pair
    ``(seed, seed)``) is drawn after this call, so a run does not depend on
    what ran before it in the same process (tests/test_training.py checks
    that grouped runs equal solo runs bit for bit).
    """
    import keras

    keras.utils.set_random_seed(seed)


# The paper's CNN before its dense layers (section IV.B): 32-filter convolutions and
# max-pooling, `valid` padding throughout, as (layer, size); build_model builds these.
FEATURE_LAYERS: tuple[tuple[str, int], ...] = (
    ("conv", 3),
    ("conv", 3),
    ("pool", 2),
    ("conv", 3),
    ("conv", 3),
    ("pool", 2),
)


def feature_side(side: int) -> int:
    """The side an input side has after the CNN's feature layers (0: the input is too small)."""
    for layer, size in FEATURE_LAYERS:
        side = max(0, side - size + 1) if layer == "conv" else side // size
    return side


def smallest_input_side() -> int:
    """The smallest image side the CNN accepts: the feature layers leave at least one pixel (16)."""
    side = 1
    while feature_side(side) < 1:
        side += 1
    return side


def build_model(input_shape: tuple[int, ...], n_classes: int = 10) -> Any:
    """The paper's CNN (section IV.B), `valid` padding throughout.

    Conv2D 32 3x3 ReLU, Conv2D 32 3x3 ReLU, MaxPool 2x2, Conv2D 32 3x3 ReLU,
    Conv2D 32 3x3 ReLU, MaxPool 2x2 (``FEATURE_LAYERS``), Flatten, Dense 64,
    64, 32, 32 ReLU, Dense ``n_classes`` softmax. 68,522 parameters for
    28x28x1 and 10 classes; images need a side of at least
    :func:`smallest_input_side`.
    """
    import keras
    from keras import layers

    features = []
    for layer, size in FEATURE_LAYERS:
        number = sum(1 for built in features if built.name.startswith(layer)) + 1
        features.append(
            layers.Conv2D(32, size, activation="relu", name=f"conv{number}")
            if layer == "conv"
            else layers.MaxPooling2D(size, name=f"pool{number}")
        )
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            *features,
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
            [self.predict(images[i : i + EVAL_BATCH]).numpy() for i in range(0, images.shape[0], EVAL_BATCH)]
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
    (:func:`poolup.artifacts.check_made_for`): the case, window, stride and later steps, which the
    file must record, and ``method`` and ``grid``, which interpolate it back (an ``upsampled.h5``
    must record them too). Another case's file, or one made with other settings, is refused before
    any training.
    """
    from poolup.artifacts import H5_ERRORS, decode_attr, open_h5
    from poolup.preprocess import reconstruct

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


@dataclass(frozen=True)
class PreparedRun:
    """One seed's split and scaled images.

    ``fit`` is what the weights are trained on, ``validation`` (empty
    without early stopping) is carved from the training part and only
    decides when to stop, ``test`` is the authors' held-out 20 % and
    ``monitor`` a fixed sample of it for the learning curves.
    """

    seed: int
    fit: NDArray[np.int64]
    validation: NDArray[np.int64]
    test: NDArray[np.int64]
    monitor: NDArray[np.int64]
    images: NDArray[np.float32]
    scaling: dict[str, Any]


def prepare(data: TrainingData, seed: int, settings: TrainSettings) -> PreparedRun:
    """Split (as the authors), carve the validation part, scale, pick the monitor sample."""
    train, test = split_indices(data.labels, settings.train_size, seed, settings.stratify)
    validation = np.empty(0, dtype=np.int64)
    if settings.early_stopping:
        train, validation = carve_validation(train, data.labels, settings.validation_size, seed, settings.stratify)
    images, scaling = scale_images(data.images, train, settings.scaling, settings.scaling_fit_on)
    rng = np.random.default_rng(seed)
    monitor = test[np.sort(rng.choice(test.shape[0], size=min(settings.monitor_samples, test.shape[0]), replace=False))]
    return PreparedRun(seed, train, validation, test, monitor, _with_channel(images), scaling)


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


def _train_steps(trainer: _Trainer, iterator: Any, steps: int, clock: Clock) -> tuple[float, int, dict[str, float]]:
    """Train ``steps`` batches: their mean loss, the images seen, and the macro scores on those batches."""
    import tensorflow as tf

    with clock("train"):
        loss_sum, seen, matrix = trainer.run_steps(iterator, tf.constant(steps))
    return float(loss_sum) / int(seen), int(seen), macro_scores(matrix.numpy())


def _scores(trainer: _Trainer, images: NDArray, labels: NDArray, prefix: str) -> dict[str, float]:
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


def fit(
    trainer: _Trainer,
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
    for epoch in range(1, settings.epochs + 1):
        done = 0
        while done < steps_per_epoch:
            steps = min(settings.history_every, steps_per_epoch - done)
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


def write_run_files(
    paths: RunPaths,
    trainer: _Trainer,
    data: TrainingData,
    run: PreparedRun,
    result: FitResult,
    probabilities: NDArray[np.float32],
    case: str,
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
    """Train the paper's CNN on one case, once per seed, and write each run's files (:class:`RunPaths`).

    The fixed costs are paid once per call: TensorFlow's start and graph
    tracing, making and checking the up-sampled images. Each seed is its own
    run, with the same split, initial weights, batch order and results as
    when it is trained alone (:func:`seed_everything`).

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
    trainer: _Trainer | None = None
    records = []
    for index, seed in enumerate(seeds):
        seed_started = time.perf_counter()
        clock = Clock()
        with clock("prepare"):
            run = prepare(data, seed, settings)
            seed_everything(seed)
            model = build_model(run.images.shape[1:], data.n_classes)
            if trainer is None:
                trainer = _Trainer(model, data.n_classes, settings.learning_rate)
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


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a saved ``model.keras`` with Keras' safe mode (no arbitrary code)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise PoolupError(f"{path}: model file not found; rerun the train stage")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise PoolupError(
            f"{path}: not a loadable Keras model ({type(exc).__name__}); delete it and rerun the train stage"
        ) from None
