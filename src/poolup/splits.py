"""The training split: how each run splits the images, and whether the configured split can be made at all.

Each run splits as the authors did (:func:`split_indices`) and, with early
stopping, carves a validation part from its training part
(:func:`carve_validation`). A split that cannot be made must stop before any
work, with one line naming the config key and the fix, not fail after the
preprocessing inside scikit-learn: the sizes of the parts and, for a
stratified split, the images per class decide it (:func:`check_split`). The
workflow checks, before any job, what ``max_images`` tells before the data is
read and what the labels of an existing ``raw.h5`` tell (:func:`check_raw`);
``fetch``, given the check, refuses before it writes ``raw.h5``; and each
training job checks its input again.

The split arithmetic is scikit-learn's (``train_test_split``, which the runs
call): ``floor(train_size * n)`` training images, the rest held out; the
validation part of early stopping is ``ceil(validation_size * n_train)`` of
them; a stratified split needs two images of every class and at least one
image per class in each part. ``tests/test_splits.py`` checks that this
refuses exactly what scikit-learn refuses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError


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


def carve_validation(
    train: NDArray[np.int64], labels: NDArray, validation_size: float, random_state: int, stratify: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The part of a run's training indices it fits on, and the validation part that early stopping watches."""
    from sklearn.model_selection import train_test_split

    fit, validation = train_test_split(
        train, test_size=validation_size, random_state=random_state, stratify=labels[train] if stratify else None
    )
    return np.asarray(fit), np.asarray(validation)


@dataclass(frozen=True)
class SplitCheck:
    """The training settings that decide whether a data set can be split, and for which seeds.

    Not a plain value: as a rule's parameter, Snakemake leaves it out of the
    parameters it compares, so a new ``train_size`` passed this way to
    ``fetch`` would rerun the training, not the fetch.
    """

    dataset: str
    train_size: float
    stratify: bool
    early_stopping: bool
    validation_size: float
    seeds: tuple[int, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any], dataset: str, seeds: Sequence[int]) -> SplitCheck:
        """The check for one data set of a validated config."""
        training = config["training"]
        stopping = training["early_stopping"]
        return cls(
            dataset=dataset,
            train_size=training["train_size"],
            stratify=training["stratify"],
            early_stopping=stopping["enabled"],
            validation_size=stopping["validation_size"],
            seeds=tuple(seeds),
        )


def part_sizes(n: int, train_size: float) -> tuple[int, int]:
    """Training and held-out images of a split of ``n`` (scikit-learn's ``floor(train_size * n)``)."""
    n_train = math.floor(train_size * n)
    return n_train, n - n_train


def validation_sizes(n_train: int, validation_size: float) -> tuple[int, int]:
    """Images left to fit and held out for early stopping (scikit-learn's ``ceil(validation_size * n)``)."""
    n_validation = math.ceil(validation_size * n_train)
    return n_train - n_validation, n_validation


def check_split(labels: NDArray, check: SplitCheck, max_images: int | None = None) -> None:
    """Refuse a split that scikit-learn or the training could not make, with one line naming the key and the fix.

    Parameters
    ----------
    labels : ndarray of int
        Every image's class, in the data set's order.
    check : SplitCheck
        The training settings and seeds.
    max_images : int, optional
        The data set's ``max_images``, named as a fix where more images would help.

    Raises
    ------
    PoolupError
        The part sizes (:func:`check_split_sizes`); stratified: a class of one
        image, a part with fewer images than classes, or (with early stopping)
        a seed whose training part holds a class only once.
    """
    labels = np.asarray(labels)
    n = int(labels.shape[0])
    check_split_sizes(n, check, max_images)
    if check.stratify:
        more = _more(max_images)
        n_train, n_test = part_sizes(n, check.train_size)
        _check_stratified(labels, n_train, n_test, check, f"the {n:,} images of data set {check.dataset!r}", more)
        if check.early_stopping:
            _check_stratified_validation(labels, n_train, check, more)


