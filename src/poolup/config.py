"""Configuration: schema validation with defaults, plus the checks a schema cannot express.

Every problem is reported as one line that names the config key and the fix.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from poolup.errors import PoolupError
from poolup.image_files import check_codec, image_mode
from poolup.interpolation import MIN_POINTS
from poolup.model import FEATURE_LAYERS, PAPER_MODEL, model_sha256, smallest_input_side
from poolup.pooling import pooled_side
from poolup.recipe import Recipe
from poolup.sequential import check_looks
from poolup.sources import PATH_SOURCES, require_path

# Case and data set names become folder names: keep them portable (matched
# with fullmatch, so no trailing newline slips through as with ``$``).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Folder and file names are at most 255 bytes on common file systems; the
# workflow adds prefixes and suffixes such as ``plot_preprocessing_<case>.log``.
MAX_NAME_LENGTH = 100
# Names the workflow itself uses in results/ (from the path patterns in
# rules/*.smk; tests/test_config.py checks this list against the rules): a
# data set or case of that name would share a path with a workflow folder or
# file. Compared case-insensitively, for case-insensitive file systems.
RESERVED_FOLDERS = frozenset({"results", "summary", "figures", "logs", "benchmarks", "looks", "search"})
RESERVED_PATTERN = re.compile(r"seed\d+|.*\.(h5|json|csv|md|png|pdf|log|tsv|keras|html)", re.IGNORECASE)
# Linear interpolation needs at least two stored pixels per axis.
MIN_STORED_SIDE = 2


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 2.0 as an integer; a job would then crash on a float
    # window. YAML's `2.0` is a float: refuse it where a whole number is meant.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _with_defaults(validator_class: type) -> type:
    """A validator class that fills in schema defaults (jsonschema's documented recipe) and whose integers are ints."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterable:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    type_checker = validator_class.TYPE_CHECKER.redefine("integer", _is_integer)
    return jsonschema.validators.extend(validator_class, {"properties": set_defaults}, type_checker=type_checker)


_Validator = _with_defaults(jsonschema.Draft202012Validator)
# The same checks without filling defaults, to test a value without changing it.
_Checker = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the YAML schema."""
    with open(path) as handle:
        return yaml.safe_load(handle)


def schema_keys(node: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every leaf key of a schema as a dotted path (``[]`` a list item, ``*`` any name), with its schema.

    ``datasets[].name``, ``cases.*.window``, ``training.early_stopping.patience``:
    what the configuration reference lists and what tests/test_invalidation.py
    changes one at a time.
    """
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict) and "properties" in items:
        return schema_keys(items, prefix + "[]")
    if "properties" in node:
        keys: dict[str, dict[str, Any]] = {}
        for name, child in node["properties"].items():
            keys.update(schema_keys(child, f"{prefix}.{name}" if prefix else name))
        return keys
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in extra:
        return schema_keys(extra, prefix + ".*")
    return {prefix: node}


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place (see :func:`_validate`); every error is one printable line."""
    try:
        return _validate(config, schema)
    except PoolupError as error:
        message = str(error)
        if any(ch in message for ch in "\n\r") or len(message) > MAX_MESSAGE:
            # A key or value may hold a newline or be huge: keep the message one readable line.
            message = message.replace("\r", "\\r").replace("\n", "\\n")
            if len(message) > MAX_MESSAGE:
                message = message[: MAX_MESSAGE // 2] + " ... " + message[-MAX_MESSAGE // 2 :]
            raise PoolupError(message) from None
        raise


# Longest config error line; longer ones (a huge list quoted back) are shortened in the middle.
MAX_MESSAGE = 400


def _validate(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
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
    for key in list(config):
        config[key] = coerce_to_schema(config[key], schema.get("properties", {}).get(key, {}))
    _check_values(config)
    for name in (config.get("cases") or {}) if isinstance(config.get("cases"), dict) else ():
        _check_name(f"cases.{name}", name)
    _check_unique_names("cases", list(config["cases"]) if isinstance(config.get("cases"), dict) else [])
    errors = sorted(
        _Validator(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        raise PoolupError(_describe(errors[0]))
    _check_datasets(config)
    for dataset in config["datasets"]:
        _check_cases(config, dataset)
    if config["analysis"]["sequential"]["looks"] is not None:
        check_looks(config["analysis"]["sequential"]["looks"])  # rising: what the schema cannot say
    _sort_settings(config)
    if config["baseline"] not in config["cases"]:
        raise PoolupError(
            f"config key 'baseline': case {config['baseline']!r} is not among cases ({', '.join(config['cases'])}); "
            "name an existing case"
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
        elif key == "search" and value:  # the families keep their order: the order the search walks them
            families = {family: _sorted_keys(template) for family, template in value["families"].items()}
            config[key] = {**_sorted_keys(value), "families": families}
        else:
            config[key] = _sorted_keys(value)


# Text that means a number, a truth value or nothing, where the schema wants one: PyYAML reads
# `1e-3` (YAML 1.2's float, without a dot) as text, and Snakemake's --config reads every value
# inside a list or mapping (`training={epochs: 2}`) as text.
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
_BOOLEAN_TEXT = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULL_TEXT = frozenset({"null", "Null", "NULL", "~", ""})


def coerce_to_schema(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with text turned into the number, truth value or null the schema wants there.

    Only where that is unambiguous: the schema accepts no text at that place,
    and the text is written as YAML writes the value (``1e-3``, ``2``,
    ``true``, ``null``). Everything else is returned as it is, for the schema
    to refuse with one line. Mappings and lists are walked with the schema's
    ``properties``, ``additionalProperties`` and ``items``; a ``oneOf`` takes
    the first alternative that the coerced value satisfies.
    """
    if "oneOf" in schema:
        for alternative in schema["oneOf"]:
            coerced = coerce_to_schema(value, alternative)
            if _Checker(alternative).is_valid(coerced):
                return coerced
        return value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, dict):
        properties, others = schema.get("properties", {}), schema.get("additionalProperties")
        return {
            key: coerce_to_schema(item, properties.get(key, others if isinstance(others, dict) else {}))
            for key, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_to_schema(item, schema["items"]) for item in value]
    if not isinstance(value, str) or "string" in types:
        return value
    text = value.strip()
    if "integer" in types and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER_TEXT.fullmatch(text):
        return int(text) if _INTEGER_TEXT.fullmatch(text) else float(text)
    if "boolean" in types and text.lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[text.lower()]
    if "null" in types and text in _NULL_TEXT:
        return None
    return value


