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


# training.model: the paper's CNN, or a function of the user's, "FILE.py:FUNCTION".
PAPER_MODEL = "paper"


def model_file(spec: str) -> tuple[Path, str] | None:
    """The file and function that ``training.model`` names (None for ``paper``), or a one-line error."""
    if spec == PAPER_MODEL:
        return None
    path, sep, function = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not function.isidentifier():
        raise PoolupError(
            f"training.model {spec!r}: expected 'paper' or FILE.py:FUNCTION (a Python file and the name of the "
            "function in it that builds the model)"
        )
    return Path(os.path.expanduser(path)), function


def model_sha256(spec: str) -> str:
    """The content digest of the model's file ("" for the paper's CNN): editing the file changes it, and
    so the train jobs' params (they retrain); a comment edited in another file changes nothing."""
    named = model_file(spec)
    if named is None:
        return ""
    from poolup.provenance import file_sha256

    path, _ = named
    if not path.is_file():
        raise PoolupError(
            f"training.model {spec!r}: {path} not found (relative paths are read from the working directory); "
            "fix the path or use training.model: paper"
        )
    return file_sha256(path)


def _user_function(path: Path, function: str) -> Any:
    """The function ``function`` of the Python file ``path``, loaded as a module of its own."""
    import ast
    import importlib.util

    try:
        source = path.read_text()
    except OSError as exc:
        raise PoolupError(f"{path}: the model file cannot be read ({exc.strerror}); fix training.model") from None
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as exc:
        raise PoolupError(f"{path}:{exc.lineno}: syntax error in the model file ({exc.msg}); fix that line") from None
    spec = importlib.util.spec_from_file_location(f"poolup_user_model_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        raise PoolupError(
            f"{path}: importing the model file raised {type(exc).__name__}: {str(exc)[:120]}; fix the file"
        ) from None
    built = getattr(module, function, None)
    if not callable(built):
        defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
        raise PoolupError(
            f"{path}: no function {function!r}; the file defines {', '.join(defined) or 'no function'}; name one "
            "in training.model as FILE.py:FUNCTION"
        )
    return built


def make_model(spec: str, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """The model that ``training.model`` names, built for ``input_shape`` and ``n_classes``, and checked.

    ``paper``: :func:`build_model`. ``FILE.py:FUNCTION``: ``FUNCTION(input_shape, n_classes)`` from the
    user's file, which must return a ``keras.Model`` whose output is ``n_classes`` probabilities per
    image (a softmax: the loss is the categorical cross-entropy of probabilities, so logits are refused).
    The file is Python code that runs with the user's rights, as any Snakemake script does.
    """
    named = model_file(spec)
    if named is None:
        return build_model(input_shape, n_classes)
    import keras
    import numpy as np

    path, function = named
    built = _user_function(path, function)  # a missing or unreadable file: one line there
    try:
        model = built(tuple(input_shape), int(n_classes))
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        raise PoolupError(
            f"{path}: {function}({tuple(input_shape)}, {n_classes}) raised {type(exc).__name__}: {str(exc)[:120]}; "
            "fix the model function"
        ) from None
    if not isinstance(model, keras.Model):
        raise PoolupError(
            f"{path}: {function} returned {type(model).__name__}, not a keras.Model; return the model it builds"
        )
    try:
        probe = np.asarray(model(np.zeros((2, *input_shape), np.float32), training=False), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise PoolupError(
            f"{path}: the model of {function} cannot take images of shape {tuple(input_shape)} "
            f"({type(exc).__name__}: {str(exc)[:120]}); build it for the input_shape it is given"
        ) from None
    if probe.shape != (2, n_classes):
        raise PoolupError(
            f"{path}: the model of {function} outputs shape {tuple(probe.shape[1:])} per image, expected "
            f"({n_classes},): one output per class of the data set (n_classes)"
        )
    if not (np.all(probe >= 0) and np.allclose(probe.sum(axis=1), 1.0, atol=1e-3)):
        raise PoolupError(
            f"{path}: the model of {function} does not output probabilities (each row must sum to 1); end it with "
            "a softmax (logits are not accepted: the loss is the cross-entropy of probabilities)"
        )
    return model
