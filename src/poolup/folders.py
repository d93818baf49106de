"""``source: folder``: a data set kept as image files, one subfolder per class.

The layout of Keras' ``image_dataset_from_directory`` and torchvision's
``ImageFolder``: ``ROOT/<class>/**/<image>``. Class numbers are the sorted
class folder names (0, 1, ...); the names are recorded in ``raw.h5``.

Every image is converted to the mode that the data set's ``image_shape``
implies (``L`` for (height, width), ``RGB`` for (height, width, 3)), so one
array holds them all. What is refused, each with one line naming the file and
the remedy, rather than converted in silence:

- a file Pillow cannot read or decode (truncated, not an image);
- a 16-bit or 32-bit image (``I;16``, ``I``, ``F``): Pillow's conversion to
  8 bits clips instead of scaling, and would keep only the darkest 256 levels;
- a palette image with transparency, an image whose alpha channel is not
  opaque everywhere, a CMYK image: what their pixels look like on an
  opaque grey or RGB canvas is a choice the user has to make;
- mixed image sizes, unless ``resize`` names the size to bring them to;
- a class folder without an image, a class with one image (a class needs one
  image to train on and one to test).

What is converted: palette images without transparency (their colours map to
RGB exactly; GIF files are palette images, of which the first frame is read),
bilevel images, and RGB to grey (Pillow's ITU-R 601-2 luma) or grey to RGB.
An EXIF orientation tag is applied (``ImageOps.exif_transpose``), as a photo
viewer shows the photo. Hidden files, ``Thumbs.db`` and ``desktop.ini`` and
files without an image suffix are skipped and counted in the fetch log.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from poolup.errors import PoolupError

log = logging.getLogger("poolup")

# The suffixes read as images (Pillow reads them all; GIF's first frame).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
# Files that operating systems leave in folders of pictures.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
# Pillow's resampling filters by the name the config gives (datasets[].resample).
RESAMPLING = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
# Modes converted to L or RGB without a choice to make (P: checked for transparency first).
_CONVERTIBLE = frozenset({"1", "L", "P", "RGB"})
_WITH_ALPHA = frozenset({"LA", "RGBA", "PA"})
_HIGH_DEPTH = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
# Most classes uint8 labels hold.
MAX_CLASSES = 256


@dataclass(frozen=True)
class FolderListing:
    """The image files of a folder data set, by class, and what was skipped."""

    root: Path
    class_names: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]  # per class, sorted by path
    skipped: Counter  # reason -> count


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def list_folder(root: str | os.PathLike[str]) -> FolderListing:
    """The class folders of ``root`` (sorted by name) and the image files in each, subfolders included.

    Raises
    ------
    PoolupError
        If ``root`` is not a folder, holds no class folder, holds more than
        ``MAX_CLASSES``, or a class folder holds no image file.
    """
    root = Path(os.path.expanduser(root))
    if not root.is_dir():
        raise PoolupError(
            f"datasets[].path {root}: not a folder; for source 'folder' point it at a folder with one subfolder "
            "per class"
        )
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not _hidden(entry.name))
    if len(classes) < 2:
        raise PoolupError(
            f"{root}: {len(classes)} class folder{'s' if len(classes) != 1 else ''}; a folder data set holds one "
            "subfolder per class, at least two"
        )
    if len(classes) > MAX_CLASSES:
        raise PoolupError(f"{root}: {len(classes)} class folders; at most {MAX_CLASSES} classes are supported")
    skipped: Counter = Counter()
    files = []
    for name in classes:
        found = []
        # Subfolders of a class are read too (as Keras and torchvision do); links to folders are
        # not followed, so a link loop cannot make the walk endless.
        for folder, subfolders, names in os.walk(root / name):
            subfolders[:] = sorted(sub for sub in subfolders if not _hidden(sub))
            for file in names:
                if _hidden(file):
                    skipped["hidden or system file"] += 1
                elif Path(file).suffix.lower() not in IMAGE_SUFFIXES:
                    skipped["not an image suffix"] += 1
                else:
                    found.append(Path(folder, file))
        if not found:
            raise PoolupError(
                f"{root / name}: class folder without an image file ({', '.join(sorted(IMAGE_SUFFIXES))}); add "
                "images or remove the folder"
            )
        files.append(tuple(sorted(found)))
    return FolderListing(root, tuple(classes), tuple(files), skipped)


def folder_files(root: str | os.PathLike[str]) -> list[str]:
    """Every image file that :func:`load_folder` reads, for the fetch rule's inputs (a file added,
    replaced or deleted reruns fetch); [] where the folder cannot be listed (fetch then says why)."""
    try:
        listing = list_folder(root)
    except (PoolupError, OSError):
        return []
    return [str(path) for paths in listing.files for path in paths]


def _opaque(image) -> bool:
    """Whether an image's transparency, if any, is fully opaque (so dropping it changes no pixel)."""
    if image.mode == "P":
        return "transparency" not in image.info
    alpha = image.getchannel("A")
    return alpha.getextrema()[0] == 255