def check_split_sizes(n: int, check: SplitCheck, max_images: int | None = None) -> None:
    """Refuse an empty training part, or (early stopping) nothing left to fit, for ``n`` images.

    What the number of images alone decides: the workflow checks it before
    any job when ``max_images`` gives that number, before the data is read.
    """
    more = _more(max_images)
    n_train, _ = part_sizes(n, check.train_size)
    if n_train == 0:
        raise PoolupError(
            f"config key 'training.train_size': {check.train_size:g} of the {n:,} images of data set "
            f"{check.dataset!r} leaves the training part empty; use a train_size of at least "
            f"{_at_least(lambda t: part_sizes(n, t)[0] >= 1)}{more}"
        )
    if check.early_stopping and validation_sizes(n_train, check.validation_size)[0] == 0:
        raise PoolupError(
            f"config key 'training.early_stopping.validation_size': {check.validation_size:g} of the {n_train:,} "
            f"training images of data set {check.dataset!r} leaves nothing to fit; use a smaller validation_size"
            f"{more}"
        )


def _more(max_images: int | None) -> str:
    return " or raise datasets[].max_images" if max_images is not None else ""


def _check_stratified(labels: NDArray, n_train: int, n_test: int, check: SplitCheck, where: str, more: str) -> None:
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        rare = classes[counts < 2]
        raise PoolupError(
            f"config key 'training.stratify': class {', '.join(map(str, rare[:5].tolist()))} has only one image "
            f"among {where}; a stratified split needs at least two of every class, set stratify: false{more}"
        )
    for part, size in (("training", n_train), ("test", n_test)):
        if size < classes.size:
            raise PoolupError(
                f"config key 'training.train_size': {check.train_size:g} of {where} leaves {size} images in the {part} "
                f"part for {classes.size} classes; a stratified split needs one of every class in each part, use a "
                f"{'larger' if part == 'training' else 'smaller'} train_size{more}"
            )


def _check_stratified_validation(labels: NDArray, n_train: int, check: SplitCheck, more: str) -> None:
    """The stratified validation split of early stopping, seed by seed where the classes are small."""
    classes, counts = np.unique(labels, return_counts=True)
    # A stratified split gives each class floor or ceil of its share of the training part.
    fewest = np.floor(n_train * counts / counts.sum())
    n_fit, n_validation = validation_sizes(n_train, check.validation_size)
    if fewest.min() >= 2 and min(n_fit, n_validation) >= classes.size:
        return
    for seed in check.seeds:
        train, _ = split_indices(labels, check.train_size, seed, stratify=True)
        part_classes, part_counts = np.unique(labels[train], return_counts=True)
        rare = part_classes[part_counts < 2]
        if rare.size:
            what = f"holds class {', '.join(map(str, rare[:5].tolist()))} only once, so it cannot be split again"
        elif min(n_fit, n_validation) < part_classes.size:
            what = f"would leave {n_fit} images to fit and {n_validation} to validate for {part_classes.size} classes"
        else:
            continue
        raise PoolupError(
            f"config key 'training.early_stopping.validation_size': with stratify, the training part of seed {seed} "
            f"({n_train:,} images of data set {check.dataset!r}) {what} for early stopping; set "
            f"training.stratify: false or training.early_stopping.enabled: false{more}"
        )


def _at_least(works: Any, digits: int = 3) -> str:
    """The smallest fraction in (0, 1) written with ``digits`` significant digits for which ``works`` holds."""
    for exponent in range(12, 0, -1):  # 1e-12 .. 0.999, smallest first
        for mantissa in range(10 ** (digits - 1), 10**digits):
            value = round(mantissa * 10.0 ** -(exponent + digits - 1), exponent + digits)
            if works(value):
                return f"{value:g}"
    return "a larger value"


def check_raw(raw: str | os.PathLike[str], fetch_settings: dict[str, Any], check: SplitCheck) -> None:
    """Check the split before any job, with what is known of the data set's labels.

    An existing ``raw.h5`` fetched with these settings gives every label:
    :func:`check_split`. Otherwise (fetch will read the data, and check the
    split when it is given one) ``max_images``, when set, gives the number of
    images: :func:`check_split_sizes`. A ``raw.h5`` that cannot be read is
    left to the stages reading it, which say so.
    """
    import h5py

    from poolup.h5files import H5_ERRORS
    from poolup.provenance import decode_attr

    max_images = fetch_settings.get("max_images")
    labels = None
    try:
        with h5py.File(raw, "r") as file:
            if decode_attr(file.attrs.get("fetch_settings", "")) == fetch_settings:
                labels = file["labels"][()]
    except H5_ERRORS:
        pass
    if labels is not None:
        check_split(labels, check, max_images)
    elif max_images is not None:
        check_split_sizes(max_images, check, max_images)
