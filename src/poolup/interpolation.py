"""Up-sampling of stored (pooled) images back to full size.

Nearest-neighbour, linear and cubic spline interpolation on a rectangular
grid, and Pillow's area (box) and Lanczos resampling, are all linear in the
pixel values and separable: each output image is ``Wh @ X @ Ww.T`` where
``Wh`` and ``Ww`` are small fixed matrices of interpolation weights. Applying
those matrices to a whole chunk of images is two matrix products, which is
what makes this orders of magnitude faster than building one
``scipy.interpolate.RectBivariateSpline`` (or one ``PIL.Image``) per image.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from poolup.errors import PoolupError

GRIDS: tuple[str, ...] = ("corners", "centers")
# Coarse to fine (the order of tables and figures).
METHODS: tuple[str, ...] = ("nearest", "area", "linear", "cubic", "lanczos")


def method_order(present: Iterable[str]) -> list[str]:
    """The methods in ``present`` coarse to fine (as :data:`METHODS`), any unknown ones last."""
    present = set(present)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


# Methods done by Pillow's resampling filters, on Pillow's own grid (see pillow_matrix).
PILLOW_FILTERS = {"area": "BOX", "lanczos": "LANCZOS"}
# Stored pixels per axis each method needs (a cubic spline needs four points).
MIN_POINTS = {"nearest": 1, "area": 1, "linear": 2, "cubic": 4, "lanczos": 1}


def grid_coordinates(
    grid: str, original_side: int, stored_side: int, window: int, stride: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coordinates of the stored pixels and of the full-size pixels on one axis.

    Parameters
    ----------
    grid : {"corners", "centers"}
        ``corners`` is the authors' choice: both grids span ``[0, original_side]``
        end to end (``linspace(0, 28, n)`` onto ``linspace(0, 28, 28)``), which
        stretches the pooled image over the whole frame. ``centers`` places each
        pooled pixel at the centre of the window it averaged
        (``j * stride + (window - 1) / 2`` in original pixel units) and each
        output pixel at its own centre; outside the stored pixels the edge
        value is held.
    original_side : int
        Full-size side (28 for MNIST).
    stored_side : int
        Side of the pooled image.
    window, stride : int
        The pooling that produced the stored image (used by ``centers``).

    Returns
    -------
    source, target : ndarray of float64
        Positions of the ``stored_side`` stored pixels and of the
        ``original_side`` output pixels.
    """
    if grid == "corners":
        return (
            np.linspace(0.0, original_side, stored_side),
            np.linspace(0.0, original_side, original_side),
        )
    if grid == "centers":
        source = np.arange(stored_side) * float(stride) + (window - 1) / 2.0
        return source, np.arange(original_side, dtype=np.float64)
    raise PoolupError(f"unknown interpolation grid {grid!r}; use one of {', '.join(GRIDS)}")


