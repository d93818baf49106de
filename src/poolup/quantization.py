"""Quantisation to k bits: how a recipe keeps fewer grey levels, and how they are read back.

A pixel ``x`` in 0..255 becomes the code ``rint(x * (2**k - 1) / 255)`` and is read
back as ``code * 255 / (2**k - 1)``: the levels are spread evenly over 0..255,
so black and white stay exact. Codes are stored packed into a bit stream per
image where that is what makes the file smaller (see ``PACKED_BITS``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError

# 8 bits is the identity: no quantisation.
FULL_BITS = 8

# Bit depths whose codes are stored packed (a k-bit stream per image). Measured on
# the 70,000 MNIST digits under gzip-4 + shuffle (bytes per image, one code per byte
# -> packed): 1 bit 42.5 -> 32.1, 2 bits 73.0 -> 56.7, 3 bits 94.9 -> 85.6, 4 bits
# 111.5 -> 99.5, but 6 bits 140.4 -> 145.5 (gzip finds the byte-aligned codes'
# repeats better). So 5-7 bits keep one code per byte.
PACKED_BITS = (1, 2, 3, 4)


def _levels(bits: int) -> int:
    if not 1 <= bits <= FULL_BITS:
        raise PoolupError(f"bits {bits} is out of range; use 1..{FULL_BITS}")
    return 2**bits - 1


def to_codes(images: NDArray[np.uint8], bits: int) -> NDArray[np.uint8]:
    """The k-bit codes of uint8 images: ``rint(x * (2**bits - 1) / 255)`` (round half to even)."""
    if images.dtype != np.uint8:
        raise PoolupError(f"quantisation takes uint8 images, got {images.dtype}; set storage.dtype: uint8")
    levels = _levels(bits)
    return np.rint(images.astype(np.float32) * np.float32(levels / 255)).astype(np.uint8)


def from_codes(codes: NDArray[np.uint8], bits: int) -> NDArray[np.float32]:
    """The values codes are read back as: ``code * 255 / (2**bits - 1)``, float32."""
    levels = _levels(bits)
    # In float64, then rounded once to float32: the top code reads back as exactly 255.
    return (codes.astype(np.float64) * 255 / levels).astype(np.float32)


def packed_width(values_per_image: int, bits: int) -> int:
    """Bytes one image's codes take in the stored array (packed or one per byte)."""
    return -(-values_per_image * bits // 8) if bits in PACKED_BITS else values_per_image


def pack(codes: NDArray[np.uint8], bits: int) -> NDArray[np.uint8]:
    """Codes of shape (n, ...) as stored: (n, packed_width) uint8.

    For ``bits`` in ``PACKED_BITS``, each image's codes form one big-endian bit
    stream (``bits`` bits per value, row-major), zero-padded to whole bytes;
    otherwise one code per byte.
    """
    _levels(bits)
    flat = codes.reshape(codes.shape[0], -1)
    if bits not in PACKED_BITS:
        return np.ascontiguousarray(flat, dtype=np.uint8)
    stream = np.unpackbits(flat[:, :, None], axis=2)[:, :, FULL_BITS - bits :]
    return np.packbits(stream.reshape(flat.shape[0], -1), axis=1)


def unpack(packed: NDArray[np.uint8], bits: int, image_shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack`: codes of shape (n, *image_shape)."""
    _levels(bits)
    values = int(np.prod(image_shape))
    if packed.ndim != 2 or packed.shape[1] != packed_width(values, bits):
        raise PoolupError(
            f"packed codes of shape {list(packed.shape)} do not hold {bits}-bit images of shape {list(image_shape)}"
        )
    n = packed.shape[0]
    if bits not in PACKED_BITS:
        return packed.reshape((n,) + tuple(image_shape))
    stream = np.unpackbits(packed, axis=1)[:, : values * bits].reshape(n, values, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
    codes = (stream * weights).sum(axis=2, dtype=np.uint8)
    return codes.reshape((n,) + tuple(image_shape))
