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
from poolup.sources import SOURCES
from poolup.storage import FILTERS
from poolup.training import PRECISIONS, TRAINING_EXECUTION_KEYS

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
    from poolup.preprocess import _SOURCE_SETTINGS, fetch_source

    items = PROPERTIES["datasets"]["items"]["properties"]
    parameters = inspect.signature(fetch_source).parameters
    defaults = {key: parameters[key].default for key in _SOURCE_SETTINGS if key != "source"}
    assert defaults == {key: items[key]["default"] for key in defaults}
    assert parameters["source"].default is inspect.Parameter.empty  # required: the schema's default is applied first