def interpolation_matrix(source: NDArray, target: NDArray, method: str = "linear") -> NDArray[np.float64]:
    """Weights of 1D interpolation from ``source`` to ``target`` points.

    Parameters
    ----------
    source : ndarray of shape (n,)
        Strictly increasing positions of the known samples.
    target : ndarray of shape (m,)
        Positions to evaluate; those outside ``[source[0], source[-1]]`` take
        the nearest edge value.
    method : {"nearest", "linear", "cubic"}
        ``nearest``: the closest sample (ties to the lower one, as
        ``scipy.interpolate.RegularGridInterpolator``). ``linear``: the
        linear spline. ``cubic``: the interpolating cubic spline of FITPACK
        (what ``RectBivariateSpline(kx=3, ky=3, s=0)`` fits), needs n >= 4.

    Returns
    -------
    ndarray of shape (m, n)
        Row ``i`` gives output ``i`` as a weighted sum of the samples. When
        ``target`` coincides with ``source`` the matrix is exactly the
        identity, whatever the method, so the baseline case is exact.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.clip(np.asarray(target, dtype=np.float64), source[0], source[-1])
    n = source.size
    if method not in METHODS or method in PILLOW_FILTERS:
        raise PoolupError(f"unknown grid interpolation method {method!r}; use one of nearest, linear, cubic")
    if n < MIN_POINTS[method]:
        raise PoolupError(f"{method} interpolation needs at least {MIN_POINTS[method]} stored pixels per axis, got {n}")
    if target.shape == source.shape and np.array_equal(target, source):
        return np.eye(n)
    weights = np.zeros((target.size, n), dtype=np.float64)
    rows = np.arange(target.size)
    if n == 1:
        weights[:, 0] = 1.0
        return weights
    left = np.clip(np.searchsorted(source, target, side="right") - 1, 0, n - 2)
    if method == "nearest":
        lower = target - source[left] <= source[left + 1] - target
        weights[rows, np.where(lower, left, left + 1)] = 1.0
        return weights
    if method == "cubic":
        from scipy.interpolate import InterpolatedUnivariateSpline

        # The spline is linear in the samples: its weights are the splines of the unit vectors.
        for j, unit in enumerate(np.eye(n)):
            weights[:, j] = InterpolatedUnivariateSpline(source, unit, k=3)(target)
        return weights
    t = (target - source[left]) / (source[left + 1] - source[left])
    weights[rows, left] = 1.0 - t
    weights[rows, left + 1] += t
    return weights


def pillow_matrix(stored_side: int, original_side: int, method: str) -> NDArray[np.float64]:
    """Weights of Pillow's ``Image.resize`` from ``stored_side`` to ``original_side`` pixels on one axis.

    Parameters
    ----------
    stored_side, original_side : int
        Input and output lengths.
    method : {"area", "lanczos"}
        ``area``: Pillow's ``BOX`` filter, each output pixel the average of
        the input it covers (area interpolation). ``lanczos``: Pillow's
        ``LANCZOS`` (a = 3) windowed sinc.

    Returns
    -------
    ndarray of shape (original_side, stored_side)

    Notes
    -----
    When enlarging, Pillow keeps the box half an input pixel wide, so ``area``
    copies the input pixel under each output pixel's centre: nearest
    neighbour on Pillow's grid (no output mixes two inputs for 13..27 -> 28).
    Pillow resamples on its own grid, pixel centres spread over the whole
    frame (``(j + 0.5) * original_side / stored_side - 0.5``), whatever the
    config's ``interpolation.grid``. Its resize is linear and separable (a
    horizontal then a vertical pass with the same 1D weights), so column
    ``j`` of the matrix is Pillow's resize of the unit vector ``e_j``: the
    matrix *is* Pillow's arithmetic, applied to every image at once.
    """
    from PIL import Image

    if method not in PILLOW_FILTERS:
        raise PoolupError(f"no Pillow filter for method {method!r}; use one of {', '.join(PILLOW_FILTERS)}")
    if stored_side == original_side:
        return np.eye(stored_side)
    resample = getattr(Image.Resampling, PILLOW_FILTERS[method])
    weights = np.empty((original_side, stored_side), dtype=np.float64)
    for j, unit in enumerate(np.eye(stored_side, dtype=np.float32)):
        weights[:, j] = np.asarray(Image.fromarray(unit[np.newaxis, :]).resize((original_side, 1), resample))[0]
    return weights


def effective_grid(method: str, grid: str) -> str:
    """The grid a method really uses: ``"pillow"`` for Pillow's filters, else ``grid``."""
    return "pillow" if method in PILLOW_FILTERS else grid


def axis_matrix(
    method: str, grid: str, original_side: int, stored_side: int, window: int, stride: int
) -> NDArray[np.float64]:
    """The (original_side, stored_side) weights of one axis for any method (see :data:`METHODS`)."""
    if method in PILLOW_FILTERS:
        return pillow_matrix(stored_side, original_side, method)
    return interpolation_matrix(*grid_coordinates(grid, original_side, stored_side, window, stride), method)


