"""2D average pooling: how a full-size image is shrunk before it is stored."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError


def pooled_side(side: int, window: int, stride: int) -> int:
    """Side length after `valid` average pooling.

    Parameters
    ----------
    side : int
        Side of the square input image, in pixels.
    window : int
        Side of the square pooling window.
    stride : int
        Step between two windows.

    Returns
    -------
    int
        ``(side - window) // stride + 1``, as Keras' ``AveragePooling2D`` with
        ``padding="valid"`` computes it.
    """
    if window < 1 or stride < 1:
        raise PoolupError(f"window ({window}) and stride ({stride}) must be >= 1")
    if window > side:
        raise PoolupError(f"window {window} is larger than the {side}-pixel image; use a window <= {side}")
    return (side - window) // stride + 1


def average_pool(images: NDArray, window: int, stride: int, block: int = 1024) -> NDArray[np.float32]:
    """Average-pool a batch of images with a square window, ``valid`` padding.

    Parameters
    ----------
    images : ndarray of shape (n, height, width) or (n, height, width, channels)
        The images; any real dtype. Channels, if present, are pooled independently.
    window : int
        Side of the square pooling window (1 with stride 1 is the identity).
    stride : int
        Step between windows, along both axes.
    block : int
        Images per step; small enough for the working set to stay in cache.

    Returns
    -------
    ndarray of float32, shape (n, h', w'[, channels])
        ``h' = (height - window) // stride + 1``, likewise ``w'``.

    Notes
    -----
    The window sum is separable: ``window - 1`` strided additions along the
    columns, then as many along the rows. For uint8 input the sums are exact
    in uint16, which halves the memory traffic of float32.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise PoolupError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    out_h = pooled_side(images.shape[1], window, stride)
    out_w = pooled_side(images.shape[2], window, stride)
    exact_in_uint16 = images.dtype == np.uint8 and window * window * 255 < 2**16
    accumulator = np.uint16 if exact_in_uint16 else np.float32
    span_h, span_w = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
    scale = np.float32(1.0 / (window * window))
    out = np.empty((images.shape[0], out_h, out_w) + images.shape[3:], dtype=np.float32)
    for start in range(0, images.shape[0], block):
        chunk = images[start : start + block]
        cols = chunk[:, :, 0:span_w:stride].astype(accumulator)
        for dx in range(1, window):
            cols += chunk[:, :, dx : dx + span_w : stride]
        sums = cols[:, 0:span_h:stride].copy()
        for dy in range(1, window):
            sums += cols[:, dy : dy + span_h : stride]
        target = out[start : start + block]
        target[...] = sums
        target *= scale
    return out


def round_to_dtype(pooled: NDArray[np.float32], dtype: str) -> NDArray:
    """Convert pooled values to the dtype they are stored in (quantisation to fewer bits: :mod:`poolup.quantization`).

    ``uint8`` rounds half to even and clips to [0, 255] (what an image file
    would hold); ``float32`` keeps the exact averages.
    """
    if dtype == "uint8":
        return np.clip(np.rint(pooled), 0, 255).astype(np.uint8)
    if dtype == "float32":
        return pooled.astype(np.float32, copy=False)
    raise PoolupError(f"unknown storage dtype {dtype!r}; use 'uint8' or 'float32'")