def read_image(path: Path, mode: str, size: tuple[int, int] | None, resample: str) -> NDArray[np.uint8]:
    """One image file as a uint8 array in ``mode`` (``L`` or ``RGB``), at ``size`` (height, width) when given."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise PoolupError(
            f"{path}: cannot be read as an image ({type(exc).__name__}: {str(exc)[:80]}); replace or delete the file"
        ) from None
    if image.mode in _HIGH_DEPTH:
        raise PoolupError(
            f"{path}: a {image.mode} image (more than 8 bits per pixel); convert it to 8 bits (L or RGB) first, "
            "scaling its range as the data needs"
        )
    if image.mode in _WITH_ALPHA or (image.mode == "P" and "transparency" in image.info):
        if not _opaque(image):
            raise PoolupError(
                f"{path}: a {image.mode} image with transparent pixels; flatten it onto a background first "
                "(what colour those pixels are is the data's choice)"
            )
        image = image.convert("L" if image.mode == "LA" else "RGB")  # an opaque alpha channel changes no pixel
    elif image.mode not in _CONVERTIBLE:
        raise PoolupError(f"{path}: a {image.mode} image; convert it to L (grey) or RGB first")
    if image.mode != mode:
        # A palette maps to RGB exactly; from there to grey, Pillow's ITU-R 601-2 luma.
        image = (image.convert("RGB") if image.mode == "P" and mode == "L" else image).convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), getattr(Image.Resampling, resample.upper()))
    return np.asarray(image, dtype=np.uint8)


def _sizes_text(paths: Sequence[Path], images: Sequence[NDArray]) -> str:
    """The sizes the images have (height x width), the most common first, each with its count and a file."""
    sizes = Counter(image.shape[:2] for image in images)
    examples: dict[tuple[int, ...], Path] = {}
    for path, image in zip(paths, images):
        examples.setdefault(image.shape[:2], path)
    shown = [f"{h}x{w} ({count}, e.g. {examples[(h, w)]})" for (h, w), count in sizes.most_common(4)]
    return (
        f"{len(sizes)} sizes (height x width), "
        + ", ".join(shown)
        + (f" and {len(sizes) - 4} more" if len(sizes) > 4 else "")
    )


def load_folder(
    root: str | os.PathLike[str],
    image_shape: Sequence[int] | None = None,
    resize: Sequence[int] | None = None,
    resample: str = "bicubic",
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], str, tuple[str, ...]]:
    """Read a folder data set: images (n, h, w[, 3]) uint8, labels, what was read, and the class names.

    Parameters
    ----------
    root : path-like
        The folder with one subfolder per class.
    image_shape : sequence of int, optional
        (height, width) reads grey images, (height, width, 3) colour ones;
        grey when not given.
    resize : (height, width), optional
        Bring every image to this size with Pillow's ``resample`` filter;
        without it, images of more than one size are refused.
    resample : str
        One of ``RESAMPLING``.
    """
    if resample not in RESAMPLING:
        raise PoolupError(f"datasets[].resample {resample!r} is unknown; use one of {', '.join(RESAMPLING)}")
    channels = tuple(image_shape or ())[2:]
    if channels not in ((), (1,), (3,)):
        raise PoolupError(
            f"datasets[].image_shape {list(image_shape or ())}: a folder data set is grey (height, width) or colour "
            "(height, width, 3)"
        )
    mode = "RGB" if channels == (3,) else "L"
    listing = list_folder(root)
    for name, paths in zip(listing.class_names, listing.files):
        if len(paths) < 2:
            raise PoolupError(
                f"{listing.root / name}: class '{name}' has only one image ({paths[0].name}); every class needs at "
                "least two (one to train on, one to test): add images or remove the folder"
            )
    size = tuple(resize) if resize is not None else None
    files = [path for paths in listing.files for path in paths]
    # One pass: each image's size is known once it is read (after its EXIF orientation is applied).
    images = [read_image(path, mode, size, resample) for path in files]
    if len({image.shape for image in images}) > 1:
        raise PoolupError(
            f"{listing.root}: images of {_sizes_text(files, images)}; set datasets[].resize to [height, width] to "
            "bring them to one size"
        )
    labels = np.repeat(np.arange(len(listing.files), dtype=np.uint8), [len(paths) for paths in listing.files])
    stacked = np.stack(images)
    if channels == (1,):
        stacked = stacked[..., None]
    n_skipped = sum(listing.skipped.values())
    log.info(
        "%s: %d images in %d classes; %d files skipped%s",
        listing.root,
        stacked.shape[0],
        len(listing.class_names),
        n_skipped,
        f" ({', '.join(f'{count} {why}' for why, count in sorted(listing.skipped.items()))})" if n_skipped else "",
    )
    detail = f"folder:{listing.root} ({len(images)} images in {len(listing.class_names)} class folders)"
    return stacked, labels, detail, listing.class_names
