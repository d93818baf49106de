"""Lossy image files (JPEG, WebP, AVIF through Pillow): how a recipe encodes images, and reads them back.

Images are encoded one file per image, or ``tile`` images laid out row by row in
one picture per file, with Pillow's defaults except ``quality``. The files are
kept as what a store of separate files would hold: their bytes end to end in one
flat uint8 array, with ``offsets`` (file ``i`` is ``encoded[offsets[i]:offsets[i+1]]``).
Decoded images are what Pillow opens, converted to the images' mode (``L`` for
grey, ``RGB`` for colour) with ``Image.convert``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError

CODECS: tuple[str, ...] = ("jpeg", "webp", "avif")
_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
# Largest picture side each format can hold (WebP: 16,383 pixels; JPEG: 65,535; AVIF: libavif's default
# dimension limit is 32,768 per side, and AV1 itself 65,536).
MAX_SIDE = {"jpeg": 65535, "webp": 16383, "avif": 32768}


def check_codec(codec: str) -> None:
    """Refuse, in one line, a codec this Pillow cannot write."""
    from PIL import features

    if codec not in CODECS:
        raise PoolupError(f"unknown image codec {codec!r}; use one of {', '.join(CODECS)}")
    feature = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}[codec]
    if not features.check(feature):
        raise PoolupError(
            f"this Pillow ({features.version('PIL')}) cannot write {codec.upper()}; install a Pillow wheel >= 11.3 "
            "(pip install -U pillow) or choose another codec"
        )


def image_mode(image_shape: Sequence[int]) -> str:
    """Pillow mode of images of this shape: ``L`` for (h, w) or (h, w, 1), ``RGB`` for (h, w, 3)."""
    if len(image_shape) == 2 or (len(image_shape) == 3 and image_shape[2] == 1):
        return "L"
    if len(image_shape) == 3 and image_shape[2] == 3:
        return "RGB"
    raise PoolupError(
        f"images of shape {list(image_shape)} cannot be stored as JPEG, WebP or AVIF (grey or RGB only); "
        "drop the case's codec"
    )


def tile_grid(count: int) -> tuple[int, int]:
    """Rows and columns of a picture holding ``count`` images: as square as possible, filled row by row."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def files_for(n_images: int, tile: int) -> int:
    """Number of files ``n_images`` take at ``tile`` images per file."""
    return -(-n_images // tile)


def _picture(images: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The images laid out row by row on one canvas (unused cells black)."""
    rows, columns = tile_grid(images.shape[0])
    height, width = images.shape[1:3]
    canvas = np.zeros((rows * height, columns * width) + images.shape[3:], dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return canvas


def _cells(picture: NDArray[np.uint8], count: int, image_shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """Inverse of :func:`_picture`: the first ``count`` cells."""
    _, columns = tile_grid(count)
    height, width = image_shape[:2]
    out = np.empty((count,) + tuple(image_shape), dtype=np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        out[index] = picture[row * height : (row + 1) * height, column * width : (column + 1) * width].reshape(
            image_shape
        )
    return out


def encode_file(images: NDArray[np.uint8], codec: str, quality: int | None) -> bytes:
    """One file holding ``images`` (one image, or several tiled), as Pillow writes it
    (``quality`` None: the format's default in Pillow)."""
    from PIL import Image

    picture = _picture(images)
    if max(picture.shape[:2]) > MAX_SIDE[codec]:
        raise PoolupError(
            f"a tile of {images.shape[0]} images is a {picture.shape[1]}x{picture.shape[0]} picture, larger than "
            f"{codec.upper()} allows ({MAX_SIDE[codec]} pixels a side); use a smaller tile"
        )
    mode = image_mode(images.shape[1:])
    buffer = io.BytesIO()
    options = {} if quality is None else {"quality": quality}
    Image.fromarray(picture.reshape(picture.shape[:2]) if mode == "L" else picture, mode=mode).save(
        buffer, format=_FORMATS[codec], **options
    )
    return buffer.getvalue()


def decode_file(data: bytes, count: int, image_shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """The ``count`` images of one file: what Pillow opens, converted to the images' mode."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        picture = np.asarray(opened.convert(image_mode(image_shape)))
    return _cells(picture, count, image_shape)


def encode(
    images: NDArray[np.uint8], codec: str, quality: int | None, tile: int = 1
) -> tuple[NDArray[np.uint8], NDArray]:
    """Encode ``images`` (n, h, w[, c]) uint8 as files of ``tile`` images each.

    Returns
    -------
    encoded : ndarray of uint8
        The files' bytes end to end.
    sizes : ndarray of int64
        Each file's length (``files_for(n, tile)`` of them).
    """
    if images.dtype != np.uint8:
        raise PoolupError(f"{codec.upper()} holds 8-bit images, got {images.dtype}; set storage.dtype: uint8")
    check_codec(codec)
    files = [encode_file(images[start : start + tile], codec, quality) for start in range(0, images.shape[0], tile)]
    encoded = np.frombuffer(b"".join(files), dtype=np.uint8)
    return encoded, np.array([len(file) for file in files], dtype=np.int64)


def decode(
    encoded: NDArray[np.uint8], offsets: NDArray, n_images: int, image_shape: tuple[int, ...], tile: int = 1
) -> NDArray[np.uint8]:
    """Inverse of :func:`encode`: ``n_images`` images from the files at ``offsets`` (len = files + 1)."""
    if len(offsets) != files_for(n_images, tile) + 1:
        raise PoolupError(
            f"{len(offsets) - 1} files cannot hold {n_images} images at {tile} per file; the store is inconsistent"
        )
    out = np.empty((n_images,) + tuple(image_shape), dtype=np.uint8)
    raw = encoded.tobytes() if isinstance(encoded, np.ndarray) else bytes(encoded)
    base = int(offsets[0])
    for index in range(len(offsets) - 1):
        start = index * tile
        count = min(tile, n_images - start)
        data = raw[int(offsets[index]) - base : int(offsets[index + 1]) - base]
        out[start : start + count] = decode_file(data, count, image_shape)
    return out