def upsample_images(
    images: NDArray,
    output_shape: tuple[int, int],
    window: int,
    stride: int,
    grid: str = "corners",
    method: str = "linear",
    chunk_size: int = 1024,
) -> NDArray[np.float32]:
    """Interpolate stored images back to full size.

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (n, h, w, channels)
        Stored (pooled) images, any real dtype.
    output_shape : (int, int)
        Full-size (height, width).
    window, stride : int
        The pooling that produced ``images`` (the ``centers`` grid needs it).
    grid : {"corners", "centers"}
        Placement of the two grids; see :func:`grid_coordinates` (not used by
        ``area`` and ``lanczos``, which keep Pillow's grid).
    method : {"nearest", "area", "linear", "cubic", "lanczos"}
        See :func:`interpolation_matrix` and :func:`pillow_matrix`; linear is the paper's.
    chunk_size : int
        Images per matrix product; bounds the temporary memory, and 1,024
        keeps each product's operands in cache (measured fastest here).

    Returns
    -------
    ndarray of float32, shape (n, H, W[, channels])
        For ``linear`` (``cubic``), equal image by image to
        ``RectBivariateSpline(src_y, src_x, image, kx=1, ky=1)(dst_y, dst_x)``
        (``kx=ky=3``) on the same grids; for ``area`` (``lanczos``), to
        Pillow's ``Image.resize`` with ``BOX`` (``LANCZOS``) in mode ``F``.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise PoolupError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    out_h, out_w = output_shape
    n, h, w = images.shape[:3]
    w_rows = axis_matrix(method, grid, out_h, h, window, stride).astype(np.float32)
    w_cols = axis_matrix(method, grid, out_w, w, window, stride).astype(np.float32)
    out = np.empty((n, out_h, out_w) + images.shape[3:], dtype=np.float32)
    # One BLAS thread: a threaded GEMM adds in another order, and the up-sampled images made in
    # memory by a training job must equal, bit for bit, those of an upsample job or a user's process.
    with threadpool_limits(limits=1, user_api="blas"):
        _upsample_chunks(images, w_rows, w_cols, out, chunk_size)
    return out


def _upsample_chunks(
    images: NDArray, w_rows: NDArray[np.float32], w_cols: NDArray[np.float32], out: NDArray[np.float32], chunk_size: int
) -> None:
    """:func:`upsample_images`' loop over chunks of images, into ``out``."""
    n, h, w = images.shape[:3]
    out_h, out_w = out.shape[1:3]
    for start in range(0, n, chunk_size):
        chunk = images[start : start + chunk_size]
        if chunk.ndim == 3:
            _apply_separable(chunk, w_rows, w_cols, out=out[start : start + chunk_size])
        else:
            # Channels become extra images: (n, h, w, c) -> (n * c, h, w) and back.
            m, c = chunk.shape[0], chunk.shape[3]
            planes = np.moveaxis(chunk, 3, 1).reshape(m * c, h, w)
            result = _apply_separable(planes, w_rows, w_cols)
            out[start : start + chunk_size] = np.moveaxis(result.reshape(m, c, out_h, out_w), 1, 3)


def _apply_separable(
    chunk: NDArray, w_rows: NDArray[np.float32], w_cols: NDArray[np.float32], out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """``w_rows @ image @ w_cols.T`` for every image of a (m, h, w) chunk.

    The column product is one GEMM over all rows of the chunk; the row product
    is a broadcast matmul that writes straight into ``out`` in (m, H, W)
    layout, which avoids two transposed copies (2x faster, measured).
    """
    m, h, w = chunk.shape
    x = np.ascontiguousarray(chunk, dtype=np.float32)
    cols = (x.reshape(m * h, w) @ w_cols.T).reshape(m, h, w_cols.shape[0])
    return np.matmul(w_rows, cols, out=out)
