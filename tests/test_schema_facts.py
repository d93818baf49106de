"""The schema is the one source of allowed values: the library's copies must equal it.

The library keeps a few allowed values as tuples, for its own one-line errors when it
is called without the workflow (tests, other programs). These tests prove that every
such copy equals the schema's enum, so that an option added to one place and not the
other fails here rather than in a job.
"""

import inspect
from pathlib import Path

import pytest

from poolup.codecs import CODECS
from poolup.config import load_schema
from poolup.interpolation import GRIDS, METHODS
from poolup.runs import OPTIONAL_RUN_FILES, TRAINING_EXECUTION_KEYS
from poolup.runtime import PRECISIONS
from poolup.sources import SOURCES
from poolup.storage import FILTERS

SCHEMA = load_schema(Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml")
PROPERTIES = SCHEMA["properties"]


def enum(*path: str) -> list:
    """The enum at a path of property names (``items`` followed where the value is a list)."""
    node = PROPERTIES
    for name in path:
        node = node[name]
        node = node.get("properties", node.get("items", {}).get("properties", node))
    return node["enum"] if "enum" in node else node["items"]["enum"]


COPIES = {
    "interpolation.method": METHODS,
    "interpolation.grid": GRIDS,
    "storage.filter": FILTERS,
    "codecs.names": CODECS,
    "datasets.source": SOURCES,
    "training.precision": PRECISIONS,
    "training.keep": OPTIONAL_RUN_FILES,
}


@pytest.mark.parametrize("key", COPIES)
def test_library_copies_equal_the_schema_enums(key):
    assert list(COPIES[key]) == enum(*key.split("."))


def test_a_case_accepts_the_same_methods_as_the_default():
    cases = PROPERTIES["cases"]["additionalProperties"]["properties"]
    assert cases["method"]["enum"] == enum("interpolation", "method")


def test_execution_keys_are_training_settings_of_the_schema():
    assert set(TRAINING_EXECUTION_KEYS) <= set(PROPERTIES["training"]["properties"])


def test_fetch_defaults_equal_the_schema_defaults():
    """A datasets[] key left out of the entry takes fetch_source's default: the schema's."""
    from poolup.preprocess import _FETCH_KEYS, _SOURCE_KEYS, fetch_source

    items = PROPERTIES["datasets"]["items"]["properties"]
    parameters = inspect.signature(fetch_source).parameters
    keys = {*_FETCH_KEYS, *(key for keys in _SOURCE_KEYS.values() for key in keys)} - {"source", "image_shape"}
    defaults = {key: parameters[key].default for key in sorted(keys)}
    assert defaults == {key: items[key]["default"] for key in defaults}
    assert parameters["source"].default is inspect.Parameter.empty  # required: the schema's default is applied first


def schema_default(path: str):
    """The schema's default at a dotted path of property names."""
    node = {"properties": PROPERTIES}
    for name in path.split("."):
        node = node["properties"][name]
    return node["default"]


# Library functions callable without the workflow keep defaults for the settings they take;
# each must equal the schema's default of the config key it stands for.
LIBRARY_DEFAULTS = [
    ("poolup.preprocess:pool", "dtype", "storage.dtype"),
    ("poolup.preprocess:pool_and_store", "dtype", "storage.dtype"),
    ("poolup.preprocess:pool_and_store", "filter_name", "storage.filter"),
    ("poolup.preprocess:pool_and_store", "level", "storage.level"),
    ("poolup.preprocess:upsample", "method", "interpolation.method"),
    ("poolup.preprocess:upsample", "grid", "interpolation.grid"),
    ("poolup.interpolation:upsample_images", "method", "interpolation.method"),
    ("poolup.interpolation:upsample_images", "grid", "interpolation.grid"),
    ("poolup.codecs:measure_case", "names", "codecs.names"),
    ("poolup.codecs:measure_case", "sample", "codecs.sample"),
]


@pytest.mark.parametrize(("function", "parameter", "key"), LIBRARY_DEFAULTS, ids=lambda v: str(v))
def test_library_defaults_equal_the_schema_defaults(function, parameter, key):
    import importlib

    module, name = function.split(":")
    default = inspect.signature(getattr(importlib.import_module(module), name)).parameters[parameter].default
    expected = schema_default(key)
    assert (list(default) if isinstance(default, tuple) else default) == expected


def test_gzip_without_a_level_takes_the_schema_level():
    from poolup.storage import filter_options

    assert filter_options("gzip", None)["compression_opts"] == schema_default("storage.level")


def test_a_summary_without_methods_says_the_schema_default_method():
    from poolup.aggregate import DEFAULT_METHOD

    assert schema_default("interpolation.method") == DEFAULT_METHOD
