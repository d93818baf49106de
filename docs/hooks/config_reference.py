"""MkDocs hook: the configuration reference, generated from workflow/schemas/config.schema.yaml.

The page docs/configuration.md holds the marker ``<!-- configuration reference -->``;
at build time it is replaced by one section per top-level key and a table of every
key under it (type, default, allowed values, description), so that a key added to
the schema appears in the docs without an edit and the docs cannot drift from it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
MARKER = "<!-- configuration reference -->"
PAGE = "configuration.md"

sys.path.insert(0, str(ROOT / "src"))
from poolup.config import schema_keys  # noqa: E402  (the workflow's own walk of the schema's keys)


def _value(value: Any) -> str:
    """A value as it is written in a config file (YAML flow style)."""
    return json.dumps(value, ensure_ascii=False).replace("|", "\\|")


def _text(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _type(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(spec.get("items"), dict) and "type" in spec["items"]:
        return f"list of {spec['items']['type']}s"
    if kind is None and "oneOf" in spec:
        return " or ".join(_type(option) for option in spec["oneOf"])
    return kind or ""


def _bounds(spec: dict[str, Any]) -> list[str]:
    words = []
    for keyword, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if keyword in spec:
            words.append(f"{sign} {spec[keyword]}")
    if "minItems" in spec and "maxItems" in spec:
        words.append(f"{spec['minItems']} to {spec['maxItems']} items")
    elif "minItems" in spec:
        words.append(f"at least {spec['minItems']} item{'s' if spec['minItems'] != 1 else ''}")
    elif "maxItems" in spec:
        words.append(f"at most {spec['maxItems']} items")
    if spec.get("uniqueItems"):
        words.append("no repeats")
    return words


def allowed(spec: dict[str, Any]) -> str:
    """The values a key accepts, in words."""
    if "enum" in spec:
        return "one of " + ", ".join(f"`{value}`" for value in spec["enum"])
    if "oneOf" in spec:
        return "; or ".join(f"{_type(option)} {', '.join(_bounds(option))}".strip() for option in spec["oneOf"])
    words = _bounds(spec)
    items = spec.get("items")
    if isinstance(items, dict):
        if "enum" in items:
            words.append("each one of " + ", ".join(f"`{value}`" for value in items["enum"]))
        elif _bounds(items):
            words.append("each " + ", ".join(_bounds(items)))
    return ", ".join(words)


def _row(key: str, spec: dict[str, Any], required: bool) -> str:
    default = "required" if required else (f"`{_value(spec['default'])}`" if "default" in spec else "")
    return f"| `{key}` | {_type(spec)} | {default} | {allowed(spec)} | {_text(spec.get('description'))} |"


def _required(schema: dict[str, Any], key: str) -> bool:
    """Whether the schema requires ``key`` inside its parent (e.g. a case's window and stride)."""
    node: Any = schema
    parts = key.replace("[]", ".[]").split(".")
    for part in parts[:-1]:
        if part == "[]":
            node = node["items"]
        elif part == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return parts[-1] in node.get("required", [])


def _groups(schema: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    """The nested objects under a top-level key that carry a description (``training.early_stopping``)."""
    found = []

    def walk(node: dict[str, Any], path: str) -> None:
        for child, spec in node.get("properties", {}).items():
            if "properties" in spec:
                if spec.get("description"):
                    found.append((f"{path}.{child}", spec))
                walk(spec, f"{path}.{child}")

    walk(schema["properties"][name], name)
    return found


def reference(schema: dict[str, Any]) -> str:
    """The Markdown of the configuration reference: every key of ``schema``."""
    keys = schema_keys(schema)
    lines = []
    for name, spec in schema["properties"].items():
        lines += [f"## `{name}`", ""]
        if spec.get("description") and name not in keys:  # a key that is itself a leaf has it in its row
            lines += [_text(spec["description"]), ""]
        if isinstance(spec.get("default"), dict) and spec["default"] and "additionalProperties" in spec:
            lines += [
                "Default:",
                "",
                "```yaml",
                yaml.safe_dump({name: spec["default"]}, sort_keys=False).strip(),
                "```",
                "",
            ]
        for group, group_spec in _groups(schema, name):
            lines += [f"`{group}`: {_text(group_spec['description'])}", ""]
        lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
        for key, leaf in keys.items():
            if key == name or key.startswith((f"{name}.", f"{name}[]")):
                lines.append(_row(key, leaf, _required(schema, key)))
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker of the configuration page by the reference."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE}: the marker {MARKER} is missing; the configuration reference goes there")
    return markdown.replace(MARKER, reference(yaml.safe_load(SCHEMA.read_text())))
