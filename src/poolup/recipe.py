"""A case is a storage recipe: pool -> quantise -> encode before storage, and the way back.

The chain is fixed; each step is the identity at its default:

1. pool (``window``, ``stride``; :mod:`poolup.pooling`), the averages rounded to
   uint8 as an image file holds them (``storage.dtype``);
2. quantise (``bits`` 1-8, 8 = unchanged; :mod:`poolup.quantization`);
3. encode (``codec`` jpeg/webp/avif at ``quality``, ``tile`` images per file;
   :mod:`poolup.image_files`), else the images stay an HDF5 array under the
   ``storage`` filter.

What a recipe stores (its *payload*) is one of three layouts of HDF5 datasets:
``images`` (pooled pixels; bits 8 and no codec), ``codes`` (packed k-bit codes)
or ``encoded`` + ``offsets`` (image files end to end). :func:`read_back` undoes
steps 3 and 2 for any of them; up-sampling (:mod:`poolup.interpolation`) undoes 1.
This module is the one place the steps are composed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from poolup import image_files, quantization
from poolup.errors import PoolupError

# The recipe keys after pooling: the pool rule's `encoding` params and the attributes that record them.
ENCODING_KEYS = ("bits", "codec", "quality", "tile")
# Image files are the compression: they are stored as written, without the HDF5 filter
# (the codec takes the filter's place), so their bytes are what separate files would hold.
UNFILTERED = ("encoded",)
PAYLOADS: dict[str, tuple[str, ...]] = {
    "images": ("images",),
    "codes": ("codes",),
    "files": ("encoded", "offsets"),
}


@dataclass(frozen=True)
class Recipe:
    """One case's storage recipe (see the module docstring); defaults are the identity."""

    window: int = 1
    stride: int = 1
    bits: int = quantization.FULL_BITS
    codec: str | None = None
    quality: int | None = None
    tile: int = 1

    def __post_init__(self) -> None:
        if self.codec is not None:
            if self.codec not in image_files.CODECS:
                raise PoolupError(f"unknown codec {self.codec!r}; use one of {', '.join(image_files.CODECS)}")
            if self.bits != quantization.FULL_BITS:
                raise PoolupError("bits and codec cannot be combined (the codec quantises on its own); drop one")
        elif self.quality is not None or self.tile != 1:
            raise PoolupError("quality and tile apply to a codec; set codec or drop them")

    @classmethod
    def from_case(cls, spec: Mapping[str, Any]) -> Recipe:
        """The recipe of a ``cases`` entry (label and method are not part of it)."""
        return cls(
            window=int(spec["window"]),
            stride=int(spec["stride"]),
            bits=int(spec.get("bits", quantization.FULL_BITS)),
            codec=spec.get("codec"),
            quality=spec.get("quality"),
            tile=int(spec.get("tile", 1)),
        )

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Recipe:
        """The recipe an artifact records (:meth:`recorded`; absent keys are at their default)."""
        try:
            return cls.from_case(
                {
                    "window": attrs.get("window", 1),
                    "stride": attrs.get("stride", 1),
                    **{key: attrs[key] for key in ENCODING_KEYS if key in attrs and attrs[key] not in ("", None)},
                }
            )
        except (TypeError, ValueError) as error:
            raise PoolupError(f"the recorded recipe cannot be read ({error})") from None

    def encoding(self) -> dict[str, Any]:
        """The steps after pooling, with their defaults filled in (the pool rule's params)."""
        return {"bits": self.bits, "codec": self.codec, "quality": self.quality, "tile": self.tile}

    def recorded(self) -> dict[str, Any]:
        """The encoding keys an artifact records: only those off their default, so that files of
        recipes without quantisation or codec are the same as before those steps existed."""
        if self.codec is not None:
            return {"codec": self.codec, "quality": self.quality, "tile": self.tile}
        return {"bits": self.bits} if self.bits != quantization.FULL_BITS else {}

    @property
    def pools(self) -> bool:
        return not (self.window == 1 and self.stride == 1)

    @property
    def layout(self) -> str:
        """Which payload the recipe stores: ``images``, ``codes`` or ``files`` (see ``PAYLOADS``)."""
        if self.codec is not None:
            return "files"
        return "codes" if self.bits != quantization.FULL_BITS else "images"

    @property
    def family(self) -> str:
        """``baseline``, ``pool``, ``quantize``, ``codec``, ``pool+quantize`` or ``pool+codec``."""
        steps = [
            name
            for name, on in (
                ("pool", self.pools),
                ("quantize", self.layout == "codes"),
                ("codec", self.layout == "files"),
            )
            if on
        ]
        return "+".join(steps) or "baseline"

    def describe(self) -> str:
        """The recipe in words, e.g. ``pool 2x2/2 + 2 bits`` or ``webp q50, 1 image per file``."""
        steps = [f"pool {self.window}x{self.window}/{self.stride}"] if self.pools else []
        if self.layout == "codes":
            steps.append(f"{self.bits} bit{'s' if self.bits > 1 else ''}")
        if self.layout == "files":
            per_file = "1 image" if self.tile == 1 else f"{self.tile} images"
            quality = f"q{self.quality}" if self.quality is not None else "default quality"
            steps.append(f"{self.codec} {quality}, {per_file} per file")
        return " + ".join(steps) or "as is"

    def block_size(self, block: int) -> int:
        """Images per processing block: a multiple of ``tile``, so no file spans two blocks."""
        return max(1, block // self.tile) * self.tile

    def encode(self, pooled: NDArray) -> dict[str, NDArray]:
        """Steps 2-3 on a block of pooled images: the block's part of each payload array.

        ``files`` blocks give ``encoded`` (the files' bytes) and ``sizes`` (one per file);
        the writer turns the sizes into ``offsets``.
        """
        if self.layout == "images":
            return {"images": pooled}
        if pooled.dtype != np.uint8:
            raise PoolupError(f"bits and codec need uint8 images, got {pooled.dtype}; set storage.dtype: uint8")
        if self.layout == "codes":
            return {"codes": quantization.pack(quantization.to_codes(pooled, self.bits), self.bits)}
        assert self.codec is not None
        encoded, sizes = image_files.encode(pooled, self.codec, self.quality, self.tile)
        return {"encoded": encoded, "sizes": sizes}


def storage_dtype(recipe: Recipe, configured: str) -> str:
    """The dtype pooled pixels are rounded to: ``configured`` (``storage.dtype``), but uint8 for recipes
    that quantise or encode, since both steps start from 8-bit pixels."""
    return configured if recipe.layout == "images" else "uint8"


def read_back(file: h5py.File, start: int = 0, stop: int | None = None) -> NDArray:
    """Images ``start:stop`` of a pooled or stored artifact, decoded and de-quantised (steps 3, 2 undone).

    ``images`` payloads are returned as stored (uint8 or float32); ``codes``
    as float32 ``code * 255 / (2**bits - 1)``; ``files`` as the uint8 images
    Pillow decodes. Only the files that hold the requested images are decoded.
    """
    from poolup.provenance import decode_attr

    attrs = {key: decode_attr(value) for key, value in file.attrs.items()}
    recipe = Recipe.from_attrs(attrs)
    n = int(file["labels"].shape[0])
    stop = n if stop is None else min(stop, n)
    if recipe.layout == "images":
        return file["images"][start:stop]
    shape = tuple(int(v) for v in attrs["stored_shape"])
    if recipe.layout == "codes":
        codes = quantization.unpack(file["codes"][start:stop], recipe.bits, shape)
        return quantization.from_codes(codes, recipe.bits)
    first, last = start // recipe.tile, -(-stop // recipe.tile)
    offsets = file["offsets"][first : last + 1]
    encoded = file["encoded"][int(offsets[0]) : int(offsets[-1])]
    count = min(last * recipe.tile, n) - first * recipe.tile
    images = image_files.decode(encoded, offsets, count, shape, recipe.tile)
    skip = start - first * recipe.tile
    return images[skip : skip + stop - start]
