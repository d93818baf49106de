"""The model: the paper's CNN (section IV.B), the input sizes it accepts, and loading a saved one.

TensorFlow and Keras are imported inside the functions that need them, so the
rest of the package (the config's checks of image sizes, say) never pays
their import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from poolup.errors import PoolupError

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
