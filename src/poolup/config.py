"""Configuration: schema validation with defaults, plus the checks a schema cannot express.

Every problem is reported as one line that names the config key and the fix.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from poolup.errors import PoolupError
from poolup.interpolation import MIN_POINTS
from poolup.pooling import pooled_side

# Case and data set names become folder names: keep them portable.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Linear interpolation needs at least two stored pixels per axis.
MIN_STORED_SIDE = 2


def _with_defaults(validator_class: type) -> type:
    """A validator class that also fills in schema defaults (jsonschema's documented recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterable:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the YAML schema."""
    with open(path) as handle:
        return yaml.safe_load(handle)


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place, fill defaults and check cross-key rules.

    Parameters
    ----------
    config : dict
        The workflow's config (modified: defaults are filled in).
    schema : dict
        The JSON schema (``workflow/schemas/config.schema.yaml``).

    Returns
    -------
    dict
        ``config``, for chaining.

    Raises
    ------
    PoolupError
        The first problem found, as one line naming the key and the fix.
    """
    if "dataset" in config:
        raise PoolupError(
            "config key 'dataset': replaced by 'datasets', a list; write `datasets: [{name: ..., source: ...}]`"
        )
    for name in (config.get("cases") or {}) if isinstance(config.get("cases"), dict) else ():
        _check_name(f"cases.{name}", name)
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise PoolupError(_describe(errors[0]))
    _check_datasets(config)
    for dataset in config["datasets"]:
        _check_cases(config, dataset)
    _sort_settings(config)
    if config["baseline"] not in config["cases"]:
        raise PoolupError(
            f"config key 'baseline': case {config['baseline']!r} is not among cases ({', '.join(config['cases'])}); name an existing case"
        )
    return config


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _sort_settings(config: dict[str, Any]) -> None:
    """Put every settings mapping in key order, in place.

    Rules pass these mappings as ``params``, and Snakemake compares params by
    their text: without a fixed order, reordering keys in a config file (or a
    default filled in at another place) would rerun every job. The order of
    data sets and cases is kept: it is the order of tables and figures.
    """
    for key, value in config.items():
        if key == "cases":
            config[key] = {case: _sorted_keys(spec) for case, spec in value.items()}
        else:
            config[key] = _sorted_keys(value)


def _check_name(key: str, name: Any) -> None:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise PoolupError(
            f"config key '{key}': name {name!r} is not safe in a path; use letters, digits, '_', '-' or '.', starting with a letter or digit"
        )


def _check_datasets(config: dict[str, Any]) -> None:
    seen: set[str] = set()
    for index, dataset in enumerate(config["datasets"]):
        _check_name(f"datasets.{index}.name", dataset["name"])
        if dataset["name"] in seen:
            raise PoolupError(
                f"config key 'datasets.{index}.name': {dataset['name']!r} is used twice; give each data set its own name"
            )
        seen.add(dataset["name"])


def _check_cases(config: dict[str, Any], dataset: dict[str, Any]) -> None:
    height, width = dataset["image_shape"][:2]
    for name, case in config["cases"].items():
        window, stride = case["window"], case["stride"]
        method = case_method(config, name)
        if window > min(height, width):
            raise PoolupError(
                f"config key 'cases.{name}.window': {window} is larger than the {height}x{width} images of data set {dataset['name']!r}; use a window <= {min(height, width)}"
            )
        side = min(pooled_side(height, window, stride), pooled_side(width, window, stride))
        needed = max(MIN_STORED_SIDE, MIN_POINTS[method])
        if side < needed and not (window == 1 and stride == 1):
            raise PoolupError(
                f"config key 'cases.{name}': window {window}, stride {stride} stores a {side}-pixel side of data set {dataset['name']!r}; {method} interpolation needs >= {needed}, use a smaller window or stride"
            )


def dataset_names(config: dict[str, Any]) -> list[str]:
    """The data set names, in config order."""
    return [dataset["name"] for dataset in config["datasets"]]


def dataset_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``datasets`` entry called ``name``."""
    for dataset in config["datasets"]:
        if dataset["name"] == name:
            return dataset
    raise PoolupError(f"no data set {name!r} in config key 'datasets'; use one of {', '.join(dataset_names(config))}")


def case_method(config: dict[str, Any], case: str) -> str:
    """The interpolation method of a case: its own ``method``, else ``interpolation.method``."""
    return config["cases"][case].get("method", config["interpolation"]["method"])


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and key == "seeds":
        return f"config key 'seeds': {error.instance!r} is not a positive count or a non-empty list of distinct seeds >= 0; fix it"
    if error.validator == "additionalProperties":
        return f"config key '{key}': {error.message}; remove it or fix its spelling (see workflow/schemas/config.schema.yaml)"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not allowed; use one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}; add it"
    return f"config key '{key}': {error.message}; fix the value (see workflow/schemas/config.schema.yaml)"


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise PoolupError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: key {key!r} appears twice; case and setting names must be unique"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def check_config_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Reject config files with duplicate keys, which YAML would silently merge."""
    for path in paths:
        path = Path(path)
        if path.is_file():
            with open(path) as handle:
                loader = _StrictLoader(handle)
                loader.name = str(path)
                try:
                    loader.get_single_data()
                except yaml.YAMLError as exc:
                    raise PoolupError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
                finally:
                    loader.dispose()


def seed_list(seeds: int | list[int]) -> list[int]:
    """The seeds to run: ``range(n)`` for a count, else the list as given."""
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)