def _check_values(value: Any, key: str = "") -> None:
    """Refuse NaN, infinity and NUL characters anywhere in the config (no schema keyword can)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PoolupError(f"config key '{key or '(top level)'}': {value} is not a finite number; give a real value")
    if isinstance(value, str) and "\0" in value:
        raise PoolupError(f"config key '{key or '(top level)'}': the text holds a NUL character; remove it")
    if isinstance(value, dict):
        for name, item in value.items():
            _check_values(name, key)
            _check_values(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{key}.{index}" if key else str(index))


def _check_name(key: str, name: Any) -> None:
    """A case or data set name must be a safe, short folder name the workflow does not use itself."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise PoolupError(
            f"config key '{key}': name {name!r} is not safe in a path; use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise PoolupError(
            f"config key '{key}': name {name[:20]!r}... is {len(name)} characters long; use at most {MAX_NAME_LENGTH}"
        )
    if name.lower() in RESERVED_FOLDERS or RESERVED_PATTERN.fullmatch(name):
        raise PoolupError(
            f"config key '{key}': name {name!r} is one the workflow uses for its own folders or files under "
            "results/; choose another name"
        )


def _check_unique_names(key: str, names: list[str]) -> None:
    """Two names that differ only in letter case are one folder on macOS and Windows."""
    seen: dict[str, str] = {}
    for name in names:
        if isinstance(name, str) and name.lower() in seen and seen[name.lower()] != name:
            raise PoolupError(
                f"config key '{key}': names {seen[name.lower()]!r} and {name!r} differ only in letter case, which is "
                "one folder on some file systems; rename one"
            )
        if isinstance(name, str):
            seen[name.lower()] = name


