"""Scaling a run's images before training: per-pixel standardisation, fitted on the training split or on all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError

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


def fitted_scaler(
    images: NDArray, train: NDArray[np.int64], scaling: str, fit_on: str
) -> tuple[Callable[[NDArray], NDArray[np.float32]], dict[str, Any]]:
    """The configured scaling, fitted on ``images``: a function that applies it to any images of their
    shape (a run's stored images, and its raw test images), and the record of what it is.

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
        return (lambda given: given.astype(np.float32, copy=False)), {"scaling": "none"}
    if scaling != "standard":
        raise PoolupError(f"training.scaling {scaling!r} is unknown; use 'standard' or 'none'")
    if fit_on not in ("train", "all"):
        raise PoolupError(f"training.scaling_fit_on {fit_on!r} is unknown; use 'train' or 'all'")
    mean, scale = fit_scaler(images, train if fit_on == "train" else None)

    def apply(given: NDArray) -> NDArray[np.float32]:
        scaled = np.subtract(given, mean, dtype=np.float32)  # a new array: the caller's images stay unscaled
        scaled /= scale
        return scaled

    return apply, {"scaling": "standard", "fit_on": fit_on}


def scale_images(
    images: NDArray, train: NDArray[np.int64], scaling: str, fit_on: str
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Every image scaled as configured (:func:`fitted_scaler`, fitted on ``images`` themselves)."""
    apply, record = fitted_scaler(images, train, scaling, fit_on)
    return apply(images), record
