"""What a training job is given: its settings (the config's ``training`` section) and its case's images,
made back to full size in memory and checked before any training (:func:`load_training_data`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError
from poolup.h5files import read_image_set
from poolup.provenance import check_made_for


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
    model: str = "paper"

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
    # The same images as raw.h5 holds them, before the recipe (evaluation on raw test images); None
    # where the job is not given raw.h5.
    raw_images: NDArray[np.uint8] | None = None
    class_names: tuple[str, ...] = ()  # raw.h5's (a folder data set's class folders); () for numbered classes


# The keys of a case's recipe (the train rule's params) that say how its images come back to
# full size; pooled.h5 records the others.
INTERPOLATION_KEYS = ("method", "grid")


def image_count(pooled: str | os.PathLike[str]) -> int:
    """How many images a case's ``pooled.h5`` (or an ``upsampled.h5``) holds, read from its labels alone."""
    from poolup.h5files import H5_ERRORS, open_h5

    try:
        with open_h5(pooled, verify=False) as file:
            return int(file["labels"].shape[0])
    except (KeyError, *H5_ERRORS):
        return 0  # not readable as such: load_training_data names the problem


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


def with_raw_images(data: TrainingData, raw: str | os.PathLike[str]) -> TrainingData:
    """``data`` with the raw images it was made from (``raw.h5``), checked to be them: the file its
    ``pooled.h5`` records as its source (where it is a ``pooled.h5``), as many images, the same labels in
    the same order, and the same image shape."""
    from poolup.h5files import open_h5
    from poolup.provenance import decode_attr

    source = read_image_set(raw, dtype="uint8", stage="fetch")
    with open_h5(data.source, verify=False) as file:
        made = {key: str(decode_attr(file.attrs.get(key, ""))) for key in ("stage", "source_sha256")}
    if made["stage"] == "pool" and made["source_sha256"] != str(source.attrs["content_sha256"]):
        raise PoolupError(
            f"{raw}: not the raw.h5 that {data.source} was made from (its content differs from the recorded "
            "source_sha256); delete the case's pooled.h5 and rerun, or restore that raw.h5"
        )
    if source.images.shape[0] != data.images.shape[0] or not np.array_equal(source.labels, data.labels):
        raise PoolupError(
            f"{raw}: {source.images.shape[0]} images whose labels are not those of {data.source} "
            f"({data.images.shape[0]} images); it is not the raw.h5 this case was made from, delete both and rerun"
        )
    if source.images.shape[1:] != data.images.shape[1:]:
        raise PoolupError(
            f"{raw}: images are {source.images.shape[1:]}, the case's come back as {data.images.shape[1:]}; "
            "delete the case's files and rerun"
        )
    names = tuple(source.attrs.get("class_names", ()))
    return replace(data, raw_images=source.images, class_names=names)