def check_inputs(config: dict[str, Any]) -> str:
    """The files a validated config names, checked to be there before any job (one line each, not
    Snakemake's missing input): each data set's ``path`` for the sources that read one, and
    ``training.model``'s file; returns that file's digest ("" for the paper's CNN), a param of the
    train jobs (:func:`poolup.model.model_sha256`)."""
    for dataset in config["datasets"]:
        if dataset["source"] in PATH_SOURCES:
            require_path(dataset["source"], dataset.get("path"))
    return model_sha256(config["training"]["model"])


def _check_datasets(config: dict[str, Any]) -> None:
    seen: set[str] = set()
    for index, dataset in enumerate(config["datasets"]):
        _check_name(f"datasets.{index}.name", dataset["name"])
        if dataset["name"] in seen:
            raise PoolupError(
                f"config key 'datasets.{index}.name': {dataset['name']!r} is used twice; "
                "give each data set its own name"
            )
        seen.add(dataset["name"])
        if config["training"].get("model", PAPER_MODEL) == PAPER_MODEL:  # a user's model says itself what it takes
            _check_image_shape(index, dataset)
    _check_unique_names("datasets", [dataset["name"] for dataset in config["datasets"]])


def _check_recipe(config: dict[str, Any], name: str, case: dict[str, Any], dataset: dict[str, Any]) -> None:
    """The recipe keys of one case: combinations that cannot be stored, one line each."""
    try:
        recipe = Recipe.from_case(case)
    except PoolupError as error:
        raise PoolupError(f"config key 'cases.{name}': {error}") from None
    if recipe.codec is not None:
        try:
            image_mode(dataset["image_shape"])
            check_codec(recipe.codec)
        except PoolupError as error:
            raise PoolupError(f"config key 'cases.{name}.codec': {error}") from None


def _check_image_shape(index: int, dataset: dict[str, Any]) -> None:
    """Refuse images smaller than the CNN's smallest input (:func:`poolup.model.smallest_input_side`)."""
    height, width = dataset["image_shape"][:2]
    smallest = smallest_input_side()
    if min(height, width) < smallest:
        layers = ", ".join(f"{layer} {size}x{size}" for layer, size in FEATURE_LAYERS)
        raise PoolupError(
            f"config key 'datasets.{index}.image_shape': {height}x{width} images of data set {dataset['name']!r} "
            f"are smaller than the CNN's smallest input, {smallest}x{smallest} (its {layers} leave no pixel); use "
            f"images of at least {smallest}x{smallest}"
        )


def _check_cases(config: dict[str, Any], dataset: dict[str, Any]) -> None:
    height, width = dataset["image_shape"][:2]
    for name, case in config["cases"].items():
        _check_recipe(config, name, case, dataset)
        window, stride = case["window"], case["stride"]
        method = case_method(config, name)
        if window > min(height, width):
            raise PoolupError(
                f"config key 'cases.{name}.window': {window} is larger than the {height}x{width} images of data set "
                f"{dataset['name']!r}; use a window <= {min(height, width)}"
            )
        side = min(pooled_side(height, window, stride), pooled_side(width, window, stride))
        needed = max(MIN_STORED_SIDE, MIN_POINTS[method])
        if side < needed and not (window == 1 and stride == 1):
            raise PoolupError(
                f"config key 'cases.{name}': window {window}, stride {stride} stores a {side}-pixel side of data set "
                f"{dataset['name']!r}; {method} interpolation needs >= {needed}, use a smaller window or stride"
            )


def add_search_cases(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, list[str]]:
    """Add the candidates of a validated config's ``search`` to its ``cases`` (in place), checked as cases are.

    Returns family -> its candidates' case names, in config order (empty without ``search``).
    """
    from poolup.search import family_candidates, search_cases

    if not config.get("search"):
        return {}
    families = family_candidates(config["search"])
    candidates = search_cases(families, config["cases"])
    if not config["analysis"]["sequential"]["looks"]:  # a fixed design: one look of every seed
        seeds = config["seeds"]
        if not isinstance(seeds, int) or seeds < 2:
            raise PoolupError(
                f"config key 'seeds': {seeds!r}; a search trains seeds 0..n-1 and judges a candidate on at least "
                "2 of them, paired with the baseline's: give a count of 2 or more, or analysis.sequential.looks"
            )
    where = "(a candidate of config key 'search.families': fix its family)"
    cases_schema = {"properties": {"cases": schema["properties"]["cases"]}}
    for error in _Validator(cases_schema).iter_errors({"cases": candidates}):
        raise PoolupError(f"{_describe(error)} {where}")
    try:
        for dataset in config["datasets"]:
            _check_cases({**config, "cases": candidates}, dataset)
    except PoolupError as error:
        raise PoolupError(f"{error} {where}") from None
    config["cases"].update({name: _sorted_keys(spec) for name, spec in candidates.items()})
    return {family: list(names) for family, names in families.items()}


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
        shown = repr(error.instance) if len(repr(error.instance)) <= 60 else repr(error.instance)[:57] + "..."
        return (
            f"config key 'seeds': {shown} is not a count 1..10000 or a list of 1..10000 distinct seeds in "
            "0..4294967295 (what train_test_split accepts); fix it"
        )
    if error.validator == "additionalProperties":
        return (
            f"config key '{key}': {error.message}; remove it or fix its spelling (see "
            "workflow/schemas/config.schema.yaml)"
        )
    if error.validator == "enum":
        return (
            f"config key '{key}': {error.instance!r} is not allowed; use one of "
            f"{', '.join('null' if value is None else str(value) for value in error.validator_value)}"
        )
    if error.validator == "required":
        return f"config key '{key}': {error.message}; add it"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        how = " or ".join(_HOW_TO_WRITE.get(kind, kind) for kind in wanted)
        return f"config key '{key}': {error.message}; write {how}"
    return f"config key '{key}': {error.message}; fix the value (see workflow/schemas/config.schema.yaml)"


# How to write a value of each schema type, for the message that refuses another.
_HOW_TO_WRITE = {
    "number": "a number, such as 0.001 or 1e-3",
    "integer": "a whole number without a decimal point, such as 2",
    "boolean": "true or false",
    "string": "text (quoted if it looks like a number)",
    "null": "null",
    "array": "a list, such as [28, 28]",
    "object": "a mapping of keys to values",
}


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # `<<: *base`: the merged keys may be given again, that is the point
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise PoolupError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: key {key!r} appears twice; case and setting "
                "names must be unique"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong, where, and the fix (``line N: ...; ...``), from a PyYAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
    if "'\\t'" in problem:
        return f"{where}a tab indents the text, and YAML indents with spaces only; replace the tabs by spaces"
    tag = re.search(r"tag:yaml\.org,2002:(python/[^'\s]+)|(![^'\s]+)", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag:
        shown = f"!!{tag.group(1)}" if tag.group(1) else tag.group(2)
        return (
            f"{where}the tag {shown} is not allowed: a config holds plain values (text, numbers, lists and "
            "mappings), never Python objects; remove the tag"
        )
    return f"{where}not valid YAML ({problem}); fix the syntax"


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A config file's mapping, or one line naming the file (and the line) and what to fix.

    Refused: text that is not YAML (tab-indented, unbalanced brackets), a
    tag that would build a Python object (``!!python/object``), a key given
    twice, and a file that holds no mapping of keys (empty, ``null`` or a
    list). YAML merge keys (``<<: *base``) are YAML and are accepted.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PoolupError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except OSError as exc:
        raise PoolupError(f"{path}: cannot be read ({exc.strerror or exc}); check the path") from None
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise PoolupError(f"{path}: {_yaml_problem(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        what = (
            ("is empty" if not text.strip() else "holds only null")
            if data is None
            else f"holds a {type(data).__name__}, not a mapping of keys"
        )
        raise PoolupError(
            f"{path}: the config file {what}; write its settings as keys at the top level, e.g. `seeds: 10` "
            "(workflow/schemas/config.schema.yaml lists them)"
        )
    return data


def check_config_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Check each config file that exists with :func:`read_config_file` (one line naming the first at fault)."""
    for path in paths:
        if Path(path).is_file():
            read_config_file(path)


def seed_list(seeds: int | list[int]) -> list[int]:
    """The seeds to run: ``range(n)`` for a count, else the list as given."""
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)
